"""The face-box guard (utils.image) in every place a box is cropped, and the output-path checks of the writer."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from models.fan_landmarks import LandmarkDetector
from models.liveportrait.crop import crop_image
from utils.align import align_face
from utils.errors import AlignmentError, FaceBoxError, GhostError, OutputPathError
from utils.image import (
    MAX_FACE_BOX_TO_IMAGE,
    check_output_file,
    check_output_folder,
    face_box_problem,
    face_points_problem,
    write_image,
)

IMAGE_SHAPE = (300, 400, 3)
# The box that ended the original report's run: FAN's crop around it asked numpy for 323 GiB.
HUGE_BOX = np.array([10.0, 20.0, 96_000.0, 236_000.0], np.float32)
KEYPOINTS = np.array([[150, 120], [250, 120], [200, 170], [160, 220], [240, 220]], np.float32)


@pytest.mark.parametrize("box, reason", [
    ([50, 40, 250, 260], None),
    ([-80, -60, 150, 200], None),  # a face cut by the border
    ([0, 0, MAX_FACE_BOX_TO_IMAGE * 400, 300], None),
    (HUGE_BOX, "box_far_larger_than_image"),
    ([0, 0, MAX_FACE_BOX_TO_IMAGE * 400 + 1, 300], "box_far_larger_than_image"),
    ([np.nan, 0, 10, 10], "box_not_finite"),
    ([0, 0, np.inf, 10], "box_not_finite"),
    ([100, 50, 90, 80], "box_inverted"),
    ([100, 50, 100, 80], "box_inverted"),
    ([410, 0, 500, 100], "box_outside_image"),
    ([-100, -100, -1, -1], "box_outside_image"),
])
def test_face_box_problem(box: list[float], reason: str | None) -> None:
    assert face_box_problem(np.asarray(box, np.float32), IMAGE_SHAPE) == reason


def test_face_points_problem_lets_coincident_points_through() -> None:
    assert face_points_problem(KEYPOINTS, IMAGE_SHAPE) is None
    assert face_points_problem(np.full((5, 2), 50.0), IMAGE_SHAPE) is None  # the alignment's own error
    assert face_points_problem(KEYPOINTS * 1000, IMAGE_SHAPE) == "points_far_larger_than_image"
    assert face_points_problem(KEYPOINTS - 1000, IMAGE_SHAPE) == "points_outside_image"
    assert face_points_problem(np.full((5, 2), np.nan), IMAGE_SHAPE) == "points_not_finite"


def test_fan_refuses_an_absurd_box_before_cropping() -> None:
    def never_called(_x):
        raise AssertionError("the network must not run for an absurd box")

    detector = LandmarkDetector(never_called)
    image = np.zeros(IMAGE_SHAPE, np.uint8)
    with pytest.raises(FaceBoxError) as caught:  # not a MemoryError: no canvas is allocated
        detector.get_landmarks(image, HUGE_BOX)
    assert caught.value.reason == "box_far_larger_than_image"
    assert isinstance(caught.value, GhostError) and isinstance(caught.value, AlignmentError)


def test_liveportrait_crop_refuses_points_far_outside_the_image() -> None:
    image = np.zeros(IMAGE_SHAPE, np.uint8)
    landmarks = np.random.default_rng(0).uniform(100, 200, (68, 2)).astype(np.float32)
    assert crop_image(image, landmarks, dsize=224).image.shape == (224, 224, 3)
    with pytest.raises(FaceBoxError, match="far larger"):
        crop_image(image, landmarks * 100, dsize=224)
    with pytest.raises(FaceBoxError, match="not finite"):
        crop_image(image, np.full((68, 2), np.inf, np.float32), dsize=224)


@pytest.mark.parametrize("mode", ["insightface_v2", "facexlib", "mtcnn", "insightface_v1"])
def test_alignment_refuses_keypoints_that_cannot_belong_to_the_image(mode: str) -> None:
    image = np.zeros(IMAGE_SHAPE, np.uint8)
    assert align_face(image, KEYPOINTS, mode, 256)[0].shape == (256, 256, 3)
    for keypoints, reason in ((KEYPOINTS * 1e4, "points_far_larger_than_image"),
                              (KEYPOINTS + 5000, "points_outside_image"),
                              (np.full((5, 2), np.nan, np.float32), "points_not_finite")):
        with pytest.raises(FaceBoxError) as caught:
            align_face(image, keypoints, mode, 256)
        assert caught.value.reason == reason


# ---------------------------------------------------------------------------------------------------- output paths


def unwritable(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``folder`` made read-only; as root (whom permission bits do not stop) os.access is told so too."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == folder else real_access(path, mode))
    return folder


def test_output_checks_name_the_problem_and_create_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    check_output_folder(tmp_path / "new" / "deeper")  # missing folders are fine: they will be created
    check_output_file(tmp_path / "new" / "out.png")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_folder(a_file / "sub")
    with pytest.raises(OutputPathError, match="it is a folder"):
        check_output_file(tmp_path)
    locked = unwritable(tmp_path / "locked", monkeypatch)
    try:
        with pytest.raises(OutputPathError, match="not writable"):
            check_output_file(locked / "sub" / "out.png")
    finally:
        locked.chmod(0o755)


def test_write_image_errors_are_one_line_and_leave_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    for path in (a_file / "out.png", tmp_path):
        with pytest.raises(OutputPathError):
            write_image(path, image)

    def full_disk(self, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)  # the partial file is written, the rename fails
    with pytest.raises(OutputPathError, match="No space left on device"):
        write_image(tmp_path / "out.png", image)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]
