"""utils.masks: disk morphology, the edge band, padding, eyebrow raise and hull mask."""
from __future__ import annotations

import numpy as np
import pytest

from utils import masks


def test_padding_to_multiple_pads_only_what_is_missing() -> None:
    assert masks.padding_to_multiple((264, 272)) == (0, 0)  # the original padded these by 8
    assert masks.padding_to_multiple((261, 269)) == (3, 3)
    assert masks.padding_to_multiple((1, 16), 16) == (15, 0)


def test_disk_element_and_dilation() -> None:
    element = masks.disk_structuring_element(5)
    assert element.sum() == 13 and element[2].all() and element[:, 2].all() and not element[0, 0]
    # Even sizes: the disk's centre is index n//2, so its bottom/right tips fall off the grid.
    even = masks.disk_structuring_element(4)
    assert even[0, 2] and even[2, 0] and even.sum() == 11  # radius-2 disk (13 cells) minus 2 tips
    point = np.zeros((11, 11), dtype=np.uint8)
    point[5, 5] = 255
    np.testing.assert_array_equal(masks.dilate_mask(point, 5)[3:8, 3:8], element)
    assert masks.dilate_mask(point, 5).sum() == 13
    np.testing.assert_array_equal(masks.dilate_mask(point, 1), point > 0)
    full = np.full((9, 9), 255, dtype=np.uint8)
    eroded = masks.dilate_mask(full, -3)
    assert not eroded[0].any() and not eroded[:, -1].any() and eroded[1:-1, 1:-1].all()


def test_edge_mask_is_a_band_around_the_border() -> None:
    mask = np.zeros((120, 140), dtype=np.uint8)
    mask[30:90, 40:100] = 255
    band = masks.edge_mask(mask)
    assert band.dtype == np.uint8 and set(np.unique(band)) == {0, 255}
    assert band[30, 70] == 255 and band[60, 40] == 255  # on the border
    assert band[60, 70] == 0 and band[5, 5] == 0  # deep inside / far outside
    # s = 59, a = 12: the band reaches about 6 pixels to each side of the border.
    assert band[60, 35] == 255 and band[60, 30] == 0


def test_edge_mask_needs_a_full_pixel() -> None:
    with pytest.raises(ValueError, match="255"):
        masks.edge_mask(np.full((10, 10), 128, dtype=np.uint8))


def test_raise_eyebrows_moves_brows_away_from_the_eyes() -> None:
    landmarks = np.zeros((68, 2), dtype=np.float32)
    landmarks[36:48] = (100.5, 120.7)  # eyes
    landmarks[17:27] = (100.9, 100.2)  # brows, 20 px above
    raised = masks.raise_eyebrows(landmarks, 2.0)
    assert raised.dtype == np.int32
    # Truncated to (100, 120) and (100, 100) first, then moved by 2 * 0.5 * 20 px.
    assert (raised[17:27] == (100, 80)).all()
    assert (raised[36:48] == (100, 120)).all()


def test_landmark_hull_mask_and_erosion() -> None:
    square = np.array([[10, 10], [50, 10], [50, 50], [10, 50], [30, 30]])
    hull = masks.landmark_hull_mask(square, (64, 64))
    assert hull[30, 30] == 255 and hull[5, 5] == 0 and hull.sum() == 41 * 41 * 255
    cleared = masks.erode_and_clear_border(hull, 5, 12)
    assert cleared[11, 30] == 0 and cleared[13, 30] == 255 and cleared[30, 12] == 255 and cleared[30, 11] == 0
    grown = masks.erode_and_clear_border(hull, -5, 0)
    assert grown[30, 8] == 255
