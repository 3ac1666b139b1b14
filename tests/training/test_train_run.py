"""Training end to end on CPU with stand-in weights: a 3-step run, its files in inference, and a resumed run.

Two runs are shared by every test of this module (see conftest.py for the cost rules):
* ``first_run``: configs/smoke_cpu.yaml (one CPU epoch at batch 2, FaceNet, one process) on 3 identities × 2
  images, i.e. 3 steps, with ``--save_step 2`` so that both the mid-epoch (``G_0_000002``) and the end-of-epoch
  (``G_1_000000``) files appear;
* ``resumed_run``: one more epoch from the first run's ``last.ckpt`` on a one-batch dataset (one identity × 2
  images), so exactly one more step, with ``--discr_force`` (the running
  adversarial loss is still near its start value 20, far above the threshold 4, so D is held back), and
  ``--no-pretrained``: G and D come from the checkpoint alone; it switches the eye loss on, like the released
  model's second training phase. Options it does not give come from the first run's saved configuration.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pytest
import pytorch_lightning as pl
import torch
from safetensors.torch import load_file

import train
from models.registry import CHECKPOINTS, MANIFEST_DIR, load_model
from network.aeinet import AEINet
from network.discriminator import MultiscaleDiscriminator
from tests.cli.conftest import STANDIN_THRESHOLD, relabelled_nsfw_model
from tests.training.conftest import standin_flags, standin_paths, write_identity_dataset
from utils.training.config import TrainingConfig
from utils.training.run import train as run_training
from utils.training.training_arguments import parse_training_config

pytestmark = [
    pytest.mark.slow,
    # expected: the resumed run writes to its own folder, not to the folder recorded in the first run's .ckpt
    pytest.mark.filterwarnings("ignore:The dirpath has changed"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_CONFIG = REPO_ROOT / "configs" / "smoke_cpu.yaml"
# logged at every step; "loss_eyes" too when the eye loss is on
ALWAYS_LOGGED = ("lossG", "lossD", "loss_adv", "loss_attr", "loss_id", "loss_rec")
FIRST_STEPS = 3
SAVE_STEP = 2


def config_from_flags(flags: list[str]) -> TrainingConfig:
    """The TrainingConfig train.py would build from these flags."""
    config, _ = parse_training_config(train.build_parser(), flags)
    return config


def optimizer_fingerprint(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Hyper-parameters of every group and, per parameter, float64 sums of its step counter and Adam moments."""
    state = []
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            entries = optimizer.state.get(parameter, {})
            state.append(tuple(
                float(entries[name].double().sum()) if name in entries else None
                for name in ("step", "exp_avg", "exp_avg_sq")
            ))
    groups = [(group["lr"], tuple(group["betas"]), group["weight_decay"]) for group in optimizer.param_groups]
    return {"groups": groups, "state": state}


