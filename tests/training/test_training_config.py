"""train.py's configuration: the shipped configs, merging and overrides, --print_config, resuming, bad files.

Everything here stops before a model loads (train() itself is never reached), so it runs in seconds.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
import utils.training.run
from utils.training.config import TrainingConfig
from utils.training.training_arguments import config_to_yaml, parse_training_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "configs"

# What README.md ("Training") and each file's header say the shipped configs set.
DOCUMENTED = {
    "ghostv2_phase1.yaml": {
        "run_name": "ghostv2_phase1", "pretrained": False, "face_embeddings": "cvl_vit", "batch_size": 32,
        "max_epochs": 4, "use_scheduler": False, "eye_detector_loss": False, "weight_id": 20.0, "weight_eyes": 0.0,
        "precision": "16-mixed",
    },
    "ghostv2_phase2.yaml": {
        "run_name": "ghostv2_phase2", "pretrained": True, "face_embeddings": "cvl_vit", "batch_size": 16,
        "max_epochs": 1, "use_scheduler": True, "scheduler_type": "step", "scheduler_step": 25000,
        "scheduler_gamma": 0.5, "eye_detector_loss": True, "weight_id": 70.0, "weight_eyes": 1200.0,
        "precision": "16-mixed",
    },
    "ghostv1.yaml": {
        "face_embeddings": "arcface", "pretrained": True, "G_path": "weights/GhostV1/G_unet_2blocks.safetensors",
        "D_path": None, "batch_size": 16, "use_scheduler": False, "precision": "16-mixed",
    },
    "smoke_cpu.yaml": {
        "device": "cpu", "devices": 1, "batch_size": 2, "num_workers": 0, "max_epochs": 1, "face_embeddings": "facenet",
        "strategy": "auto",
    },
    "ddp_gpus.yaml": {
        "accelerator": "gpu", "devices": -1, "strategy": "ddp", "batch_size": TrainingConfig().batch_size,
    },
}


def resolve(*argv: str | Path) -> TrainingConfig:
    config, _ = parse_training_config(train.build_parser(), [str(argument) for argument in argv])
    return config


def config_file(folder: Path, text: str, name: str = "options.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if train.py gets as far as training (loading models, writing files)."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("train() was reached")

    monkeypatch.setattr(utils.training.run, "train", refuse)


def error_line(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """The single ``error:`` line train.main prints for ``argv`` (exit status 1, no traceback)."""
    assert train.main(argv) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [stderr.strip()] and stderr.startswith("error: "), stderr
    return stderr.strip()


# ------------------------------------------------------------------------------------------------ shipped configs


def test_every_shipped_config_is_documented_and_starts_with_a_header_comment() -> None:
    assert sorted(path.name for path in CONFIGS.glob("*.yaml")) == sorted(DOCUMENTED)
    for name in DOCUMENTED:
        header = (CONFIGS / name).read_text().splitlines()[:3]
        assert all(line.startswith("# ") for line in header), name


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_shipped_config_resolves_to_the_documented_values(name: str) -> None:
    options = resolve("--config", CONFIGS / name).as_dict()
    assert {key: options[key] for key in DOCUMENTED[name]} == DOCUMENTED[name]


def test_phase_2_starts_from_the_generator_and_discriminator_phase_1_writes() -> None:
    phase1 = resolve("--config", CONFIGS / "ghostv2_phase1.yaml")
    phase2 = resolve("--config", CONFIGS / "ghostv2_phase2.yaml")
    assert Path(phase2.G_path) == phase1.saved_models_dir / "G_latest.safetensors"
    assert Path(phase2.D_path) == phase1.saved_models_dir / "D_latest.safetensors"


# ------------------------------------------------------------------------------------------------ merging and overrides


def test_command_line_flags_override_the_file_before_or_after_it() -> None:
    phase1 = CONFIGS / "ghostv2_phase1.yaml"
    assert resolve("--config", phase1, "--batch_size", "4").batch_size == 4
    assert resolve("--batch_size", "4", "--config", phase1).batch_size == 4
    assert resolve(f"--config={phase1}", "--use_scheduler", "--no-pretrained").use_scheduler is True
    assert resolve("--config", phase1).max_epochs == 4  # what the flags leave alone still comes from the file


def test_several_config_files_merge_in_order() -> None:
    merged = resolve("--config", CONFIGS / "ghostv2_phase1.yaml", "--config", CONFIGS / "ddp_gpus.yaml")
    assert (merged.batch_size, merged.max_epochs, merged.strategy, merged.devices) == (32, 4, "ddp", -1)
    later_wins = resolve("--config", CONFIGS / "smoke_cpu.yaml", "--config", CONFIGS / "ghostv2_phase1.yaml")
    assert (later_wins.batch_size, later_wins.device) == (32, "cpu")


def test_every_existing_flag_keeps_its_default_without_a_config() -> None:
    assert resolve() == TrainingConfig()


# ------------------------------------------------------------------------------------------------ --print_config


def test_print_config_output_read_back_as_a_config_gives_the_same_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture, no_training: None
) -> None:
    argv = ["--config", str(CONFIGS / "ghostv2_phase2.yaml"), "--batch_size", "4", "--G_path", str(tmp_path / "G.st"),
            "--experiments_dir", str(tmp_path / "runs")]
    with pytest.raises(SystemExit) as exit_info:
        train.main([*argv, "--print_config"])
    assert exit_info.value.code == 0
    printed = config_file(tmp_path, capsys.readouterr().out, "printed.yaml")
    assert resolve("--config", printed) == resolve(*argv)
    assert resolve("--config", printed).batch_size == 4
    assert not (tmp_path / "runs").exists()


def test_the_saved_configuration_file_reads_back_as_the_same_configuration(tmp_path: Path) -> None:
    config = TrainingConfig(batch_size=3, G_path="generator.safetensors", devices="0,1", seed=7, precision="bf16-mixed")
    assert resolve("--config", config_file(tmp_path, config_to_yaml(config))) == config


def test_help_explains_the_config_flags(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--config CONFIG YAML file of options" in text
    assert "--print_config" in text and "Print the configuration after applying all other arguments" in text
    assert all(action.help for action in train.build_parser()._actions)


# ------------------------------------------------------------------------------------------------ resuming


@pytest.fixture
def saved_checkpoint(tmp_path: Path) -> Path:
    """A stand-in for a train.py .ckpt: only the saved configuration (as Lightning stores hyper-parameters)."""
    saved = TrainingConfig(batch_size=8, weight_id=70.0, run_name="saved", ckpt_path="older.ckpt", seed=3).as_dict()
    path = tmp_path / "saved.ckpt"
    torch.save({"hyper_parameters": {**saved, "retired_option": 1}}, path)
    return path


def test_resuming_starts_from_the_saved_configuration(saved_checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        resumed = resolve("--ckpt_path", saved_checkpoint)
    assert (resumed.batch_size, resumed.weight_id, resumed.run_name, resumed.seed) == (8, 70.0, "saved", 3)
    assert resumed.ckpt_path == str(saved_checkpoint)  # never the one saved in the checkpoint
    assert "retired_option" in caplog.text


def test_resuming_flags_and_files_override_the_saved_configuration(saved_checkpoint: Path, tmp_path: Path) -> None:
    assert resolve("--ckpt_path", saved_checkpoint, "--batch_size", "4").batch_size == 4
    from_file = resolve("--config", CONFIGS / "smoke_cpu.yaml", "--ckpt_path", saved_checkpoint)
    assert (from_file.batch_size, from_file.weight_id) == (2, 70.0)  # the file's batch size, the saved weight
    in_a_file = resolve("--config", config_file(tmp_path, f"ckpt_path: {saved_checkpoint}\n"))
    assert (in_a_file.batch_size, in_a_file.ckpt_path) == (8, str(saved_checkpoint))


def test_print_config_of_a_resumed_run_shows_the_saved_configuration(
    saved_checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        train.main(["--ckpt_path", str(saved_checkpoint), "--print_config"])
    assert "weight_id: 70.0" in capsys.readouterr().out.splitlines()


# ------------------------------------------------------------------------------------------------ bad configs


@pytest.mark.parametrize(("problem", "text", "named"), [
    ("unknown key", "batch_sise: 2\n", "batch_sise"),
    ("wrong type", "batch_size: many\n", "batch_size"),
    ("not a choice", "backbone: vgg\n", "backbone"),
    ("not YAML", "batch_size: [2\n", None),
])
def test_a_bad_config_file_is_one_error_line_naming_key_and_file_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture, no_training: None, problem: str, text: str, named: str | None
) -> None:
    bad = config_file(tmp_path, text, "bad.yaml")
    message = error_line(capsys, ["--config", str(bad), "--experiments_dir", str(tmp_path / "runs")])
    assert str(bad) in message, problem
    assert named is None or named in message, problem
    assert not (tmp_path / "runs").exists()


def test_a_missing_config_file_is_one_error_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture, no_training: None
) -> None:
    missing = tmp_path / "missing.yaml"
    message = error_line(capsys, ["--config", str(CONFIGS / "smoke_cpu.yaml"), "--config", str(missing),
                                  "--experiments_dir", str(tmp_path / "runs")])
    assert str(missing) in message and "does not exist" in message
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("problem", ["missing", "not a checkpoint"])
def test_a_bad_ckpt_path_is_one_error_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture, no_training: None, problem: str
) -> None:
    checkpoint = tmp_path / "last.ckpt"
    if problem == "not a checkpoint":
        checkpoint.write_bytes(b"not a checkpoint")
    message = error_line(capsys, ["--ckpt_path", str(checkpoint), "--experiments_dir", str(tmp_path / "runs")])
    assert f"--ckpt_path {checkpoint}" in message
    assert not (tmp_path / "runs").exists()


def test_train_script_reports_a_bad_config_in_one_stderr_line(tmp_path: Path) -> None:
    """A real process: the one error line is all of stderr, the exit status is 1, nothing is written."""
    bad = config_file(tmp_path, "weight_idd: 70\n", "bad.yaml")
    completed = subprocess.run(
        [sys.executable, "train.py", "--config", str(bad), "--experiments_dir", str(tmp_path / "runs")],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [f"error: --config {bad}: Option 'weight_idd' is not accepted"]
    assert not (tmp_path / "runs").exists()
