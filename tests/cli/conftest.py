"""Fixtures of the end-to-end CLI tests: small input trees, file snapshots, the tiny NSFW and SDXL models.

Stand-in weights make RetinaFace fire everywhere: with random filters nearly every prior scores 1.0 (float32
softmax saturates), so a threshold of 0.5 finds hundreds of "faces" on any picture, and a threshold of 1.0
(scores must be strictly greater) finds none. The tests rely on exactly that.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

KIT_NSFW_MODEL = "faces/tiny_nsfw_vit"
KIT_SDXL_PIPELINE = "geometry/tiny_sdxl_inpaint"
STANDIN_THRESHOLD = 0.5  # stand-in detector: hundreds of faces above this
NO_FACE_THRESHOLD = 1.0  # stand-in detector: no score is strictly above 1.0


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime (ns) of every file under ``folder``, by relative path."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def relabelled_nsfw_model(kit_dir: Path, destination: Path, label: str) -> Path:
    """A copy of the kit's tiny NSFW ViT whose two classes both read ``label`` (so its verdict is known)."""
    shutil.copytree(kit_dir / KIT_NSFW_MODEL, destination)
    config_path = destination / "config.json"
    config = json.loads(config_path.read_text())
    config["id2label"] = {"0": label, "1": label}
    config["label2id"] = {label: 0}
    config_path.write_text(json.dumps(config, indent=2))
    return destination


@pytest.fixture(scope="session")
def normal_nsfw_model(kit_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny NSFW model that calls every image "normal"."""
    return relabelled_nsfw_model(kit_dir, tmp_path_factory.mktemp("nsfw") / "normal", "normal")


@pytest.fixture(scope="session")
def nsfw_nsfw_model(kit_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny NSFW model that calls every image "nsfw"."""
    return relabelled_nsfw_model(kit_dir, tmp_path_factory.mktemp("nsfw") / "nsfw", "nsfw")


@pytest.fixture(scope="session")
def tiny_sdxl_pipeline(kit_dir: Path) -> Path:
    """The kit's tiny SDXL inpainting pipeline folder (read-only)."""
    return kit_dir / KIT_SDXL_PIPELINE


@pytest.fixture
def image_tree(tmp_path: Path, example_images: dict[str, Path]) -> Path:
    """A nested folder of small example photos (PNG, JPEG, grey PNG) plus a file that is not an image."""
    root = tmp_path / "photos"
    (root / "people" / "nasa").mkdir(parents=True)
    astronaut = cv2.resize(cv2.imread(str(example_images["astronaut"])), (128, 128), interpolation=cv2.INTER_AREA)
    cameraman = cv2.resize(cv2.imread(str(example_images["cameraman"]), cv2.IMREAD_UNCHANGED), (128, 128),
                           interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "astronaut.png"), astronaut)
    cv2.imwrite(str(root / "people" / "cameraman.png"), cameraman)
    cv2.imwrite(str(root / "people" / "nasa" / "collins.jpg"), np.ascontiguousarray(astronaut[:, ::-1]))
    (root / "people" / "notes.txt").write_text("not an image\n")
    return root
