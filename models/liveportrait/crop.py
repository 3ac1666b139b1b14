"""LivePortrait crop utilities: face rectangle from landmarks, similarity crops, eye/lip ratios, image I/O.

Points are ``N×2`` float32 (x, y) pixels; images are ``H×W×3 uint8`` (the channel order is the caller's).
All matrix maths is float32 numpy, like the original, so crops match it pixel for pixel.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import acos, cos, sin

import cv2
import numpy as np
import torch

from utils.image import check_face_points

DTYPE = np.float32
SOURCE_SIZE = 256  # the motion and appearance networks' input size
PASTE_BACK_SIZE = 512  # side of the do_crop source crop and of the rendered output
# Our paste-back mask: a rounded square (superellipse of this exponent) fading to 0 over this fraction of the half-side.
MASK_EXPONENT, MASK_FEATHER = 4.0, 0.2


def _eye_and_lip_points(points: np.ndarray) -> np.ndarray:
    """Two anchors ``2×2``: the mid-point of both eyes and the mid-point of the mouth corners."""
    count = points.shape[0]
    if count == 68:
        left_eye = np.mean(points[[36, 39]], 0)
        right_eye = np.mean(points[[42, 45]], 0)
        lips = points[[48, 54]]
    elif count == 5:
        left_eye, right_eye, lips = points[0], points[1], points[[3, 4]]
    elif count == 203:
        left_eye = np.mean(points[[0, 6, 12, 18]], 0)
        right_eye = np.mean(points[[24, 30, 36, 42]], 0)
        lips = points[[48, 66]]
    else:
        raise ValueError(f"unsupported landmark layout with {count} points (expected 5, 68 or 203)")
    eye = (left_eye + right_eye) / 2
    lip = (lips[0] + lips[1]) / 2
    return np.stack([eye, lip], axis=0)


def parse_rect_from_landmark(
    points: np.ndarray, scale: float = 1.5, vx_ratio: float = 0.0, vy_ratio: float = 0.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """The rotated square around the landmarks: centre ``(2,)``, side ``(2,)`` (both equal) and angle in radians.

    The face's vertical axis runs from the eyes to the mouth; the box is squared, scaled, then shifted by
    ``vx_ratio``/``vy_ratio`` times its side along the face's own axes.
    """
    anchors = _eye_and_lip_points(points)
    uy = anchors[1] - anchors[0]
    length = np.linalg.norm(uy)
    if length <= 1e-3:
        uy = np.array([0, 1], dtype=DTYPE)
    else:
        uy /= length
    ux = np.array((uy[1], -uy[0]), dtype=DTYPE)
    angle = acos(ux[0])
    if ux[1] < 0:
        angle = -angle
    axes = np.array([ux, uy])
    centre0 = np.mean(points, axis=0)
    rotated = (points - centre0) @ axes.T
    low, high = np.min(rotated, axis=0), np.max(rotated, axis=0)
    centre1 = (low + high) / 2
    size = high - low
    side = max(size[0], size[1])
    size[0] = side
    size[1] = side
    size *= scale
    centre = centre0 + ux * centre1[0] + uy * centre1[1]
    centre = centre + ux * (vx_ratio * size) + uy * (vy_ratio * size)
    return centre, size, angle


@dataclass
class Crop:
    """A similarity crop: the image, the landmarks in it, and the 3×3 float32 matrices both ways."""

    image: np.ndarray
    points: np.ndarray
    original_to_crop: np.ndarray
    crop_to_original: np.ndarray


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply the affine part of a 2×3 or 3×3 matrix to ``N×2`` points."""
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def crop_image(image: np.ndarray, points: np.ndarray, dsize: int = 224, scale: float = 1.5,
               vy_ratio: float = -0.1) -> Crop:
    """Rotated square crop ``dsize×dsize`` around the landmarks (INTER_LINEAR, black border).

    Raises FaceBoxError when the points cannot be a face of ``image`` (not finite, far larger than it, outside it).
    """
    check_face_points(points, image.shape, "LivePortrait crop landmarks")
    centre, size, angle = parse_rect_from_landmark(points, scale=scale, vy_ratio=vy_ratio)
    s = dsize / size[0]
    target = np.array([dsize / 2, dsize / 2], dtype=DTYPE)
    cos_t, sin_t = cos(angle), sin(angle)
    cx, cy = centre[0], centre[1]
    tcx, tcy = target[0], target[1]
    forward = np.array(
        [[s * cos_t, s * sin_t, tcx - s * (cos_t * cx + sin_t * cy)],
         [-s * sin_t, s * cos_t, tcy - s * (-sin_t * cx + cos_t * cy)]],
        dtype=DTYPE,
    )
    cropped = cv2.warpAffine(image, forward, dsize=(dsize, dsize), flags=cv2.INTER_LINEAR)
    original_to_crop = np.vstack([forward, np.array([0, 0, 1], dtype=DTYPE)])
    return Crop(cropped, transform_points(points, forward), original_to_crop, np.linalg.inv(original_to_crop))