class RunRecorder(pl.Callback):
    """What a run did: global step and logged losses per batch, optimizer state and running loss at start and end."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.batches: list[tuple[int, int]] = []
        self.losses: list[dict[str, float]] = []
        self.start: dict[str, Any] = {}
        self.end: dict[str, Any] = {}

    @staticmethod
    def _snapshot(trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, Any]:
        return {
            "global_step": trainer.global_step,
            "optimizers": [optimizer_fingerprint(optimizer) for optimizer in trainer.optimizers],
            "loss_adv_accumulated": float(module.loss_adv_accumulated),
        }

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = self._snapshot(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.steps.append(trainer.global_step)
        self.batches.append((trainer.current_epoch, batch_idx))
        self.losses.append({name: float(value) for name, value in outputs["losses"].items()})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.end = self._snapshot(trainer, pl_module)


@dataclass
class Run:
    experiments: Path
    name: str
    recorder: RunRecorder
    config: TrainingConfig

    @property
    def saved_models(self) -> Path:
        return self.experiments / f"saved_models_{self.name}"

    @property
    def current_models(self) -> Path:
        return self.experiments / f"current_models_{self.name}"

    @property
    def config_file(self) -> Path:
        return self.experiments / "logs" / self.name / "config.yaml"


@pytest.fixture(scope="module")
def training_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("training")
    yield root
    shutil.rmtree(root, ignore_errors=True)  # several GB of checkpoints: do not leave them to pytest's retention


@pytest.fixture(scope="module")
def base_flags(
    training_root: Path, standin_weights: Path, example_images: dict[str, Path], example_pair: Path
) -> list[str]:
    return [*standin_flags(standin_weights, training_root / "dataset", training_root / "experiments", example_pair),
            "--batch_size", "2"]


@pytest.fixture(scope="module")
def first_run(
    training_root: Path, standin_weights: Path, example_images: dict[str, Path], example_pair: Path
) -> Run:
    dataset = write_identity_dataset(training_root / "dataset", example_images, identities=3)
    recorder = RunRecorder()
    paths = standin_paths(standin_weights, dataset, training_root / "experiments", example_pair)
    config = config_from_flags(
        ["--config", str(SMOKE_CONFIG), *paths, "--seed", "0", "--run_name", "first", "--save_step", str(SAVE_STEP)]
    )
    run_training(config, [recorder])
    return Run(training_root / "experiments", "first", recorder, config)


@pytest.fixture(scope="module")
def resumed_run(
    training_root: Path, base_flags: list[str], first_run: Run, example_images: dict[str, Path]
) -> Run:
    one_batch = write_identity_dataset(training_root / "one_batch", example_images, identities=1)
    recorder = RunRecorder()
    config = config_from_flags([
        *base_flags, "--dataset_path", str(one_batch), "--run_name", "resumed", "--max_epochs", "2", "--discr_force",
        "--ckpt_path", str(first_run.current_models / "last.ckpt"), "--no-pretrained",  # the .ckpt holds G and D
        "--eye_detector_loss", "--weight_eyes", "1200",
    ])
    run_training(config, [recorder])
    return Run(training_root / "experiments", "resumed", recorder, config)


def plain_parameters(path: Path, names: set[str]) -> dict[str, torch.Tensor]:
    """The parameters (not buffers) stored in a G/D safetensors file, keys without a ``_orig_mod.`` prefix."""
    tensors = {key.removeprefix("_orig_mod."): value for key, value in load_file(path).items()}
    return {key: value for key, value in tensors.items() if key in names}


def parameter_names(letter: str) -> set[str]:
    """Names of the trainable parameters (not buffers) of the released G ("G") or D ("D")."""
    with torch.device("meta"):
        module = AEINet(backbone="unet", num_blocks=2) if letter == "G" else MultiscaleDiscriminator()
    return {name for name, _ in module.named_parameters()}


def manifest_keys(name: str) -> set[str]:
    return set(json.loads((MANIFEST_DIR / CHECKPOINTS[name].manifest).read_text())["keys"])


def count_changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> int:
    assert before.keys() == after.keys()
    return sum(not torch.equal(before[key], after[key]) for key in before)


# ------------------------------------------------------------------------------------------------ the first run


def test_three_steps_run_and_every_logged_loss_is_finite(first_run: Run) -> None:
    recorder = first_run.recorder
    assert recorder.steps == [1, 2, 3]  # global_step counts G steps only, one per batch
    assert recorder.batches == [(0, 0), (0, 1), (0, 2)]
    assert len(recorder.losses) == FIRST_STEPS
    for losses in recorder.losses:
        assert set(ALWAYS_LOGGED) <= losses.keys() and "loss_eyes" not in losses
        assert all(math.isfinite(value) for value in losses.values()), losses
    assert all(state[0] == FIRST_STEPS for optimizer in recorder.end["optimizers"] for state in optimizer["state"])
    assert all(group[1][0] == 0.0 for optimizer in recorder.end["optimizers"] for group in optimizer["groups"])


def test_losses_reach_the_tensorboard_log(first_run: Run) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(first_run.experiments / "logs" / first_run.name))
    events.Reload()
    for name in ALWAYS_LOGGED:
        values = [event.value for event in events.Scalars(name)]
        assert len(values) == FIRST_STEPS and all(math.isfinite(value) for value in values), name


def test_checkpoints_follow_the_original_names_and_cadence(first_run: Run) -> None:
    assert sorted(path.name for path in first_run.saved_models.iterdir()) == [
        "D_latest.safetensors", "G_latest.safetensors",
    ]
    # every SAVE_STEP batches within the epoch (batch_idx > 0) as <epoch>_<batch:06>, and <epoch + 1>_000000 at its end
    assert sorted(path.name for path in first_run.current_models.iterdir()) == sorted([
        f"{letter}_{name}.safetensors" for letter in "GD" for name in (f"0_{SAVE_STEP:06}", "1_000000")
    ] + [f"epoch=0-step={FIRST_STEPS}.ckpt", "last.ckpt"])
    latest = load_file(first_run.saved_models / "G_latest.safetensors")
    end_of_epoch = load_file(first_run.current_models / "G_1_000000.safetensors")
    assert all(torch.equal(latest[key], end_of_epoch[key]) for key in latest)


@pytest.mark.parametrize("name", ["ghostv2_generator", "ghostv2_discriminator"])
def test_safetensors_hold_plain_keys_and_load_through_the_registry(first_run: Run, name: str) -> None:
    letter = "G" if name == "ghostv2_generator" else "D"
    path = first_run.saved_models / f"{letter}_latest.safetensors"
    stored = load_file(path)
    assert set(stored) == manifest_keys(name)  # no "_orig_mod." and nothing missing or extra
    module = load_model(name, path=path)
    assert all(torch.equal(value, stored[key]) for key, value in module.state_dict().items())


def test_the_trained_generator_runs_in_inference_py(
    first_run: Run, standin_weights: Path, kit_dir: Path, example_images: dict[str, Path], tmp_path: Path
) -> None:
    nsfw_model = relabelled_nsfw_model(kit_dir, tmp_path / "nsfw", "normal")
    output = tmp_path / "swapped_face.png"
    completed = subprocess.run(
        [sys.executable, "inference.py", "--weights_dir", str(standin_weights), "--device", "cpu",
         "--G_path", str(first_run.saved_models / "G_latest.safetensors"), "--face_embeddings", "facenet",
         "--detection_threshold", str(STANDIN_THRESHOLD), "--nsfw_model", str(nsfw_model),
         "--paste_back_mode", "none", "--no-enhance_output", "--no-inpaint_output",
         "--source_file_path", str(example_images["astronaut"]), "--target_file_path", str(example_images["cameraman"]),
         "--output_file_path", str(output)],
        cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert cv2.imread(str(output)).shape == (256, 256, 3)


def test_generator_and_discriminator_both_change_without_discr_force(first_run: Run, standin_weights: Path) -> None:
    for name, letter in (("ghostv2_generator", "G"), ("ghostv2_discriminator", "D")):
        names = parameter_names(letter)
        before = plain_parameters(standin_weights / CHECKPOINTS[name].path, names)
        after = plain_parameters(first_run.saved_models / f"{letter}_latest.safetensors", names)
        assert count_changed(before, after) > 0.9 * len(names), letter


def test_the_smoke_config_trains_one_cpu_epoch_and_its_resolved_configuration_is_saved(first_run: Run) -> None:
    config = first_run.config
    assert (config.device, config.batch_size, config.max_epochs, config.face_embeddings) == ("cpu", 2, 1, "facenet")
    assert (config.run_name, config.save_step, config.seed) == ("first", SAVE_STEP, 0)  # the flags after the file
    assert first_run.recorder.batches[-1] == (0, FIRST_STEPS - 1)  # one whole epoch
    # the run folder's config.yaml reads back as the same configuration, and the checkpoint holds it too
    assert config_from_flags(["--config", str(first_run.config_file)]) == config
    checkpoint = torch.load(first_run.current_models / "last.ckpt", map_location="cpu", mmap=True, weights_only=True)
    assert checkpoint["hyper_parameters"] == config.as_dict()


def test_batch_and_example_grids_are_written(first_run: Run) -> None:
    images = first_run.experiments / "images"
    # batch 0: rows of sources, targets and swapped faces, the 2 images of the batch side by side
    assert cv2.imread(str(images / "generated_image.jpg")).shape == (3 * 256, 2 * 256, 3)
    # one example pair: [source, target, swapped] in the left column, an empty right column
    assert cv2.imread(str(images / "our_images.jpg")).shape == (256, 2 * 3 * 256, 3)


# ------------------------------------------------------------------------------------------------ the resumed run


def test_resumed_run_continues_at_the_next_step_with_the_saved_optimizer_state(
    first_run: Run, resumed_run: Run
) -> None:
    first, resumed = first_run.recorder, resumed_run.recorder
    assert resumed.start["global_step"] == first.end["global_step"] == FIRST_STEPS
    assert resumed.steps == [FIRST_STEPS + 1]
    assert resumed.batches == [(1, 0)]  # the first batch of the next epoch
    assert sorted(path.name for path in resumed_run.current_models.iterdir()) == sorted([
        "G_2_000000.safetensors", "D_2_000000.safetensors", f"epoch=1-step={FIRST_STEPS + 1}.ckpt", "last.ckpt",
    ])
    assert resumed.start["optimizers"] == first.end["optimizers"]
    assert resumed.start["loss_adv_accumulated"] == first.end["loss_adv_accumulated"]
    assert resumed.end["loss_adv_accumulated"] != first.end["loss_adv_accumulated"]


def test_discr_force_holds_the_discriminator_back_while_the_generator_trains(
    first_run: Run, resumed_run: Run
) -> None:
    resumed = resumed_run.recorder
    assert resumed.end["loss_adv_accumulated"] >= 4.0  # the threshold: D must not step
    generator_state, discriminator_state = resumed.end["optimizers"]
    assert {state[0] for state in generator_state["state"]} == {FIRST_STEPS + 1}
    assert discriminator_state == first_run.recorder.end["optimizers"][1]
    for letter in "GD":
        names = parameter_names(letter)
        before = plain_parameters(first_run.saved_models / f"{letter}_latest.safetensors", names)
        after = plain_parameters(resumed_run.saved_models / f"{letter}_latest.safetensors", names)
        changed = count_changed(before, after)
        assert changed > 0.9 * len(names) if letter == "G" else changed == 0, letter


def test_resumed_run_with_the_eye_loss_logs_it_and_draws_the_eye_points(resumed_run: Run) -> None:
    (losses,) = resumed_run.recorder.losses
    assert set(ALWAYS_LOGGED) | {"loss_eyes"} <= losses.keys()
    assert all(math.isfinite(value) for value in losses.values()), losses
    # batch 0 of the new epoch: sources, targets, swapped faces, then targets and swapped faces with eye points
    assert cv2.imread(str(resumed_run.experiments / "images" / "generated_image.jpg")).shape == (5 * 256, 2 * 256, 3)


def test_resumed_run_starts_from_the_saved_configuration_and_its_flags_override_it(
    first_run: Run, resumed_run: Run
) -> None:
    config = resumed_run.config
    # not given to the resumed run: taken from the first run's checkpoint instead of the defaults
    assert (config.device, config.save_step) == ("cpu", SAVE_STEP)
    assert (TrainingConfig().device, TrainingConfig().save_step) != ("cpu", SAVE_STEP)
    # given to the resumed run: its own values
    assert (config.run_name, config.max_epochs) == ("resumed", 2)
    assert config.discr_force and config.eye_detector_loss
    assert config.ckpt_path == str(first_run.current_models / "last.ckpt")
    assert config_from_flags(["--config", str(resumed_run.config_file)]) == config
