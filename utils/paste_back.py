"""Paste a swapped face (in the aligned crop frame) back into the target image.

Every mode takes the ``H×W×3 uint8 BGR`` target image, the swapped face (``S×S×3 uint8 BGR``, S = 256 in
inference) and the ``2×3 float64`` alignment matrix ``M`` of the target face (image → crop, as returned by
:func:`utils.align.align_face`), and returns ``(image, mask)``: the ``H×W×3 uint8 BGR`` result and, for the
modes whose edge may be inpainted (``ghost``, ``facexlib_with_parser``), an ``H×W uint8`` mask of the pasted
face (else None). Mode ``none`` returns the swapped face itself. Numbers follow
../shared/conformance/geometry/README.md §3 (with the fixes its ``*_fixed`` vectors describe).

Every mode but ``none`` also takes an optional ``face_mask`` (``S×S float32`` in [0, 1], crop frame; see
utils/face_masks.py) that multiplies the mode's own alpha inside the face region. None leaves the mode exactly as
it is, and so does a mask of ones. The returned H×W mask (the inpainting band's) stays the mode's own.
"""
from __future__ import annotations

import functools
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
GHOST_MASK_SIZE = 256  # the crop size the ghost mask constants (erosions, blurs in pixels) were written for


def _inverse_warp(image: np.ndarray, matrix: np.ndarray, target_shape: tuple[int, ...], **kwargs: Any) -> np.ndarray:
    """Warp a crop-frame array back into the whole target frame (``matrix`` maps target → crop)."""
    height, width = target_shape[:2]
    return cv2.warpAffine(image, cv2.invertAffineTransform(matrix), (width, height), **kwargs)


# ---------------------------------------------------------------------------------------------------- face regions
# Paste-back touches only the face's bounding box. Its warps must equal the same pixels of a whole-frame
# cv2.warpAffine bit for bit (the conformance vectors are exact), so they are done with cv2.remap on maps that
# repeat warpAffine's own coordinate arithmetic for those pixels: fixed point (1/1024 px, then 1/32 px tables)
# for float64 arrays; float32 with fused multiply-adds (SIMD blocks and the scalar row tail) for uint8/float32
# arrays. That arithmetic depends on the CPU's SIMD width, so it is checked once against
# warpAffine (FLOAT_KERNEL_VARIANTS); where none matches, the region is cut from a whole-frame warp.

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive) in target pixels
AB_SCALE, INTER_BITS, INTER_TAB_SIZE = 1024, 5, 32  # OpenCV's fixed-point affine constants
FILTER_BLOCK = 64  # a multiple of every SIMD width (in pixels) of OpenCV's filters
FLOAT_KERNEL_VARIANTS = ((16, True), (8, True), (32, True), (16, False), (8, False), (4, False))  # (block, fma)


