"""utils.paste_back: every mode leaves the target alone outside the face, and the mode-specific inputs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from utils import paste_back

FACE = 256
TARGET_HW = (240, 320)


def _matrix(angle_degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """Image → crop matrix of a face that covers part of the target (and hangs over its left edge)."""
    angle = np.deg2rad(angle_degrees)
    crop_to_image = np.hstack([
        scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]), np.array(shift)[:, None]
    ])
    return cv2.invertAffineTransform(crop_to_image)


MATRICES = [_matrix(10.0, 0.5, (120.0, 40.0)), _matrix(-20.0, 0.6, (-30.0, 60.0))]


@pytest.fixture(scope="module")
def target_image() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(*TARGET_HW, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def swapped_face() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, size=(FACE, FACE, 3), dtype=np.uint8)


def _outside_face(matrix: np.ndarray, margin: int = 2) -> np.ndarray:
    """Target pixels more than ``margin`` pixels away from the warped face square."""
    square = np.full((FACE, FACE), 255, dtype=np.uint8)
    warped = cv2.warpAffine(square, cv2.invertAffineTransform(matrix), TARGET_HW[::-1])
    grown = cv2.dilate(warped, np.ones((2 * margin + 1, 2 * margin + 1), dtype=np.uint8))
    return grown == 0


def _circle_landmarks(centre: tuple[float, float], radius: float, squash: float = 1.0) -> np.ndarray:
    """68 points on an ellipse (enough for the hull, brow and jaw rules), jaw points on the outline."""
    angles = np.linspace(0.0, 2 * np.pi, 68, endpoint=False)
    points = np.stack([centre[0] + radius * squash * np.cos(angles), centre[1] + radius * np.sin(angles)], axis=1)
    return points.astype(np.float32)


@pytest.mark.parametrize("mode", ["insightface", "facexlib_without_parser", "basic"])
@pytest.mark.parametrize("matrix_index", [0, 1])
def test_target_unchanged_outside_the_face(mode, matrix_index, target_image, swapped_face) -> None:
    matrix = MATRICES[matrix_index]
    result, mask = paste_back.paste_back(mode, target_image, swapped_face, matrix)
    assert mask is None
    assert result.shape == target_image.shape and result.dtype == np.uint8
    outside = _outside_face(matrix)
    assert outside.sum() > 0.3 * outside.size
    np.testing.assert_array_equal(result[outside], target_image[outside])
    assert (result != target_image).any()


def test_basic_pastes_the_face_into_the_target(target_image, swapped_face) -> None:
    matrix = MATRICES[0]
    result, _ = paste_back.paste_back("basic", target_image, swapped_face, matrix)
    # Deep inside the face the result is the face itself (the original left the rest black instead).
    centre = cv2.transform(np.array([[[FACE / 2, FACE / 2]]]), cv2.invertAffineTransform(matrix))[0, 0]
    x, y = int(round(centre[0])), int(round(centre[1]))
    warped = cv2.warpAffine(swapped_face, cv2.invertAffineTransform(matrix), TARGET_HW[::-1])
    np.testing.assert_array_equal(result[y - 3:y + 4, x - 3:x + 4], warped[y - 3:y + 4, x - 3:x + 4])


def test_facexlib_with_parser_feeds_a_512_face_and_returns_a_mask(target_image, swapped_face) -> None:
    seen: list[tuple[tuple[int, ...], np.dtype]] = []

    def parser(face: np.ndarray) -> np.ndarray:
        seen.append((face.shape, face.dtype))
        labels = np.zeros(face.shape[:2], dtype=np.int64)
        labels[128:400, 128:384] = 1  # skin
        labels[60:128, 128:384] = 17  # hair: not part of the mask
        return labels

    matrix = MATRICES[0]
    result, mask = paste_back.paste_back("facexlib_with_parser", target_image, swapped_face, matrix, face_parser=parser)
    assert seen == [((paste_back.PARSER_INPUT_SIZE, paste_back.PARSER_INPUT_SIZE, 3), np.dtype(np.uint8))]
    assert mask.shape == TARGET_HW and mask.dtype == np.uint8 and mask.max() == 255
    outside = _outside_face(matrix)
    np.testing.assert_array_equal(result[outside], target_image[outside])
    assert not mask[outside].any()
    # Where the hair label is (crop rows 30..64 at 256) the target shows through.
    hair = cv2.transform(np.array([[[FACE / 2, 45.0]]]), cv2.invertAffineTransform(matrix))[0, 0]
    assert mask[int(round(hair[1])), int(round(hair[0]))] == 0


def test_ghost_mask_and_composite(target_image, swapped_face) -> None:
    matrix = MATRICES[0]
    source = _circle_landmarks((128, 140), 80)
    target = _circle_landmarks((128, 140), 80)
    result, mask = paste_back.paste_back(
        "ghost", target_image, swapped_face, matrix, source_landmarks=source, target_landmarks=target
    )
    assert set(np.unique(mask)) == {0, 255}
    outside = _outside_face(matrix)
    np.testing.assert_array_equal(result[outside], target_image[outside])
    assert not mask[outside].any()
    # The face centre is fully swapped.
    centre = cv2.transform(np.array([[[128.0, 140.0]]]), cv2.invertAffineTransform(matrix))[0, 0]
    x, y = int(round(centre[0])), int(round(centre[1]))
    warped = cv2.warpAffine(swapped_face, cv2.invertAffineTransform(matrix), TARGET_HW[::-1])
    assert mask[y, x] == 255
    np.testing.assert_allclose(result[y, x].astype(int), warped[y, x].astype(int), atol=1)


def test_ghost_branches_use_x_offsets_only() -> None:
    target = _circle_landmarks((128, 140), 80)
    shifted_down = target + np.array([0.0, 3.0], dtype=np.float32)  # y only: the original counted this
    assert paste_back.jaw_offsets(shifted_down, target) == (0.0, 0.0, 0.0)
    wider = _circle_landmarks((128, 140), 80, squash=1.1)
    left, right, offset = paste_back.jaw_offsets(wider, target)
    assert offset == max(left, right) and offset > 6
    assert paste_back.ghost_mask_settings(offset) == paste_back.GhostMaskSettings(15, 15, 10, 2.7)
    assert paste_back.ghost_mask_settings(4.0).erode == 10
    assert paste_back.ghost_mask_settings(-4.0).erode == -5
    assert paste_back.ghost_mask_settings(0.0).erode == 5


def test_none_returns_the_face(target_image, swapped_face) -> None:
    result, mask = paste_back.paste_back("none", target_image, swapped_face, MATRICES[0])
    assert result is swapped_face and mask is None


def test_unknown_mode_lists_the_choices(target_image, swapped_face) -> None:
    with pytest.raises(ValueError) as error:
        paste_back.paste_back("seamless", target_image, swapped_face, MATRICES[0])
    for mode in paste_back.PASTE_BACK_MODES:
        assert mode in str(error.value)


def test_modes_that_need_inputs_say_so(target_image, swapped_face) -> None:
    with pytest.raises(ValueError, match="landmarks"):
        paste_back.paste_back("ghost", target_image, swapped_face, MATRICES[0])
    with pytest.raises(ValueError, match="parser"):
        paste_back.paste_back("facexlib_with_parser", target_image, swapped_face, MATRICES[0])
