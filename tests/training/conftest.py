"""Fixtures of the end-to-end training tests: tiny folder-per-identity datasets and train.py flags for stand-ins.

Cost control: the stand-in generator is the real 184M-parameter AEI-Net, so every run is as short as the
test allows (a few steps, batch 1-2, FaceNet as the identity model, one data-loading process) and a run
is shared by the tests of a module through module-scoped fixtures.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

DATASET_IMAGE_SIZE = 64  # the transform resizes to 256 anyway; small files keep loading cheap


def identity_photos(example_images: dict[str, Path]) -> dict[str, np.ndarray]:
    """BGR photos standing for different people: the two example photos and two skimage colour photos."""
    return {
        "astronaut": cv2.imread(str(example_images["astronaut"])),
        "cameraman": cv2.imread(str(example_images["cameraman"])),
        "chelsea": np.ascontiguousarray(data.chelsea()[:, :, ::-1]),
        "coffee": np.ascontiguousarray(data.coffee()[:, :, ::-1]),
    }


def write_identity_dataset(
    root: Path, example_images: dict[str, Path], identities: int, per_identity: int = 2
) -> Path:
    """``identities`` folders of ``per_identity`` jittered crops each (PNG and JPEG alternately)."""
    photos = list(identity_photos(example_images).items())[:identities]
    generator = np.random.default_rng(0)
    for name, photo in photos:
        folder = root / name
        folder.mkdir(parents=True)
        height, width = photo.shape[:2]
        for index in range(per_identity):
            top, left = (int(value) for value in generator.integers(0, [height // 8, width // 8]))
            crop = photo[top:top + height * 7 // 8, left:left + width * 7 // 8]
            image = cv2.resize(crop, (DATASET_IMAGE_SIZE, DATASET_IMAGE_SIZE), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(folder / f"{index}.{'png' if index % 2 else 'jpg'}"), image)
    return root


def write_example_pair(folder: Path, example_images: dict[str, Path]) -> Path:
    """One example pair for the example-swap callback (source_1.png, target_1.png)."""
    folder.mkdir(parents=True)
    photos = identity_photos(example_images)
    cv2.imwrite(str(folder / "source_1.png"), cv2.resize(photos["astronaut"], (96, 96), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(folder / "target_1.png"), cv2.resize(photos["cameraman"], (96, 96), interpolation=cv2.INTER_AREA))
    return folder


def standin_paths(weights_dir: Path, dataset: Path, experiments: Path, examples: Path) -> list[str]:
    """train.py flags naming the stand-in weights, the dataset, the run folder and the example pairs."""
    return [
        "--dataset_path", str(dataset), "--experiments_dir", str(experiments), "--weights_dir", str(weights_dir),
        "--example_images_path", str(examples),
    ]


def standin_flags(weights_dir: Path, dataset: Path, experiments: Path, examples: Path) -> list[str]:
    """train.py flags of a short CPU run on stand-in weights."""
    return [
        *standin_paths(weights_dir, dataset, experiments, examples),
        "--face_embeddings", "facenet", "--num_workers", "0", "--accelerator", "cpu", "--log_step", "1", "--seed", "0",
    ]


@pytest.fixture(scope="module")
def example_pair(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> Path:
    return write_example_pair(tmp_path_factory.mktemp("examples") / "pairs", example_images)
