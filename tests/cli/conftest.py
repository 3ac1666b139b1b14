"""Fixtures of the end-to-end CLI tests: small input trees, file snapshots (the tiny NSFW and SDXL models are in
tests/conftest.py).

Stand-in weights make RetinaFace fire everywhere: with random filters nearly every prior scores 1.0 (float32
softmax saturates), so a threshold of 0.5 finds hundreds of "faces" on any picture, and a threshold of 1.0
(scores must be strictly greater) finds none. The tests rely on exactly that.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

STANDIN_THRESHOLD = 0.5  # stand-in detector: hundreds of faces above this
NO_FACE_THRESHOLD = 1.0  # stand-in detector: no score is strictly above 1.0


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime (ns) of every file under ``folder``, by relative path."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


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
