"""Fixtures of the end-to-end CLI tests: small input trees, file snapshots (the tiny NSFW and SDXL models are in
tests/conftest.py).

Stand-in weights make RetinaFace fire everywhere: with random filters nearly every prior scores 1.0 (float32
softmax saturates), so a threshold of 0.5 finds hundreds of "faces" on any picture, and a threshold of 1.0
(scores must be strictly greater) finds none. The tests rely on exactly that.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

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


# --- preprocess_lagenda.py / preprocess_laion.py inputs (small photos, img2dataset shards) -------------------

# Stand-in RetinaFace fires everywhere: one face per photo, no size or eye filter, small detection images.
FAST_FLAGS = ["--device", "cpu", "--detection_threshold", "0.5", "--detection_max_size", "256",
              "--min_original_face_size", "0", "--eye_dist_threshold", "0", "--max_faces_per_image", "1"]


def photos() -> dict[str, np.ndarray]:
    """Small BGR test photos (above the 250 px size filter) and one below it."""
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    return {
        "astronaut": cv2.resize(astronaut, (320, 320)),
        "cameraman": cv2.cvtColor(cv2.resize(skimage.data.camera(), (300, 280)), cv2.COLOR_GRAY2BGR),
        "coffee": cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (360, 270)),
        "tiny": cv2.resize(astronaut, (120, 120)),
    }


def write_lagenda_folder(folder: Path) -> Path:
    """The photos as JPEG files, and a corrupt one, in a flat folder."""
    folder.mkdir(parents=True)
    for name, image in photos().items():
        cv2.imwrite(str(folder / f"{name}.jpg"), image)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    return folder


@pytest.fixture()
def lagenda_folder(tmp_path: Path) -> Path:
    return write_lagenda_folder(tmp_path / "lagenda")


def write_shard(tar_path: Path, samples: list[tuple[str, bytes]]) -> None:
    """An img2dataset-style shard: <key>.jpg + <key>.json members, and a parquet with the status column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w") as archive:
        for key, payload in samples:
            for suffix, data in ((".jpg", payload), (".json", json.dumps({"SAMPLE_ID": int(key)}).encode())):
                info = tarfile.TarInfo(f"{key}{suffix}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    pq.write_table(pa.table({"key": [key for key, _ in samples], "status": ["success"] * len(samples)}),
                   tar_path.with_suffix(".parquet"))


def write_laion_folder(base: Path) -> Path:
    """Split 0 with two shards: [astronaut, corrupt bytes, cameraman] and [coffee, tiny]."""
    encoded = {name: cv2.imencode(".jpg", image)[1].tobytes() for name, image in photos().items()}
    split = base / "laion_face_data" / "split_00000"
    write_shard(split / "00000.tar", [("1001", encoded["astronaut"]), ("1002", b"corrupt bytes"),
                                      ("1003", encoded["cameraman"])])
    write_shard(split / "00001.tar", [("2001", encoded["coffee"]), ("2002", encoded["tiny"])])
    return base


@pytest.fixture()
def laion_folder(tmp_path: Path) -> Path:
    return write_laion_folder(tmp_path / "laion")


def lagenda_args(folder: Path, out: Path, weights: Path, *extra: str) -> list[str]:
    return ["--lagenda_base_dir", str(folder), "--weights_dir", str(weights), "--output_dir", str(out / "full"),
            "--output_dir_resized", str(out / "faces"), *FAST_FLAGS, *extra]


def laion_args(base: Path, out: Path, weights: Path, *extra: str) -> list[str]:
    return ["--laion_face_base_dir", str(base), "--weights_dir", str(weights), "--output_dir", str(out / "full"),
            "--output_dir_resized", str(out / "faces"), *FAST_FLAGS, *extra]


def images_under(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.jpg"))}


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (done-markers included) by relative path."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def require_ray():
    """``ray``; without it, a failure under CI=true (Ray is a test requirement) and a reported skip elsewhere."""
    try:
        import ray
    except ImportError:
        message = "ray is not installed: pip install -r requirements-ray.txt"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return ray
