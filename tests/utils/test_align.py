"""utils.align: the five align modes, point transforms, and the fixes over the original."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from utils import align

SIZE = 256


def _similarity(angle_degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    angle = np.deg2rad(angle_degrees)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rotation, np.array(shift)[:, None]])


def _keypoints_from_template(template: np.ndarray, crop_to_image: np.ndarray) -> np.ndarray:
    return align.transform_points(template, crop_to_image)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(300, 360, 3), dtype=np.uint8)


CROP_TO_IMAGE = _similarity(12.0, 0.8, (70.0, 40.0))


@pytest.mark.parametrize(
    ("mode", "template"),
    [
        ("insightface_v2", align.insightface_v2_template(SIZE)),
        ("insightface_v1", align.INSIGHTFACE_V1_TEMPLATES_112[2] * (SIZE / 112)),
        ("facexlib", align.FFHQ_TEMPLATE_512 * (SIZE / 512)),
        ("mtcnn", align.mtcnn_template(SIZE)),
    ],
)
def test_exact_keypoints_map_onto_the_template(image: np.ndarray, mode: str, template: np.ndarray) -> None:
    keypoints = _keypoints_from_template(template, CROP_TO_IMAGE)
    face, matrix = align.align_face(image, keypoints, mode=mode, size=SIZE)
    assert face.shape == (SIZE, SIZE, 3) and face.dtype == np.uint8
    assert matrix.shape == (2, 3) and matrix.dtype == np.float64
    np.testing.assert_allclose(align.transform_points(keypoints, matrix), template, atol=2e-3)
    border = align.FACEXLIB_BORDER_VALUE if mode == "facexlib" else (0, 0, 0)
    np.testing.assert_array_equal(face, cv2.warpAffine(image, matrix, (SIZE, SIZE), borderValue=border))


def test_insightface_v2_template_sizes() -> None:
    np.testing.assert_allclose(align.insightface_v2_template(224), align.ARCFACE_TEMPLATE_112 * 2)
    # 256 is not a multiple of 112: scaled by 2 and shifted right by 16 (insightface's 128 convention).
    expected = align.ARCFACE_TEMPLATE_112 * 2 + np.array([16.0, 0.0], dtype=np.float32)
    np.testing.assert_allclose(align.insightface_v2_template(256), expected, atol=1e-4)
    with pytest.raises(ValueError, match="112 or 128"):
        align.insightface_v2_template(100)


def test_insightface_v1_picks_the_pose_template_that_fits() -> None:
    for index, template in enumerate(align.INSIGHTFACE_V1_TEMPLATES_112 * (SIZE / 112)):
        keypoints = _keypoints_from_template(template, CROP_TO_IMAGE)
        assert align.v1_template_index(keypoints, SIZE) == index


def test_facexlib_border_is_grey_and_lmeds_ignores_an_outlier(image: np.ndarray) -> None:
    template = align.FFHQ_TEMPLATE_512 * (SIZE / 512)
    keypoints = _keypoints_from_template(template, _similarity(0.0, 0.3, (-20.0, -30.0)))
    face, _ = align.align_face(image, keypoints, mode="facexlib", size=SIZE)
    assert tuple(face[0, 0]) == align.FACEXLIB_BORDER_VALUE  # crop (0, 0) is image (-20, -30)
    keypoints[4] += (25.0, 10.0)
    assert align.lmeds_inlier_mask(keypoints, SIZE).tolist() == [1, 1, 1, 1, 0]


def test_mtcnn_template_is_computed_per_size() -> None:
    keypoints = _keypoints_from_template(align.mtcnn_template(SIZE), CROP_TO_IMAGE)
    small = align.alignment_matrix(None, keypoints, "mtcnn", SIZE)
    large = align.alignment_matrix(None, keypoints, "mtcnn", 2 * SIZE)
    # The original cached the first size's template; a 512 crop must be the 256 one scaled by 2.
    np.testing.assert_allclose(large, 2 * small, rtol=1e-5, atol=1e-4)


def test_mtcnn_reflection_only_for_mirrored_keypoints() -> None:
    template = align.mtcnn_template(SIZE)
    normal = _keypoints_from_template(template, CROP_TO_IMAGE)
    assert np.linalg.det(align.alignment_matrix(None, normal, "mtcnn", SIZE)[:, :2]) > 0
    mirrored = normal.copy()
    mirrored[:, 0] = 400 - mirrored[:, 0]
    matrix = align.alignment_matrix(None, mirrored, "mtcnn", SIZE)
    assert np.linalg.det(matrix[:, :2]) < 0
    np.testing.assert_allclose(align.transform_points(mirrored, matrix), template, atol=2e-3)


class _IdentityAligner(torch.nn.Module):
    """Stand-in DFA whose 7th output (cv2_tfms) is the identity: the cvlface mode then equals facexlib."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[tuple[int, ...], int]] = []

    def forward(self, x: torch.Tensor, output_size: int = 256) -> tuple:
        self.calls.append((tuple(x.shape), output_size))
        identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
        return (None,) * 6 + (identity,)


def test_cvlface_composes_the_aligner_matrix_after_facexlib(image: np.ndarray) -> None:
    keypoints = _keypoints_from_template(align.FFHQ_TEMPLATE_512 * (SIZE / 512), CROP_TO_IMAGE)
    aligner = _IdentityAligner()
    face, matrix = align.align_face(image, keypoints, mode="cvlface", size=SIZE, cvlface_aligner=aligner)
    assert aligner.calls == [((1, 3, SIZE, SIZE), SIZE)]
    np.testing.assert_allclose(matrix, align.facexlib_matrix(keypoints, SIZE), atol=1e-12)
    np.testing.assert_array_equal(face, cv2.warpAffine(image, matrix, (SIZE, SIZE)))  # black border, not grey
    with pytest.raises(ValueError, match="cvlface"):
        align.align_face(image, keypoints, mode="cvlface", size=SIZE)


def test_unknown_mode_lists_the_choices(image: np.ndarray) -> None:
    keypoints = _keypoints_from_template(align.insightface_v2_template(SIZE), CROP_TO_IMAGE)
    with pytest.raises(ValueError) as error:
        align.align_face(image, keypoints, mode="arcface")
    for mode in align.ALIGN_MODES:
        assert mode in str(error.value)


def test_transform_points_is_float32_and_affine() -> None:
    points = np.array([[0.0, 0.0], [10.0, 5.0]], dtype=np.float64)
    matrix = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0]])
    moved = align.transform_points(points, matrix)
    assert moved.dtype == np.float32
    np.testing.assert_array_equal(moved, [[1.0, -1.0], [21.0, 14.0]])


def test_umeyama_recovers_a_similarity() -> None:
    source = np.array([[0, 0], [10, 0], [0, 10], [7, 3]], dtype=np.float64)
    truth = _similarity(-30.0, 1.7, (5.0, -2.0))
    destination = align.transform_points(source, truth).astype(np.float64)
    np.testing.assert_allclose(align.umeyama_similarity(source, destination), truth, atol=1e-4)


def test_keypoints_without_extent_are_rejected(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="keypoints"):
        align.align_face(image, np.full((5, 2), 50.0, dtype=np.float32), mode="insightface_v2")


def test_degenerate_keypoints_are_a_user_error_not_a_traceback() -> None:
    from utils.errors import AlignmentError, GhostError

    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(GhostError, match="do not define a face") as raised:
        align.align_face(image, np.full((5, 2), 10.0, np.float32), "insightface_v2", 256)
    assert isinstance(raised.value, AlignmentError) and isinstance(raised.value, ValueError)
