"""Masks around a pasted face: the landmark (convex hull) mask, disk morphology, the edge band, padding.

Masks are ``H×W uint8`` with 0 = outside and 255 = inside unless a docstring says otherwise.
Numbers follow ../shared/conformance/geometry/README.md §2.3–2.5 and §3.5.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

# iBUG 68-point indices used to raise the eyebrows before taking the hull: the eye's upper contour
# (corner, between corner and next point, two upper points, other corner) under the five brow points.
LEFT_EYE_UPPER = (36, 37, 38, 39)
RIGHT_EYE_UPPER = (42, 43, 44, 45)
LEFT_BROW = (17, 18, 19, 20, 21)
RIGHT_BROW = (22, 23, 24, 25, 26)


def disk_structuring_element(size: int) -> np.ndarray:
    """The ``size×size`` bool element of :func:`dilate_mask`: cells within ``size // 2`` of cell (c, c).

    For even sizes the disk centre sits at index ``size // 2``, so its bottom and right tips fall off
    the grid (an asymmetric element, kept for identical results).
    """
    centre = size // 2
    rows, columns = np.ogrid[:size, :size]
    return (rows - centre) ** 2 + (columns - centre) ** 2 <= centre**2


def dilate_mask(mask: np.ndarray, amount: int) -> np.ndarray:
    """Grow (``amount`` > 0) or shrink (``amount`` < 0) a mask by a disk of diameter ``|amount|``.

    ``mask``: ``H×W``, nonzero = inside. Returns ``H×W bool``. Pixels outside the image count as
    outside, so shrinking also eats in from the image border. ``amount`` 0 returns the mask as bool.
    """
    foreground = np.asarray(mask) != 0
    if amount == 0:
        return foreground
    element = disk_structuring_element(abs(int(amount)))
    if amount > 0:
        return ndimage.binary_dilation(foreground, structure=element, iterations=1, border_value=0)
    return ndimage.binary_erosion(foreground, structure=element, iterations=1, border_value=0)


def edge_mask(mask: np.ndarray) -> np.ndarray:
    """The band around a face mask's border that the SDXL inpainting repaints.

    ``mask``: ``H×W uint8`` with at least one pixel equal to 255 (intermediate values count as inside
    for the morphology, not for the size). The band width ``a`` is about a quarter of the face size
    ``s = sqrt(h·w)`` of the 255 region (a multiple of 4, at least 4); the band is
    ``grow(mask, a) XOR shrink(mask, a)``. Returns ``H×W uint8`` 0/255.
    """
    rows, columns = np.nonzero(np.asarray(mask) == 255)
    if rows.size == 0:
        raise ValueError("edge_mask needs a mask with at least one pixel equal to 255")
    height = int(rows.max() - rows.min())
    width = int(columns.max() - columns.min())
    face_size = int(np.sqrt(height * width))
    amount = max(((face_size // 4) // 4) * 4, 4)
    band = dilate_mask(mask, amount) ^ dilate_mask(mask, -amount)
    return band.astype(np.uint8) * 255


def padding_to_multiple(size_wh: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """Pixels to add on the right and bottom so that width and height become multiples of ``multiple``.

    ``size_wh``: (width, height); returns (pad_width, pad_height), 0 for a side that is already a
    multiple (the original padded such sides by a whole ``multiple``).
    """
    width, height = size_wh
    return (-int(width)) % multiple, (-int(height)) % multiple


def raise_eyebrows(landmarks: np.ndarray, factor: float) -> np.ndarray:
    """Move the 68-point eyebrow points away from the eyes by ``factor/2`` of their eye distance.

    ``landmarks``: ``68×2`` pixels; returns ``68×2 int32`` (coordinates truncated first, as the
    original does, and the raised points truncated again).
    """
    points = np.array(landmarks, dtype=np.float64).astype(np.int32)
    for eye, brow in ((LEFT_EYE_UPPER, LEFT_BROW), (RIGHT_EYE_UPPER, RIGHT_BROW)):
        corner, next_point = points[eye[0]], points[eye[1]]
        below = np.array(
            [corner, (corner + next_point) / 2, next_point, points[eye[2]], points[eye[3]]], dtype=np.float64
        )
        top = points[list(brow)]
        points[list(brow)] = top + factor * 0.5 * (top - below)
    return points


def landmark_hull_mask(landmarks: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Filled convex hull of integer landmarks: ``shape_hw`` uint8 mask, 255 inside."""
    mask = np.zeros(shape_hw, dtype=np.uint8)
    hull = cv2.convexHull(np.asarray(landmarks, dtype=np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    return mask


def erode_and_clear_border(mask: np.ndarray, erode: int, border: int) -> np.ndarray:
    """Erode a uint8 mask with an ``erode×erode`` box (dilate with ``|erode|`` when negative) and zero a border.

    ``border`` pixels on each side are set to 0 so that a later blur fades out before the crop edge.
    """
    kernel = np.ones((abs(erode), abs(erode)), dtype=np.uint8)
    result = cv2.erode(mask, kernel, iterations=1) if erode > 0 else cv2.dilate(mask, kernel, iterations=1)
    if border > 0:
        result[:border, :] = 0
        result[-border:, :] = 0
        result[:, :border] = 0
        result[:, -border:] = 0
    return result
