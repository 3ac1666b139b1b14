"""Paste a swapped face (in the aligned crop frame) back into the target image.

Every mode takes the ``H×W×3 uint8 BGR`` target image, the swapped face (``S×S×3 uint8 BGR``, S = 256 in
inference) and the ``2×3 float64`` alignment matrix ``M`` of the target face (image → crop, as returned by
:func:`utils.align.align_face`), and returns ``(image, mask)``: the ``H×W×3 uint8 BGR`` result and, for the
modes whose edge may be inpainted (``ghost``, ``facexlib_with_parser``), an ``H×W uint8`` mask of the pasted
face (else None). Mode ``none`` returns the swapped face itself. Numbers follow
../shared/conformance/geometry/README.md §3 (with the fixes its ``*_fixed`` vectors describe).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from models.bisenet import face_region_mask
from utils.masks import erode_and_clear_border, landmark_hull_mask, raise_eyebrows

PASTE_BACK_MODES = ("ghost", "facexlib_with_parser", "facexlib_without_parser", "insightface", "basic", "none")
MODES_WITH_MASK = ("ghost", "facexlib_with_parser")

# A face parser maps a PARSER_INPUT_SIZE² uint8 BGR face to an integer label map of the same size.
FaceParser = Callable[[np.ndarray], np.ndarray]
PARSER_INPUT_SIZE = 512  # BiSeNet's training size
PARSER_BLUR_KERNEL, PARSER_BLUR_SIGMA, PARSER_BORDER = 101, 11, 10


def _inverse_warp(image: np.ndarray, matrix: np.ndarray, target_shape: tuple[int, ...], **kwargs: Any) -> np.ndarray:
    """Warp a crop-frame array back into the target frame (``matrix`` maps target → crop)."""
    height, width = target_shape[:2]
    return cv2.warpAffine(image, cv2.invertAffineTransform(matrix), (width, height), **kwargs)


def paste_back_basic(
    target_image: np.ndarray, swapped_face: np.ndarray, matrix: np.ndarray
) -> tuple[np.ndarray, None]:
    """Warp the face back and composite it with its own (bilinear-edged) square as alpha.

    Outside the warped face square the result equals the target. (The original returned the warped
    face on black; conformance vector paste_basic_fixed.)
    """
    warped_face = _inverse_warp(swapped_face, matrix, target_image.shape)
    alpha = _inverse_warp(np.ones(swapped_face.shape[:2], dtype=np.float32), matrix, target_image.shape)[:, :, None]
    return (alpha * warped_face + (1 - alpha) * target_image).astype(np.uint8), None


def paste_back_insightface(
    target_image: np.ndarray, swapped_face: np.ndarray, matrix: np.ndarray
) -> tuple[np.ndarray, None]:
    """insightface's paste-back: the warped face square, eroded and blurred by amounts relative to its size."""
    warped_face = _inverse_warp(swapped_face, matrix, target_image.shape, borderValue=0.0)
    white = np.full(swapped_face.shape[:2], 255, dtype=np.float32)
    mask = _inverse_warp(white, matrix, target_image.shape, borderValue=0.0)
    mask[mask > 20] = 255
    rows, columns = np.nonzero(mask == 255)
    face_size = int(np.sqrt((rows.max() - rows.min()) * (columns.max() - columns.min())))
    erode = max(face_size // 10, 10)
    mask = cv2.erode(mask, np.ones((erode, erode), dtype=np.uint8), iterations=1)
    blur = max(face_size // 20, 5)
    mask = cv2.GaussianBlur(mask, (2 * blur + 1, 2 * blur + 1), 0)
    mask = (mask / 255)[:, :, None]
    return (mask * warped_face + (1 - mask) * target_image.astype(np.float32)).astype(np.uint8), None


def paste_back_facexlib_without_parser(
    target_image: np.ndarray, swapped_face: np.ndarray, matrix: np.ndarray
) -> tuple[np.ndarray, None]:
    """facexlib's paste-back without a parser: the face square, eroded and blurred by 1/20 of its size."""
    warped_face = _inverse_warp(swapped_face, matrix, target_image.shape)
    square = _inverse_warp(np.ones(swapped_face.shape[:2], dtype=np.float32), matrix, target_image.shape)
    # A 2×2 erosion removes the half-covered bilinear rim, so no black border of the warp leaks in.
    square = cv2.erode(square, np.ones((2, 2), dtype=np.uint8))
    pasted_face = square[:, :, None] * warped_face
    edge = int(np.sqrt(np.sum(square))) // 20
    centre = cv2.erode(square, np.ones((2 * edge, 2 * edge), dtype=np.uint8))
    soft = cv2.GaussianBlur(centre, (2 * edge + 1, 2 * edge + 1), 0)[:, :, None]
    return (soft * pasted_face + (1 - soft) * target_image).astype(np.uint8), None


def parser_face_masks(labels: np.ndarray, face_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Hard and soft face masks from a parser label map, in ``[0, 1]`` float64 at ``face_size²``.

    ``labels``: ``P×P`` integer BiSeNet classes. The hard mask is 255 on the face classes (models.bisenet); the
    soft one is it blurred twice (101×101, σ 11); both get a 10-pixel zero border at the parser's resolution.
    """
    hard = face_region_mask(labels).astype(np.float64)
    soft = cv2.GaussianBlur(hard, (PARSER_BLUR_KERNEL, PARSER_BLUR_KERNEL), PARSER_BLUR_SIGMA)
    soft = cv2.GaussianBlur(soft, (PARSER_BLUR_KERNEL, PARSER_BLUR_KERNEL), PARSER_BLUR_SIGMA)
    masks = []
    for mask in (hard, soft):
        mask[:PARSER_BORDER, :] = 0
        mask[-PARSER_BORDER:, :] = 0
        mask[:, :PARSER_BORDER] = 0
        mask[:, -PARSER_BORDER:] = 0
        masks.append(cv2.resize(mask / 255.0, (face_size, face_size), interpolation=cv2.INTER_LINEAR))
    return masks[0], masks[1]


def paste_back_facexlib_with_parser(
    target_image: np.ndarray, swapped_face: np.ndarray, matrix: np.ndarray, face_parser: FaceParser
) -> tuple[np.ndarray, np.ndarray]:
    """facexlib's paste-back with a face parser: a soft mask of the parsed face regions.

    ``face_parser`` gets the face resized to ``PARSER_INPUT_SIZE²`` (``uint8 BGR``) and returns its label
    map (the original fed the 256 face by mistake; conformance vector paste_facexlib_with_parser_fixed).
    Returns the composite and the warped hard parser mask (``H×W uint8``, soft-edged by the warp only).
    """
    face_size = swapped_face.shape[0]
    parser_input = cv2.resize(swapped_face, (PARSER_INPUT_SIZE, PARSER_INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    labels = np.asarray(face_parser(parser_input))
    hard, soft = parser_face_masks(labels, face_size)
    warped_face = _inverse_warp(swapped_face, matrix, target_image.shape)
    # INTER_AREA as in facexlib; warpAffine treats it as bilinear.
    warped_hard = _inverse_warp(hard, matrix, target_image.shape, flags=cv2.INTER_AREA)
    warped_soft = _inverse_warp(soft, matrix, target_image.shape, flags=cv2.INTER_AREA)[:, :, None]
    image = (warped_soft * warped_face + (1 - warped_soft) * target_image).astype(np.uint8)
    return image, (warped_hard * 255).astype(np.uint8)


@dataclass(frozen=True)
class GhostMaskSettings:
    """How much the ghost source mask is shrunk (``erode`` < 0 grows it) and blurred, and the brow raise."""

    erode: int
    sigma_x: int
    sigma_y: int
    eyebrow_factor: float


TARGET_MASK_ERODE, TARGET_MASK_BORDER, TARGET_EYEBROW_FACTOR = 5, 10, 2.0


def jaw_offsets(source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> tuple[float, float, float]:
    """How far the source jaw sticks out beyond the target's, left and right, in pixels (x only).

    ``*_landmarks``: ``68×2`` in their aligned crop frames. Returns ``(left, right, max)``: left sums the x
    differences source − target at jaw points 0, 3, 1; right target − source at 16, 13, 15. (The port of
    Ghost to 68 points summed y as well; conformance vector paste_ghost_fixed.)
    """
    source = np.asarray(source_landmarks, dtype=np.float32)
    target = np.asarray(target_landmarks, dtype=np.float32)
    left = np.sum(source[[0, 3, 1], 0] - target[[0, 3, 1], 0])
    right = np.sum(target[[16, 13, 15], 0] - source[[16, 13, 15], 0])
    return float(left), float(right), float(max(left, right))


def ghost_mask_settings(offset: float) -> GhostMaskSettings:
    """Ghost's four mask settings, chosen by the jaw offset: a wider source jaw gets a tighter mask."""
    if offset > 6:
        return GhostMaskSettings(15, 15, 10, 2.7)
    if offset > 3:
        return GhostMaskSettings(10, 10, 8, 2.0)
    if offset < -3:
        return GhostMaskSettings(-5, 5, 10, 0.5)
    return GhostMaskSettings(5, 5, 5, 2.0)


def ghost_face_masks(
    source_landmarks: np.ndarray, target_landmarks: np.ndarray, face_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three ghost masks in the crop frame (``face_shape`` = (S, S)), uint8 0..255.

    Returns ``(soft_source, hard_source, hard_target)``: the source hull mask eroded, border-cleared and
    blurred; the same before the blur; the target hull mask eroded by 5 with a 10-pixel clear border.
    """
    settings = ghost_mask_settings(jaw_offsets(source_landmarks, target_landmarks)[2])
    source_hull = landmark_hull_mask(raise_eyebrows(source_landmarks, settings.eyebrow_factor), face_shape)
    hard_source = erode_and_clear_border(source_hull, settings.erode, 2 * settings.sigma_y)
    soft_source = cv2.GaussianBlur(hard_source, (0, 0), sigmaX=settings.sigma_x, sigmaY=settings.sigma_y)
    target_hull = landmark_hull_mask(raise_eyebrows(target_landmarks, TARGET_EYEBROW_FACTOR), face_shape)
    hard_target = erode_and_clear_border(target_hull, TARGET_MASK_ERODE, TARGET_MASK_BORDER)
    return soft_source, hard_source, hard_target


def paste_back_ghost(
    target_image: np.ndarray,
    swapped_face: np.ndarray,
    matrix: np.ndarray,
    source_landmarks: np.ndarray,
    target_landmarks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Ghost's paste-back: a soft mask shaped by the source face's 68 landmarks.

    ``source_landmarks`` / ``target_landmarks``: ``68×2`` (iBUG order) in their own aligned crop frames.
    The source mask is placed with the target matrix (Ghost's design). Returns the composite and the
    ``H×W uint8`` mask, 255 where both warped hard masks (source and target) are nonzero.
    """
    face_shape = swapped_face.shape[:2]
    soft_source, hard_source, hard_target = ghost_face_masks(source_landmarks, target_landmarks, face_shape)
    warped_face = _inverse_warp(swapped_face, matrix, target_image.shape, borderMode=cv2.BORDER_REPLICATE)
    alpha = _inverse_warp(soft_source / 255, matrix, target_image.shape)[:, :, None]
    image = (alpha * warped_face + (1 - alpha) * target_image).astype(np.uint8)
    warped_source = (_inverse_warp(hard_source / 255, matrix, target_image.shape) * 255).astype(np.uint8)
    warped_target = (_inverse_warp(hard_target / 255, matrix, target_image.shape) * 255).astype(np.uint8)
    mask = np.where((warped_source > 0) & (warped_target > 0), 255, 0).astype(np.uint8)
    return image, mask


def paste_back(
    mode: str,
    target_image: np.ndarray,
    swapped_face: np.ndarray,
    matrix: np.ndarray,
    *,
    source_landmarks: np.ndarray | None = None,
    target_landmarks: np.ndarray | None = None,
    face_parser: FaceParser | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Put the swapped face back into the target image with one of ``PASTE_BACK_MODES``.

    ``target_image``: ``H×W×3 uint8 BGR``; ``swapped_face``: ``S×S×3 uint8 BGR`` in the target's aligned
    frame; ``matrix``: the target's ``2×3`` image → crop matrix. ``ghost`` needs ``source_landmarks`` and
    ``target_landmarks`` (``68×2``, each in its aligned crop frame); ``facexlib_with_parser`` needs
    ``face_parser``. Returns ``(image, mask)``: ``H×W×3 uint8 BGR`` (``S×S×3``, the face itself, for
    ``none``) and an ``H×W uint8`` face mask for ``MODES_WITH_MASK``, else None. Raises ValueError for an
    unknown mode or a missing mode input.
    """
    if mode == "ghost":
        if source_landmarks is None or target_landmarks is None:
            raise ValueError("paste-back mode 'ghost' needs the 68-point landmarks of the source and target faces")
        return paste_back_ghost(target_image, swapped_face, matrix, source_landmarks, target_landmarks)
    if mode == "facexlib_with_parser":
        if face_parser is None:
            raise ValueError("paste-back mode 'facexlib_with_parser' needs a face parser (BiSeNet)")
        return paste_back_facexlib_with_parser(target_image, swapped_face, matrix, face_parser)
    if mode == "facexlib_without_parser":
        return paste_back_facexlib_without_parser(target_image, swapped_face, matrix)
    if mode == "insightface":
        return paste_back_insightface(target_image, swapped_face, matrix)
    if mode == "basic":
        return paste_back_basic(target_image, swapped_face, matrix)
    if mode == "none":
        return swapped_face, None
    raise ValueError(f"unknown paste-back mode {mode!r}; choose one of: {', '.join(PASTE_BACK_MODES)}")