def crop_source_image(image: np.ndarray, points: np.ndarray, crop_scale: float = 2.3) -> tuple[Crop, np.ndarray]:
    """The do_crop source crop (512, vy_ratio -0.125) and its 256×256 INTER_AREA reduction."""
    crop = crop_image(image, points, dsize=512, scale=crop_scale, vy_ratio=-0.125)
    return crop, cv2.resize(crop.image, (SOURCE_SIZE, SOURCE_SIZE), interpolation=cv2.INTER_AREA)


def _distance_ratio(landmarks: np.ndarray, a: int, b: int, c: int, d: int, eps: float = 1e-6) -> np.ndarray:
    return (np.linalg.norm(landmarks[:, a] - landmarks[:, b], axis=1, keepdims=True)
            / (np.linalg.norm(landmarks[:, c] - landmarks[:, d], axis=1, keepdims=True) + eps))


def eye_close_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Left and right eye opening ratios ``B×2`` of 203-point landmarks ``B×203×2``."""
    return np.concatenate([_distance_ratio(landmarks, 6, 18, 0, 12), _distance_ratio(landmarks, 30, 42, 24, 36)],
                          axis=1)


def lip_close_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Mouth opening ratio ``B×1`` of 203-point landmarks ``B×203×2``."""
    return _distance_ratio(landmarks, 90, 102, 48, 66)


def prepare_source(image_rgb: np.ndarray) -> torch.Tensor:
    """``H×W×3 uint8 RGB`` → ``1×3×256×256 float32 RGB in [0, 1]`` (INTER_LINEAR resize when needed)."""
    height, width = image_rgb.shape[:2]
    resized = image_rgb if (height, width) == (SOURCE_SIZE, SOURCE_SIZE) else cv2.resize(
        image_rgb, (SOURCE_SIZE, SOURCE_SIZE))
    batch = np.clip(resized[np.newaxis].astype(np.float32) / 255.0, 0, 1)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def parse_output(images: torch.Tensor) -> np.ndarray:
    """``B×3×H×W`` in [0, 1] → ``B×H×W×3 uint8`` (truncating, like the original)."""
    array = np.transpose(images.detach().float().cpu().numpy(), [0, 2, 3, 1])
    array = np.clip(array, 0, 1)
    return np.clip(array * 255, 0, 255).astype(np.uint8)


@lru_cache(maxsize=4)
def paste_back_mask(size: int = PASTE_BACK_SIZE) -> np.ndarray:
    """The feathered paste-back mask of the do_crop mode: ``size×size×3 float32`` in [0, 1] (read-only).

    1 over the centre, falling smoothly (smoothstep) to exactly 0 on the outermost pixels. LivePortrait ships a
    mask template image (resources/mask_template.png) that we cannot redistribute; this generated rounded
    square replaces it, so pasted faces blend a little differently from the original's. At the default
    crop scale (2.3) the face box ends at about 0.7 of the half-side, inside the fully opaque part (0.8).
    """
    positions = np.abs(np.linspace(-1.0, 1.0, size))  # the outermost pixels sit at ±1, where the mask is 0
    x, y = np.meshgrid(positions, positions)
    radius = (x**MASK_EXPONENT + y**MASK_EXPONENT) ** (1 / MASK_EXPONENT)
    ramp = np.clip((1 - radius) / MASK_FEATHER, 0, 1)
    mask = np.repeat((ramp * ramp * (3 - 2 * ramp))[:, :, None], 3, axis=2).astype(DTYPE)
    mask.flags.writeable = False
    return mask


def warp_paste_back_mask(crop_to_original: np.ndarray, image_shape: tuple[int, ...],
                         size: int = PASTE_BACK_SIZE) -> np.ndarray:
    """The paste-back mask of one crop moved into the full image: ``H×W×3 float32`` in [0, 1].

    It depends only on the crop's matrix, so every variant pasted through the same crop can share it.
    """
    matrix = np.asarray(crop_to_original, dtype=DTYPE)[:2]
    return cv2.warpAffine(paste_back_mask(size), matrix, (image_shape[1], image_shape[0]), flags=cv2.INTER_LINEAR)


def paste_back(image: np.ndarray, rendered: np.ndarray, crop_to_original: np.ndarray,
               warped_mask: np.ndarray | None = None) -> np.ndarray:
    """Blend a rendered crop back into the full image (LivePortrait's do_crop paste-back).

    ``image``: ``H×W×3 uint8``; ``rendered``: ``S×S×3 uint8`` (same channel order); ``crop_to_original``:
    the crop's ``3×3`` (or ``2×3``) matrix back to the image; ``warped_mask``: the crop's mask already in
    image space (default :func:`warp_paste_back_mask` of the generated mask). Returns ``H×W×3 uint8``,
    truncated like the original.
    """
    if warped_mask is None:
        warped_mask = warp_paste_back_mask(crop_to_original, image.shape, rendered.shape[0])
    matrix = np.asarray(crop_to_original, dtype=DTYPE)[:2]
    warped = cv2.warpAffine(rendered, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR)
    return np.clip(warped_mask * warped + (1 - warped_mask) * image, 0, 255).astype(np.uint8)
