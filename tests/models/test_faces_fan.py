"""FAN landmarks: strict loading into face-alignment's class, crop, heatmap decoding, the landmark call."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from face_alignment.models import FAN

from models.fan_landmarks import (
    LandmarkDetector,
    box_centre_and_scale,
    build_fan,
    crop_face,
    decode_heatmaps,
    load_landmark_detector,
)
from utils.checkpoint import read_state_dict


def test_released_layout_loads_strictly_into_face_alignments_class(standin_weights: Path) -> None:
    path = standin_weights / "FaceAlignment" / "landmark.safetensors"
    network = build_fan()
    assert type(network) is FAN
    network.load_state_dict(read_state_dict(path), strict=True)
    detector = load_landmark_detector(weights_dir=standin_weights)
    assert type(detector.model) is FAN and not detector.model.training


def test_centre_and_scale_follow_face_alignment() -> None:
    centre, scale = box_centre_and_scale(np.array([10, 20, 110, 220], np.float32))
    np.testing.assert_allclose(centre, [60, 120 - 0.12 * 200])
    assert scale == (100 + 200) / 195


def test_crop_inside_the_image_is_a_resized_window_and_outside_is_black() -> None:
    image = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    centre, scale = np.array([150.0, 150.0]), 128 * 2 / 200  # a 256-pixel window
    crop = crop_face(image, centre, scale)
    # Window corners: trunc(p * 1 + 150 - 128) for p = 1 and 256 -> [23, 278).
    expected = cv2.resize(image[23:278, 23:278], (256, 256), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(crop, expected)
    corner = crop_face(image, np.array([0.0, 0.0]), scale)
    assert corner[:100, :100].max() == 0 and corner[200:, 200:].any()


def test_decode_heatmaps_shifts_a_quarter_pixel_towards_the_larger_neighbour() -> None:
    heatmaps = np.zeros((1, 68, 64, 64), np.float32)
    heatmaps[0, 0, 10, 20] = 1.0
    heatmaps[0, 0, 10, 21] = 0.5  # right neighbour larger than left -> +0.25 in x; y neighbours equal
    heatmaps[0, 1, 0, 5] = 1.0  # top row: no shift
    heatmaps[0, 2, 7, 7] = heatmaps[0, 2, 7, 8] = 1.0  # tie: the first maximum (row-major) wins
    points, image_points, scores = decode_heatmaps(heatmaps, np.array([100.0, 100.0]), 64 / 200)
    np.testing.assert_array_equal(points[0, 0], [21 + 0.25 - 0.5, 11 - 0.5])
    np.testing.assert_array_equal(points[0, 1], [6 - 0.5, 1 - 0.5])
    np.testing.assert_array_equal(points[0, 2], [8 + 0.25 - 0.5, 8 - 0.5])
    assert scores[0, 0] == 1.0 and scores.shape == (1, 68)
    # 64-pixel window: heatmap and image pixels have the same size; x = p + 100 - 32, truncated.
    np.testing.assert_array_equal(image_points[0, 0], [np.trunc(20.75 + 68), np.trunc(10.5 + 68)])
    assert image_points.dtype == np.float32


class PlantedHeatmaps(torch.nn.Module):
    """Stands in for FAN: every landmark's heatmap peaks at the crop centre."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        heatmaps = torch.zeros(x.shape[0], 68, 64, 64)
        heatmaps[:, :, 32, 32] = 1.0
        return [heatmaps * 0.5, heatmaps]


def test_get_landmarks_maps_heatmaps_back_to_image_pixels() -> None:
    detector = LandmarkDetector(PlantedHeatmaps(), "cpu")
    image_bgr = np.zeros((240, 320, 3), np.uint8)
    box = np.array([100, 50, 200, 170], np.float32)
    landmarks = detector.get_landmarks(image_bgr, box)
    assert landmarks.shape == (68, 2) and landmarks.dtype == np.float32
    centre, scale = box_centre_and_scale(box)
    expected = np.trunc(centre + (32.5 - 32) * 200 * scale / 64)  # peak (32, 32) -> 32.5 after -0.5, 1-based
    np.testing.assert_array_equal(landmarks, np.tile(expected, (68, 1)))