def face_region(matrix: np.ndarray, face_size: int, target_shape: tuple[int, ...], margin: int = 0) -> Region | None:
    """Bounding box of the pasted ``face_size²`` square in the target, grown by its bilinear rim and ``margin``.

    Outside it every warp of the crop is its border value. None when the square misses the target.
    """
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [face_size, 0], [0, face_size], [face_size, face_size]], dtype=np.float64)
    points = corners @ inverse[:, :2].T + inverse[:, 2]
    scale = np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2])))
    # One crop pixel of bilinear reach is 1/scale target pixels.
    grow = int(np.ceil(1.0 / max(scale, 1e-6))) + 2 + int(margin)
    height, width = target_shape[:2]
    x0 = max(int(np.floor(points[:, 0].min())) - grow, 0)
    y0 = max(int(np.floor(points[:, 1].min())) - grow, 0)
    x1 = min(int(np.ceil(points[:, 0].max())) + grow + 1, width)
    y1 = min(int(np.ceil(points[:, 1].max())) + grow + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def _fixed_point_maps(forward: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """warpAffine's fixed-point source coordinates of ``region`` (its float64 path): CV_16SC2 and CV_16UC1 maps."""
    x0, y0, x1, y1 = region
    columns, rows = np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64)
    round_delta = AB_SCALE // INTER_TAB_SIZE // 2
    coordinates = []
    for row in forward:
        along_x = np.rint(row[0] * columns * AB_SCALE).astype(np.int64)
        along_y = np.rint((row[1] * rows + row[2]) * AB_SCALE).astype(np.int64) + round_delta
        coordinates.append((along_y[:, None] + along_x[None, :]) >> (10 - INTER_BITS))
    x, y = coordinates
    whole = np.stack([x >> INTER_BITS, y >> INTER_BITS], axis=-1).clip(-32768, 32767).astype(np.int16)
    fraction = ((y & (INTER_TAB_SIZE - 1)) * INTER_TAB_SIZE + (x & (INTER_TAB_SIZE - 1))).astype(np.uint16)
    return whole, fraction


def _float_maps(forward: np.ndarray, region: Region, width: int, block: int, fma: bool) -> tuple[np.ndarray, ...]:
    """warpAffine's float32 source coordinates of ``region`` (its uint8/float32 path) in a ``width``-wide frame."""
    x0, y0, x1, y1 = region
    single = np.float32
    matrix = np.asarray(forward, dtype=single)
    columns, rows = np.arange(x0, x1).astype(single), np.arange(y0, y1).astype(single)
    tail = np.arange(x0, x1) >= width - width % block
    maps = []
    for a, b, c in matrix:
        row_term = (rows * b).astype(single) + c
        if fma:
            # float64 holds the exact product and sum here, so one rounding to float32 is a fused multiply-add.
            values = (np.float64(a) * columns.astype(np.float64)[None, :] + row_term.astype(np.float64)[:, None])
        else:
            values = (columns * a)[None, :] + row_term[:, None]
        values = values.astype(single)
        if tail.any():
            # The row tail is scalar code: x·a + y·b + c, contracted to fma(x, a, y·b) + c where FMA exists.
            if fma:
                tail_values = (np.float64(a) * columns[tail].astype(np.float64)[None, :]
                               + (rows * b).astype(np.float64)[:, None]).astype(single) + c
            else:
                tail_values = ((columns[tail] * a)[None, :] + (rows * b)[:, None]) + c
            values[:, tail] = tail_values
        maps.append(values)
    return tuple(maps)


def _remap(image: np.ndarray, maps: tuple[np.ndarray, ...], **kwargs: Any) -> np.ndarray:
    flags = kwargs.pop("flags", cv2.INTER_LINEAR)
    interpolation = cv2.INTER_LINEAR if flags in (cv2.INTER_LINEAR, cv2.INTER_AREA) else flags
    return cv2.remap(image, maps[0], maps[1], interpolation, **kwargs)


@functools.cache
def float_kernel_variant() -> tuple[int, bool] | None:
    """The (SIMD block, fused multiply-add) pair that reproduces this machine's warpAffine, or None."""
    generator = np.random.default_rng(0)
    shape = (24, 3 * 32 + 7)
    region = (0, 0, shape[1], shape[0])
    images = [generator.integers(0, 256, (40, 40, 3), dtype=np.uint8), generator.random((40, 40), dtype=np.float32)]
    matrices = [np.array([[0.37, -0.61, 11.3], [0.59, 0.41, -7.9]]), np.array([[1.7, 0.3, -3.1], [-0.2, 1.3, 2.2]])]
    for block, fma in FLOAT_KERNEL_VARIANTS:
        if all(np.array_equal(_remap(image, _float_maps(cv2.invertAffineTransform(inverse), region, shape[1], block,
                                                        fma), borderMode=border),
                              cv2.warpAffine(image, inverse, shape[::-1], borderMode=border))
               for image in images for inverse in matrices for border in (cv2.BORDER_CONSTANT, cv2.BORDER_REPLICATE)):
            return block, fma
    return None


def warp_region(
    image: np.ndarray, matrix: np.ndarray, target_shape: tuple[int, ...], region: Region, **kwargs: Any
) -> np.ndarray:
    """``_inverse_warp(image, matrix, target_shape, **kwargs)[y0:y1, x0:x1]`` for ``region``, without the rest.

    ``image``: a crop-frame uint8, float32 or float64 array; ``matrix``: target → crop (2×3). Keywords as
    cv2.warpAffine (``flags`` INTER_LINEAR or INTER_AREA, ``borderMode``, ``borderValue``).
    """
    x0, y0, x1, y1 = region
    # warpAffine inverts the matrix it is given; invertAffineTransform does the same arithmetic.
    forward = cv2.invertAffineTransform(cv2.invertAffineTransform(matrix))
    if image.dtype == np.float64:
        return _remap(image, _fixed_point_maps(forward, region), **kwargs)
    variant = float_kernel_variant() if image.dtype in (np.uint8, np.float32) else None
    if variant is None:
        return _inverse_warp(image, matrix, target_shape, **kwargs)[y0:y1, x0:x1]
    return _remap(image, _float_maps(forward, region, target_shape[1], *variant), **kwargs)


def _filter_region(
    matrix: np.ndarray, face_size: int, target_shape: tuple[int, ...], reach_divisor: int
) -> Region | None:
    """The face region for paste-backs that erode and blur their mask, reaching past the warped square by less
    than its side / ``reach_divisor`` (plus a few pixels).

    Filters give the same numbers on a region as on the whole frame when the region's rim is zero beyond their
    reach plus one SIMD block, and its left edge sits on a multiple of the widest SIMD block (so that each
    pixel takes the same lane, and the same row tail at the frame's right edge).
    """
    side = face_size / np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2])))
    reach = int(side // reach_divisor) + 12
    region = face_region(matrix, face_size, target_shape, margin=reach + FILTER_BLOCK)
    if region is None:
        return None
    x0, y0, x1, y1 = region
    return x0 - x0 % FILTER_BLOCK, y0, x1, y1


def _blend_region(target_image: np.ndarray, region: Region, alpha: np.ndarray, face: np.ndarray) -> np.ndarray:
    """A copy of the target whose ``region`` is ``alpha·face + (1 − alpha)·target`` truncated to uint8.

    Outside the region alpha is 0, where that formula gives the target itself.
    """
    x0, y0, x1, y1 = region
    image = target_image.copy()
    image[y0:y1, x0:x1] = (alpha * face + (1 - alpha) * target_image[y0:y1, x0:x1]).astype(np.uint8)
    return image


def _masked_alpha(
    alpha: np.ndarray, face_mask: np.ndarray | None, matrix: np.ndarray, target_shape: tuple[int, ...], region: Region
) -> np.ndarray:
    """The mode's ``alpha`` (``h×w×1`` or ``h×w``, over ``region``) times the warped crop-frame ``face_mask``.

    The mask is warped with a replicated border, so a mask of ones gives exactly the mode's alpha.
    """
    if face_mask is None:
        return alpha
    warped = warp_region(np.asarray(face_mask, dtype=np.float32), matrix, target_shape, region,
                         borderMode=cv2.BORDER_REPLICATE)
    return alpha * (warped[:, :, None] if alpha.ndim == 3 else warped)


def _full_mask(target_shape: tuple[int, ...], region: Region, values: np.ndarray) -> np.ndarray:
    """An ``H×W uint8`` mask holding ``values`` in ``region`` and 0 elsewhere."""
    x0, y0, x1, y1 = region
    mask = np.zeros(target_shape[:2], dtype=np.uint8)
    mask[y0:y1, x0:x1] = values
    return mask


def paste_back_basic(
    target_image: np.ndarray, swapped_face: np.ndarray, matrix: np.ndarray, face_mask: np.ndarray | None = None
) -> tuple[np.ndarray, None]:
    """Warp the face back and composite it with its own (bilinear-edged) square as alpha.

    Outside the warped face square the result equals the target. (The original returned the warped
    face on black; conformance vector paste_basic_fixed.)
    """
    region = face_region(matrix, swapped_face.shape[0], target_image.shape)
    if region is None:
        return target_image.copy(), None
    warped_face = warp_region(swapped_face, matrix, target_image.shape, region)
    square = np.ones(swapped_face.shape[:2], dtype=np.float32)
    alpha = warp_region(square, matrix, target_image.shape, region)[:, :, None]
    alpha = _masked_alpha(alpha, face_mask, matrix, target_image.shape, region)
    return _blend_region(target_image, region, alpha, warped_face), None


def paste_back_insightface(
    target_image: np.ndarray, swapped_face: np.ndarray, matrix: np.ndarray, face_mask: np.ndarray | None = None
) -> tuple[np.ndarray, None]:
    """insightface's paste-back: the warped face square, eroded and blurred by amounts relative to its size."""
    # The erosion and the blur reach less than a fifth of the face's side (plus a few pixels) past the square.
    region = _filter_region(matrix, swapped_face.shape[0], target_image.shape, reach_divisor=5)
    if region is None:
        return target_image.copy(), None
    warped_face = warp_region(swapped_face, matrix, target_image.shape, region, borderValue=0.0)
    white = np.full(swapped_face.shape[:2], 255, dtype=np.float32)
    mask = warp_region(white, matrix, target_image.shape, region, borderValue=0.0)
    mask[mask > 20] = 255
    rows, columns = np.nonzero(mask == 255)
    face_size = int(np.sqrt((rows.max() - rows.min()) * (columns.max() - columns.min())))
    erode = max(face_size // 10, 10)
    mask = cv2.erode(mask, np.ones((erode, erode), dtype=np.uint8), iterations=1)
    blur = max(face_size // 20, 5)
    mask = cv2.GaussianBlur(mask, (2 * blur + 1, 2 * blur + 1), 0)
    mask = _masked_alpha((mask / 255)[:, :, None], face_mask, matrix, target_image.shape, region)
    return _blend_region(target_image, region, mask, warped_face), None


def paste_back_facexlib_without_parser(
    target_image: np.ndarray, swapped_face: np.ndarray, matrix: np.ndarray, face_mask: np.ndarray | None = None
) -> tuple[np.ndarray, None]:
    """facexlib's paste-back without a parser: the face square, eroded and blurred by 1/20 of its size."""
    region = _filter_region(matrix, swapped_face.shape[0], target_image.shape, reach_divisor=10)
    if region is None:
        return target_image.copy(), None
    warped_face = warp_region(swapped_face, matrix, target_image.shape, region)
    square = warp_region(np.ones(swapped_face.shape[:2], dtype=np.float32), matrix, target_image.shape, region)
    # A 2×2 erosion removes the half-covered bilinear rim, so no black border of the warp leaks in.
    square = cv2.erode(square, np.ones((2, 2), dtype=np.uint8))
    pasted_face = square[:, :, None] * warped_face
    edge = int(np.sqrt(np.sum(square))) // 20
    centre = cv2.erode(square, np.ones((2 * edge, 2 * edge), dtype=np.uint8))
    soft = cv2.GaussianBlur(centre, (2 * edge + 1, 2 * edge + 1), 0)[:, :, None]
    soft = _masked_alpha(soft, face_mask, matrix, target_image.shape, region)
    return _blend_region(target_image, region, soft, pasted_face), None


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


def parse_face_labels(face: np.ndarray, face_parser: FaceParser) -> np.ndarray:
    """The label map of an ``S×S×3 uint8 BGR`` face: resized to ``PARSER_INPUT_SIZE²`` (BiSeNet's training size)
    and parsed, ``PARSER_INPUT_SIZE²`` integer classes. The paste-back and the face masks share it."""
    if face.shape[0] != PARSER_INPUT_SIZE:
        face = cv2.resize(face, (PARSER_INPUT_SIZE, PARSER_INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return np.asarray(face_parser(face))


def paste_back_facexlib_with_parser(
    target_image: np.ndarray, swapped_face: np.ndarray, matrix: np.ndarray, face_parser: FaceParser | None,
    face_mask: np.ndarray | None = None, face_labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """facexlib's paste-back with a face parser: a soft mask of the parsed face regions.

    ``face_parser`` gets the face resized to ``PARSER_INPUT_SIZE²`` (``uint8 BGR``) and returns its label
    map (the original fed the 256 face by mistake; conformance vector paste_facexlib_with_parser_fixed);
    ``face_labels``, that map already computed (:func:`parse_face_labels`), saves the parse.
    Returns the composite and the warped hard parser mask (``H×W uint8``, soft-edged by the warp only).
    """
    face_size = swapped_face.shape[0]
    labels = parse_face_labels(swapped_face, face_parser) if face_labels is None else np.asarray(face_labels)
    hard, soft = parser_face_masks(labels, face_size)
    region = face_region(matrix, face_size, target_image.shape)
    if region is None:
        return target_image.copy(), np.zeros(target_image.shape[:2], dtype=np.uint8)
    warped_face = warp_region(swapped_face, matrix, target_image.shape, region)
    # INTER_AREA as in facexlib; warpAffine treats it as bilinear.
    warped_hard = warp_region(hard, matrix, target_image.shape, region, flags=cv2.INTER_AREA)
    warped_soft = warp_region(soft, matrix, target_image.shape, region, flags=cv2.INTER_AREA)[:, :, None]
    warped_soft = _masked_alpha(warped_soft, face_mask, matrix, target_image.shape, region)
    image = _blend_region(target_image, region, warped_soft, warped_face)
    return image, _full_mask(target_image.shape, region, (warped_hard * 255).astype(np.uint8))


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
    source_landmarks: np.ndarray, target_landmarks: np.ndarray, face_shape: tuple[int, int],
    settings: GhostMaskSettings | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three ghost masks in the crop frame (``face_shape`` = (S, S)), uint8 0..255.

    Returns ``(soft_source, hard_source, hard_target)``: the source hull mask eroded, border-cleared and
    blurred; the same before the blur; the target hull mask eroded by 5 with a 10-pixel clear border.
    ``settings`` default to those the jaw offset of the two landmark sets chooses.
    """
    if settings is None:
        settings = ghost_mask_settings(jaw_offsets(source_landmarks, target_landmarks)[2])
    source_hull = landmark_hull_mask(raise_eyebrows(source_landmarks, settings.eyebrow_factor), face_shape)
    hard_source = erode_and_clear_border(source_hull, settings.erode, 2 * settings.sigma_y)
    soft_source = cv2.GaussianBlur(hard_source, (0, 0), sigmaX=settings.sigma_x, sigmaY=settings.sigma_y)
    target_hull = landmark_hull_mask(raise_eyebrows(target_landmarks, TARGET_EYEBROW_FACTOR), face_shape)
    hard_target = erode_and_clear_border(target_hull, TARGET_MASK_ERODE, TARGET_MASK_BORDER)
    return soft_source, hard_source, hard_target


def ghost_masks_at(
    source_landmarks: np.ndarray, target_landmarks: np.ndarray, face_size: int,
    settings: GhostMaskSettings | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`ghost_face_masks` of a ``face_size`` crop (landmarks in its frame). A crop larger than
    ``GHOST_MASK_SIZE`` (pixel boost) gets the masks of its 256 px twin resized, so its edges keep their width
    relative to the face."""
    if face_size == GHOST_MASK_SIZE:
        return ghost_face_masks(source_landmarks, target_landmarks, (face_size, face_size), settings)
    scale = GHOST_MASK_SIZE / face_size
    masks = ghost_face_masks(np.asarray(source_landmarks) * scale, np.asarray(target_landmarks) * scale,
                             (GHOST_MASK_SIZE, GHOST_MASK_SIZE), settings)
    return tuple(cv2.resize(mask, (face_size, face_size), interpolation=cv2.INTER_LINEAR) for mask in masks)


def paste_back_ghost(
    target_image: np.ndarray,
    swapped_face: np.ndarray,
    matrix: np.ndarray,
    source_landmarks: np.ndarray,
    target_landmarks: np.ndarray,
    settings: GhostMaskSettings | None = None,
    face_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Ghost's paste-back: a soft mask shaped by the source face's 68 landmarks.

    ``source_landmarks`` / ``target_landmarks``: ``68×2`` (iBUG order) in their own aligned crop frames.
    The source mask is placed with the target matrix (Ghost's design). ``settings`` fix the mask settings
    (a video keeps one per face track); by default the jaw offset chooses them. Returns the composite and
    the ``H×W uint8`` mask, 255 where both warped hard masks (source and target) are nonzero. A face larger
    than ``GHOST_MASK_SIZE`` (pixel boost; landmarks in its own frame) gets the masks of its 256 px twin, resized.
    """
    face_shape = swapped_face.shape[:2]
    soft_source, hard_source, hard_target = ghost_masks_at(source_landmarks, target_landmarks, face_shape[0],
                                                            settings)
    region = face_region(matrix, face_shape[0], target_image.shape)
    if region is None:
        return target_image.copy(), np.zeros(target_image.shape[:2], dtype=np.uint8)
    warped_face = warp_region(swapped_face, matrix, target_image.shape, region, borderMode=cv2.BORDER_REPLICATE)
    alpha = warp_region(soft_source / 255, matrix, target_image.shape, region)[:, :, None]
    alpha = _masked_alpha(alpha, face_mask, matrix, target_image.shape, region)
    image = _blend_region(target_image, region, alpha, warped_face)
    warped_source = (warp_region(hard_source / 255, matrix, target_image.shape, region) * 255).astype(np.uint8)
    warped_target = (warp_region(hard_target / 255, matrix, target_image.shape, region) * 255).astype(np.uint8)
    both = np.where((warped_source > 0) & (warped_target > 0), 255, 0).astype(np.uint8)
    return image, _full_mask(target_image.shape, region, both)


def paste_back(
    mode: str,
    target_image: np.ndarray,
    swapped_face: np.ndarray,
    matrix: np.ndarray,
    *,
    source_landmarks: np.ndarray | None = None,
    target_landmarks: np.ndarray | None = None,
    face_parser: FaceParser | None = None,
    ghost_settings: GhostMaskSettings | None = None,
    face_mask: np.ndarray | None = None,
    face_labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Put the swapped face back into the target image with one of ``PASTE_BACK_MODES``.

    ``target_image``: ``H×W×3 uint8 BGR``; ``swapped_face``: ``S×S×3 uint8 BGR`` in the target's aligned
    frame; ``matrix``: the target's ``2×3`` image → crop matrix. ``ghost`` needs ``source_landmarks`` and
    ``target_landmarks`` (``68×2``, each in its aligned crop frame); ``facexlib_with_parser`` needs
    ``face_parser`` (or the swapped face's ``face_labels``, already parsed); ``ghost_settings`` fix the ghost
    mask settings; ``face_mask`` (``S×S float32`` in [0, 1], utils/face_masks.py) multiplies the mode's alpha.
    Returns ``(image, mask)``: ``H×W×3 uint8 BGR`` (``S×S×3``, the face itself, for ``none``) and an ``H×W
    uint8`` face mask for ``MODES_WITH_MASK``, else None. Raises ValueError for an unknown mode, a missing mode
    input, or a ``face_mask`` with ``none`` (blend in the crop with utils.face_masks.blend_faces instead).
    """
    if mode == "ghost":
        if source_landmarks is None or target_landmarks is None:
            raise ValueError("paste-back mode 'ghost' needs the 68-point landmarks of the source and target faces")
        return paste_back_ghost(target_image, swapped_face, matrix, source_landmarks, target_landmarks,
                                ghost_settings, face_mask)
    if mode == "facexlib_with_parser":
        if face_parser is None and face_labels is None:
            raise ValueError("paste-back mode 'facexlib_with_parser' needs a face parser (BiSeNet)")
        return paste_back_facexlib_with_parser(target_image, swapped_face, matrix, face_parser, face_mask,
                                               face_labels)
    if mode == "facexlib_without_parser":
        return paste_back_facexlib_without_parser(target_image, swapped_face, matrix, face_mask)
    if mode == "insightface":
        return paste_back_insightface(target_image, swapped_face, matrix, face_mask)
    if mode == "basic":
        return paste_back_basic(target_image, swapped_face, matrix, face_mask)
    if mode == "none":
        if face_mask is not None:
            raise ValueError("paste-back mode 'none' has no target to blend a face mask with; apply it in the crop "
                             "(utils.face_masks.blend_faces)")
        return swapped_face, None
    raise ValueError(f"unknown paste-back mode {mode!r}; choose one of: {', '.join(PASTE_BACK_MODES)}")
