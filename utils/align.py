"""Face alignment from five keypoints: templates, estimators and the warp into a square crop.

Every mode returns ``(aligned_face, matrix)``: the ``size×size×3 uint8 BGR`` crop and the ``2×3 float64``
affine matrix (OpenCV convention) that maps original-image pixel coordinates ``(x, y)`` to crop
coordinates, so ``cv2.warpAffine(image, matrix, (size, size))`` is the crop and
``cv2.invertAffineTransform(matrix)`` brings a crop back (see utils/paste_back.py).

Keypoints are ``5×2 float32`` pixel coordinates in RetinaFace order: left eye, right eye, nose tip,
left mouth corner, right mouth corner ("left" = image-left). Numbers follow
../shared/conformance/geometry/README.md §1 and recognition/README.md §6.3.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import torch

from utils.errors import AlignmentError
from utils.image import bgr_to_tensor, check_face_points

ALIGN_MODES = ("insightface_v2", "insightface_v1", "facexlib", "mtcnn", "cvlface")
DEFAULT_ALIGN_MODE = "insightface_v2"


def check_align_mode(mode: str) -> None:
    """Raise AlignmentError (a GhostError and ValueError) unless ``mode`` is one of ``ALIGN_MODES``."""
    if mode not in ALIGN_MODES:
        raise AlignmentError(f"unknown align mode {mode!r}; choose one of: {', '.join(ALIGN_MODES)}")

# ArcFace 5-point template in a 112×112 frame (insightface); float32 like the original, which matters
# because the similarity fit keeps the input precision.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)

# The five pose templates of insightface's first alignment code (112 frame): strong left profile,
# left, frontal, right, strong right profile. The one that fits the keypoints best is used.
INSIGHTFACE_V1_TEMPLATES_112 = np.array(
    [
        [[51.642, 50.115], [57.617, 49.990], [35.740, 69.007], [51.157, 89.050], [57.025, 89.702]],
        [[45.031, 50.118], [65.568, 50.872], [39.677, 68.111], [45.177, 86.190], [64.246, 86.758]],
        [[39.730, 51.138], [72.270, 51.138], [56.000, 68.493], [42.463, 87.010], [69.537, 87.010]],
        [[46.845, 50.872], [67.382, 50.118], [72.737, 68.111], [48.167, 86.758], [67.236, 86.190]],
        [[54.796, 49.990], [60.771, 50.115], [76.673, 69.007], [55.388, 89.702], [61.257, 89.050]],
    ],
    dtype=np.float32,
)

# FFHQ template of facexlib/GFPGAN in a 512×512 frame.
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)
FACEXLIB_BORDER_VALUE = (135, 133, 132)  # BGR grey that facexlib fills outside the image with

# AdaFace/MTCNN reference points in a 96 (wide) × 112 (high) frame; centred in a square 112 frame.
# AdaFace's full-precision values: the 4-decimal rounding moves the matrices by ~3e-5.
MTCNN_TEMPLATE_96X112 = np.array(
    [
        [30.29459953, 51.69630051],
        [65.53179932, 51.50139999],
        [48.02519989, 71.73660278],
        [33.54930115, 92.3655014],
        [62.72990036, 92.20410156],
    ],
    dtype=np.float64,
)
MTCNN_FRAME_WIDTH, MTCNN_FRAME_HEIGHT = 96, 112


def umeyama_similarity(source: np.ndarray, destination: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) from source to destination.

    ``N×2`` points each; returns a ``2×3 float64`` matrix. The centring, covariance and SVD run in the
    points' own dtype (float32 for keypoints and templates), as scikit-image's ``SimilarityTransform``
    does: the alignment crops are bit-exact only with that precision.
    """
    count, dimensions = source.shape
    source_mean = source.mean(axis=0)
    destination_mean = destination.mean(axis=0)
    source_centred = source - source_mean
    destination_centred = destination - destination_mean
    covariance = destination_centred.T @ source_centred / count

    signs = np.ones(dimensions, dtype=np.float64)
    if np.linalg.det(covariance) < 0:
        signs[-1] = -1
    left, singular, right = np.linalg.svd(covariance)
    tolerance = singular.max() * max(covariance.shape) * np.finfo(float).eps
    rank = int(np.count_nonzero(singular > tolerance))
    if rank == 0:
        return np.full((2, 3), np.nan)
    if rank == dimensions - 1 and np.linalg.det(left) * np.linalg.det(right) <= 0:
        # Degenerate (collinear) points: pick the proper rotation explicitly.
        rank_signs = signs.copy()
        rank_signs[-1] = -1
        rotation = left @ np.diag(rank_signs) @ right
    elif rank == dimensions - 1:
        rotation = left @ right
    else:
        rotation = left @ np.diag(signs) @ right
    scale = 1.0 / source_centred.var(axis=0).sum() * (singular @ signs)
    matrix = np.zeros((2, 3), dtype=np.float64)
    matrix[:, 2] = destination_mean - scale * (rotation @ source_mean.T)
    matrix[:, :2] = rotation * scale
    return matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a ``2×3`` affine matrix to points (``trans_points2d`` of the original).

    ``points``: ``N×2`` (x, y), e.g. 68 landmarks in image pixels; returns ``N×2 float32`` in the
    matrix's destination frame (e.g. the aligned crop). Points are taken as float32, the product is
    computed in float64 with the matrix, and the result stored as float32.
    """
    points32 = np.asarray(points, dtype=np.float32)
    homogeneous = np.concatenate([points32, np.ones((len(points32), 1), dtype=np.float32)], axis=1)
    return (homogeneous.astype(np.float64) @ np.asarray(matrix, dtype=np.float64).T).astype(np.float32)


def insightface_v2_template(size: int) -> np.ndarray:
    """ArcFace template for a ``size×size`` crop (``5×2 float32``).

    Sizes divisible by 112 scale the 112 template; otherwise the size must be divisible by 128 and the
    template is scaled by ``size/128`` and shifted right by ``8·size/128`` (insightface's convention).
    """
    if size % 112 == 0:
        return ARCFACE_TEMPLATE_112 * (size / 112.0)
    if size % 128 != 0:
        raise AlignmentError(f"insightface_v2 alignment needs a crop size divisible by 112 or 128, got {size}")
    ratio = size / 128.0
    template = ARCFACE_TEMPLATE_112 * ratio
    template[:, 0] += 8.0 * ratio
    return template


def mtcnn_template(size: int) -> np.ndarray:
    """AdaFace/MTCNN reference points for a ``size×size`` crop (``5×2 float32``).

    The 96×112 template is centred in a square 112 frame (x + 8) and scaled by ``size/112`` in float64,
    then cast to float32 for the fit. Computed per call: the original cached the first size it saw.
    """
    shift = (MTCNN_FRAME_HEIGHT - MTCNN_FRAME_WIDTH) / 2.0
    template = MTCNN_TEMPLATE_96X112 * (size / MTCNN_FRAME_HEIGHT)
    template[:, 0] += shift * size / MTCNN_FRAME_HEIGHT
    return template.astype(np.float32)


def _estimate_insightface_v1(keypoints: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Best of the five v1 pose templates: the fit with the smallest summed point distance."""
    templates = INSIGHTFACE_V1_TEMPLATES_112 * (size / 112.0)
    homogeneous = np.insert(keypoints, 2, values=np.ones(len(keypoints)), axis=1)
    best_matrix, best_index, best_error = None, -1, float("inf")
    for index, template in enumerate(templates):
        matrix = umeyama_similarity(keypoints, template)
        mapped = (matrix @ homogeneous.T).T
        error = np.sum(np.sqrt(np.sum((mapped - template) ** 2, axis=1)))
        if error < best_error:
            best_matrix, best_index, best_error = matrix, index, error
    return best_matrix, best_index


def _nonreflective_similarity(keypoints: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-parameter similarity fitted template → keypoints by least squares (row-vector 3×3 matrices).

    ``keypoints`` and ``template`` are ``5×2 float32``; the fit runs in float64.

    Returns ``(keypoints_to_template, template_to_keypoints)``, both ``3×3`` acting on ``[x, y, 1]``
    row vectors, as in the MATLAB ``cp2tform`` port used by AdaFace.
    """
    x, y = template[:, :1].astype(np.float64), template[:, 1:].astype(np.float64)
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    system = np.vstack([np.hstack([x, y, ones, zeros]), np.hstack([y, -x, zeros, ones])])
    targets = np.concatenate([keypoints[:, 0], keypoints[:, 1]]).astype(np.float64)
    if np.linalg.matrix_rank(system) < 4:
        raise AlignmentError("mtcnn alignment needs at least two distinct keypoints")
    scale_cos, scale_sin, shift_x, shift_y = np.linalg.lstsq(system, targets, rcond=None)[0]
    template_to_keypoints = np.array(
        [[scale_cos, -scale_sin, 0.0], [scale_sin, scale_cos, 0.0], [shift_x, shift_y, 1.0]], dtype=np.float64
    )
    keypoints_to_template = np.linalg.inv(template_to_keypoints)
    keypoints_to_template[:, 2] = (0.0, 0.0, 1.0)
    return keypoints_to_template, template_to_keypoints


def _apply_row_transform(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    homogeneous = np.hstack([points, np.ones((len(points), 1))])
    return (homogeneous @ transform)[:, :2]


def _estimate_mtcnn(keypoints: np.ndarray, size: int) -> np.ndarray:
    """Similarity keypoints → MTCNN template, allowing a reflection when it fits strictly better."""
    template = mtcnn_template(size)
    direct, _ = _nonreflective_similarity(keypoints, template)
    # The reflective candidate fits against the x-mirrored template and is mirrored back. The original
    # mirrored the template in place, so both candidates were then scored against the mirrored one;
    # we score against the true template (conformance vectors align_mtcnn_*_fixed).
    mirrored_template = template.copy()
    mirrored_template[:, 0] = -mirrored_template[:, 0]
    mirrored_fit, _ = _nonreflective_similarity(keypoints, mirrored_template)
    reflective = mirrored_fit @ np.diag([-1.0, 1.0, 1.0])
    direct_error = np.linalg.norm(_apply_row_transform(direct, keypoints) - template)
    reflective_error = np.linalg.norm(_apply_row_transform(reflective, keypoints) - template)
    chosen = direct if direct_error <= reflective_error else reflective
    return np.ascontiguousarray(chosen[:, :2].T)


def facexlib_matrix(keypoints: np.ndarray, size: int) -> np.ndarray:
    """facexlib's matrix: OpenCV's robust (LMEDS) 4-DoF fit of the keypoints to the FFHQ template at ``size``.

    ``keypoints``: ``5×2`` pixels; returns ``2×3 float64``. LMEDS may drop an outlying keypoint, so
    this is not the plain least-squares fit (OpenCV's own function is needed for identical results).
    """
    template = FFHQ_TEMPLATE_512 * (size / 512.0)
    matrix = cv2.estimateAffinePartial2D(np.asarray(keypoints), template, method=cv2.LMEDS)[0]
    if matrix is None:
        raise AlignmentError("facexlib alignment failed: the keypoints do not define a similarity transform")
    return matrix


def _compose(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The ``2×3`` matrix of applying ``first`` and then ``second``."""
    bottom = np.array([[0.0, 0.0, 1.0]])
    return (np.vstack([second, bottom]) @ np.vstack([first, bottom]))[:2]


def cvlface_matrix(
    image_bgr: np.ndarray, keypoints: np.ndarray, size: int, cvlface_aligner: Callable[..., Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matrix of the cvlface mode: facexlib crop refined by CVLFace's differentiable face aligner (DFA).

    ``image_bgr``: ``H×W×3 uint8 BGR``; ``keypoints``: ``5×2`` pixels; ``cvlface_aligner``: the DFA
    module (``aligner(x, output_size=size)``, ``x`` ``1×3×size×size`` RGB in [-1, 1]; its 7th output is
    the ``N×2×3`` cv2 matrix in the crop frame). Returns ``(matrix, facexlib_crop, facexlib_matrix)``;
    ``matrix`` (``2×3 float64``) maps the original image to the final crop.
    """
    first_matrix = facexlib_matrix(keypoints, size)
    first_crop = cv2.warpAffine(
        image_bgr, first_matrix, (size, size), borderMode=cv2.BORDER_CONSTANT, borderValue=FACEXLIB_BORDER_VALUE
    )
    parameter = next(iter(cvlface_aligner.parameters()), None) if hasattr(cvlface_aligner, "parameters") else None
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.no_grad():
        outputs = cvlface_aligner(bgr_to_tensor(first_crop).to(device), output_size=size)
    refinement = outputs[-1]
    if isinstance(refinement, torch.Tensor):
        refinement = refinement.detach().cpu().numpy()
    refinement = np.asarray(refinement, dtype=np.float64).reshape(-1, 2, 3)[0]
    return _compose(refinement, first_matrix), first_crop, first_matrix


def alignment_matrix(
    image_bgr: np.ndarray,
    keypoints: np.ndarray,
    mode: str = DEFAULT_ALIGN_MODE,
    size: int = 256,
    cvlface_aligner: Callable[..., Any] | None = None,
) -> np.ndarray:
    """The ``2×3 float64`` image → crop matrix of an align mode (see :func:`align_face`)."""
    keypoints = np.asarray(keypoints, dtype=np.float32).reshape(5, 2)
    if mode == "insightface_v2":
        matrix = umeyama_similarity(keypoints, insightface_v2_template(size))
    elif mode == "insightface_v1":
        matrix = _estimate_insightface_v1(keypoints, size)[0]
    elif mode == "facexlib":
        matrix = facexlib_matrix(keypoints, size)
    elif mode == "mtcnn":
        matrix = _estimate_mtcnn(keypoints, size)
    elif mode == "cvlface":
        if cvlface_aligner is None:
            raise AlignmentError("align mode 'cvlface' needs the CVLFace aligner (load_model('cvlface_aligner'))")
        matrix = cvlface_matrix(image_bgr, keypoints, size, cvlface_aligner)[0]
    else:
        check_align_mode(mode)
    if not np.isfinite(matrix).all():
        raise AlignmentError(f"cannot align: the five keypoints do not define a face ({keypoints.tolist()})")
    return matrix


def align_face(
    image_bgr: np.ndarray,
    keypoints: np.ndarray,
    mode: str = DEFAULT_ALIGN_MODE,
    size: int = 256,
    cvlface_aligner: Callable[..., Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop the face given by five keypoints into a square, upright ``size×size`` image.

    ``image_bgr``: ``H×W×3 uint8 BGR``; ``keypoints``: ``5×2`` float pixels (RetinaFace order). Returns
    ``(aligned_face, matrix)``: ``size×size×3 uint8 BGR`` and the ``2×3 float64`` image → crop matrix.
    Modes (``ALIGN_MODES``): ``insightface_v2`` (ArcFace template, default), ``insightface_v1`` (best of
    five pose templates), ``facexlib`` (FFHQ template, LMEDS fit, grey border), ``mtcnn`` (AdaFace
    template), ``cvlface`` (facexlib refined by ``cvlface_aligner``, the DFA network). Outside the image
    the crop is black, except for facexlib (BGR 135, 133, 132). Raises AlignmentError (a ValueError) for an
    unknown mode or keypoints that define no face (FaceBoxError, one kind of it, for keypoints that cannot
    belong to the image: not finite, spread far wider than it, or outside it).
    """
    check_face_points(keypoints, image_bgr.shape, "keypoints")
    matrix = alignment_matrix(image_bgr, keypoints, mode, size, cvlface_aligner)
    border = FACEXLIB_BORDER_VALUE if mode == "facexlib" else (0, 0, 0)
    aligned_face = cv2.warpAffine(
        image_bgr, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border
    )
    return aligned_face, matrix


def v1_template_index(keypoints: np.ndarray, size: int) -> int:
    """Index (0..4) of the insightface_v1 pose template chosen for these keypoints (diagnostics)."""
    return _estimate_insightface_v1(np.asarray(keypoints, dtype=np.float32).reshape(5, 2), size)[1]


def lmeds_inlier_mask(keypoints: np.ndarray, size: int) -> np.ndarray:
    """The ``5`` uint8 inlier flags of facexlib's LMEDS fit (0 = keypoint ignored; diagnostics)."""
    template = FFHQ_TEMPLATE_512 * (size / 512.0)
    keypoints = np.asarray(keypoints, dtype=np.float32)
    return cv2.estimateAffinePartial2D(keypoints, template, method=cv2.LMEDS)[1].reshape(-1)

