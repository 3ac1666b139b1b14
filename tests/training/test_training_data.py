"""Training dataset sampling, the data module, and train.py's early option/dataset errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import train
from utils.errors import DatasetError
from utils.training.data import FaceSwapDataModule, FaceSwapDataset

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_dataset(root: Path, identities: int = 3, per_identity: int = 2, size: int = 64) -> Path:
    """Folder-per-identity dataset of small flat-coloured images (one colour per identity)."""
    for identity in range(identities):
        folder = root / f"person_{identity}"
        folder.mkdir(parents=True)
        for index in range(per_identity):
            image = np.full((size, size, 3), 40 + 60 * identity, np.uint8)
            image[: size // 2] += np.uint8(10 * index)
            cv2.imwrite(str(folder / f"{index}.{'png' if index % 2 else 'jpg'}"), image)
    (root / "person_0" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def dataset_root(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "dataset")


def test_items_are_two_jittered_sources_a_target_and_a_flag(dataset_root: Path) -> None:
    dataset = FaceSwapDataset(dataset_root)
    assert len(dataset) == 6 and len(dataset.identities) == 3
    source_for_identity, source, target, same_person = dataset[0]
    for image in (source_for_identity, source, target):
        assert image.shape == (3, 256, 256) and image.dtype == torch.float32
        assert image.min() >= -1.0 and image.max() <= 1.0
    assert same_person.dtype == torch.int64 and same_person.item() in (0, 1)


def test_random_targets_are_flagged_same_person_only_for_the_same_identity(dataset_root: Path) -> None:
    dataset = FaceSwapDataset(dataset_root, same_prob=0.0)
    torch.manual_seed(0)
    seen = set()
    for _ in range(60):
        target_index, same = dataset.sample_target(0)
        assert same == (dataset.files[target_index].parent == dataset.files[0].parent)
        seen.add(same)
    assert seen == {True, False}


def test_same_person_targets_come_from_the_source_folder(dataset_root: Path) -> None:
    dataset = FaceSwapDataset(dataset_root, same_prob=1.0)
    for _ in range(20):
        target_index, same = dataset.sample_target(3)
        assert same and dataset.files[target_index].parent == dataset.files[3].parent


def test_generic_dataset_copies_the_source_for_same_person_targets(dataset_root: Path) -> None:
    dataset = FaceSwapDataset(dataset_root, same_prob=1.0, same_identity=False, laion_faces=False)
    assert dataset.sample_target(4) == (4, True)


def test_data_module_drops_the_incomplete_batch(dataset_root: Path) -> None:
    module = FaceSwapDataModule(dataset_root, batch_size=4, num_workers=0)
    module.setup("fit")
    batches = list(module.train_dataloader())
    assert len(batches) == 1
    assert [tuple(part.shape) for part in batches[0]] == [(4, 3, 256, 256)] * 3 + [(4,)]


@pytest.mark.parametrize("problem", ["missing", "empty", "not_a_folder"])
def test_unusable_dataset_folders_raise_one_clear_error(tmp_path: Path, problem: str) -> None:
    root = tmp_path / "dataset"
    if problem == "empty":
        (root / "person_0").mkdir(parents=True)
    elif problem == "not_a_folder":
        root.write_text("x")
    with pytest.raises(DatasetError, match=str(root)):
        FaceSwapDataset(root)


def test_a_dataset_smaller_than_one_batch_is_refused(dataset_root: Path) -> None:
    with pytest.raises(DatasetError, match="fewer than one batch"):
        FaceSwapDataModule(dataset_root, batch_size=16).check()


def run_train(capsys: pytest.CaptureFixture, *flags: str) -> str:
    code = train.main(list(flags))
    stderr = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_train_refuses_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    message = run_train(capsys, "--dataset_path", str(tmp_path / "nowhere"), "--experiments_dir", str(tmp_path / "runs"))
    assert "does not exist" in message and "--dataset_path" in message
    assert not (tmp_path / "runs").exists()


def test_train_refuses_an_empty_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "dataset" / "person_0").mkdir(parents=True)
    message = run_train(capsys, "--dataset_path", str(tmp_path / "dataset"), "--experiments_dir", str(tmp_path / "runs"))
    assert "no .jpg/.jpeg/.png images" in message
    assert not (tmp_path / "runs").exists()


def test_train_refuses_same_identity_without_the_laion_layout(
    dataset_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    message = run_train(capsys, "--dataset_path", str(dataset_root), "--no-laion_faces",
                        "--experiments_dir", str(tmp_path / "runs"))
    assert "--same_identity" in message
    assert not (tmp_path / "runs").exists()


def test_train_script_reports_an_empty_dataset_in_one_stderr_line(tmp_path: Path) -> None:
    """A real process: nothing but the error line reaches stderr, the exit status is 1, nothing is written."""
    (tmp_path / "dataset" / "person_0").mkdir(parents=True)
    completed = subprocess.run(
        [sys.executable, "train.py", "--dataset_path", str(tmp_path / "dataset"),
         "--experiments_dir", str(tmp_path / "runs")],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [f"error: dataset folder {tmp_path / 'dataset'} holds no .jpg/.jpeg/.png "
                                             "images (searched recursively)"]
    assert not (tmp_path / "runs").exists()


def test_every_boolean_flag_has_a_no_form() -> None:
    parser = train.build_parser()
    booleans = [action for action in parser._actions if action.nargs == 0 and action.option_strings[0] != "-h"]
    booleans = [action for action in booleans if action.dest != "verbose"]
    assert booleans and all(any(flag.startswith("--no-") for flag in action.option_strings) for action in booleans)
    args = parser.parse_args(["--no-pretrained", "--eye_detector_loss", "--no-laion", "--no-same_identity"])
    assert (args.pretrained, args.eye_detector_loss, args.laion_faces, args.same_identity) == (False, True, False, False)
    assert isinstance(args.b1_G, float) and args.b1_G == 0.0


@pytest.mark.parametrize(("device", "devices", "expected"), [
    (None, "2", ("auto", "2")), ("auto", "auto", ("auto", "auto")), ("cpu", "2", ("cpu", "2")),
    ("cpu", "auto", ("cpu", "1")), ("cuda", "4", ("gpu", "4")), ("cuda:1", "auto", ("gpu", "1,")),
    ("mps", "auto", ("mps", "1")),
])
def test_device_flag_maps_onto_lightnings_accelerator_and_devices(device, devices, expected) -> None:
    from utils.training.config import TrainingConfig

    assert TrainingConfig(device=device, devices=devices).trainer_hardware == expected


def test_unknown_device_is_refused() -> None:
    from utils.errors import GhostError
    from utils.training.config import TrainingConfig

    with pytest.raises(GhostError, match="unknown --device"):
        _ = TrainingConfig(device="tpu").trainer_hardware
