"""The size each CLI detects faces at, against the original project's settings (faces/README.md §1.3).

inference.py: long side 1280, small photos scaled up (ours: --detection_max_size, --no-detection_upscale);
preprocessing: photos over 1280 px shrunk to 1280 and cropped to even sides, then detected as they are;
align.py, embedding_distance.py and the demo's re-detection of its cells: the photo as it is. The detector's
decoding is replaced by a recorder of the network input size that finds no face, so no network runs.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import align
import demo
import embedding_distance
import inference
import preprocess_lagenda
from models import retinaface
from models.retinaface import DecodedDetections

SMALL = (260, 320)  # height, width of a photo below every limit (above preprocessing's 250 px minimum)
LARGE = (1000, 1401)  # above preprocessing's 1280: shrunk to 1280 x 913, cropped to 912


@pytest.fixture
def network_input_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every (height, width) the detector would feed its network; every detection comes back empty."""
    sizes: list[tuple[int, int]] = []

    def record(self: retinaface.FaceDetector, images: np.ndarray, bgr: bool = True) -> list[DecodedDetections]:
        x, _ = retinaface.preprocess(images, self.max_size, bgr=bgr, upscale=self.upscale)
        sizes.append(tuple(x.shape[2:]))
        empty = DecodedDetections(np.zeros((0, 4), np.float32), np.zeros((0, 10), np.float32), np.zeros(0, np.float32))
        return [empty] * len(images)

    monkeypatch.setattr(retinaface.FaceDetector, "decode", record)
    return sizes


def photo(folder: Path, shape: tuple[int, int], name: str = "photo.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8))
    return path


def swap_flags(weights: Path, nsfw_model: Path) -> list[str]:
    return ["--weights_dir", str(weights), "--device", "cpu", "--nsfw_model", str(nsfw_model),
            "--no-enhance_output", "--no-inpaint_output"]


@pytest.mark.parametrize("flags, expected", [
    ([], (1040, 1280)),  # the original: scaled up to a 1280 long side
    (["--no-detection_upscale"], SMALL),
    (["--detection_max_size", "160"], (130, 160)),
    (["--detection_max_size", "-1"], SMALL),
])
def test_inference(flags: list[str], expected: tuple[int, int], network_input_sizes, tmp_path: Path,
                   standin_weights: Path, normal_nsfw_model: Path) -> None:
    image = photo(tmp_path, SMALL)
    code = inference.main([*swap_flags(standin_weights, normal_nsfw_model), "--source_file_path", str(image),
                           "--target_file_path", str(image), "--output_file_path", str(tmp_path / "out.png"), *flags])
    assert code == 1  # no face found (the recorder finds none)
    assert network_input_sizes == [expected]


def test_demo_redetects_its_cells_at_their_own_size(network_input_sizes, tmp_path: Path, standin_weights: Path,
                                                    normal_nsfw_model: Path) -> None:
    image = photo(tmp_path, SMALL)
    code = demo.main([*swap_flags(standin_weights, normal_nsfw_model), "--sources", str(image), "--targets",
                      str(image), "--output_file_path", str(tmp_path / "grid.png")])
    assert code == 1  # the first cell (the target) has no face
    assert network_input_sizes == [SMALL]


def test_align_and_embedding_distance_detect_the_photo_as_it_is(network_input_sizes, tmp_path: Path,
                                                                standin_weights: Path) -> None:
    common = ["--weights_dir", str(standin_weights), "--device", "cpu"]
    for shape in (SMALL, LARGE):
        image = photo(tmp_path / f"{shape[0]}", shape)
        assert align.main([*common, "--source_image", str(image), "--aligned_folder", str(tmp_path / "out")]) == 0
        assert embedding_distance.main([*common, "--source_image_path", str(image)]) == 1  # no face
    assert network_input_sizes == [SMALL, SMALL, LARGE, LARGE]


def test_preprocessing_shrinks_only_above_1280_then_detects_as_it_is(network_input_sizes, tmp_path: Path,
                                                                     standin_weights: Path) -> None:
    folder = tmp_path / "photos"
    photo(folder, SMALL, "a_small.png")
    photo(folder, LARGE, "b_large.png")
    argv = ["--lagenda_base_dir", str(folder), "--weights_dir", str(standin_weights), "--device", "cpu",
            "--output_dir_resized", str(tmp_path / "faces"), "--no-retargeting"]
    assert preprocess_lagenda.main(argv) == 0
    assert network_input_sizes == [SMALL, (912, 1280)]
    network_input_sizes.clear()
    # --detection_max_size (ours) only ever shrinks.
    assert preprocess_lagenda.main([*argv, "--output_dir_resized", str(tmp_path / "faces2"),
                                    "--detection_max_size", "400"]) == 0
    assert network_input_sizes == [SMALL, (285, 400)]
