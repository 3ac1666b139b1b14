"""The device paste-back (kornia warps, used on CUDA) against the exact CPU paste-back, run here on the CPU."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from utils.device_paste import DEVICE_PASTE_MODES, crop_alpha, paste_on_device, runs_on_device
from utils.paste_back import paste_back


def rotated_matrix(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """An image → crop matrix that turns and scales the face (so the warp interpolates everywhere)."""
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[cos, -sin, shift[0]], [sin, cos, shift[1]]], dtype=np.float64)


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    face = cv2.GaussianBlur(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), (0, 0), 3)
    return target, face, rotated_matrix(0.3, 1.7, (-150, -60))


def ring_landmarks(radius: float) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    return np.stack([128 + radius * np.cos(angles), 140 + radius * np.sin(angles)], 1).astype(np.float32)


@pytest.mark.parametrize("mode", DEVICE_PASTE_MODES)
def test_the_device_paste_matches_the_cpu_paste_up_to_rounding(
    scene: tuple[np.ndarray, np.ndarray, np.ndarray], mode: str
) -> None:
    target, face, matrix = scene
    source_landmarks, target_landmarks = ring_landmarks(90), ring_landmarks(95)
    labels = np.zeros((512, 512), np.uint8)
    labels[100:420, 120:400] = 1  # skin
    expected, _ = paste_back(mode, target, face, matrix, source_landmarks=source_landmarks,
                             target_landmarks=target_landmarks, face_parser=lambda _face: labels)
    alpha = crop_alpha(mode, 256, source_landmarks, target_landmarks, labels)
    result = paste_on_device(target, face, alpha, matrix, torch.device("cpu"), replicate_border=mode == "ghost")
    difference = np.abs(result.astype(np.int16) - expected)
    assert difference.max() <= 1, difference.max()
    assert (result != target).any()  # the face was pasted


def test_pixels_outside_the_face_region_are_the_target(scene: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    target, face, matrix = scene
    result = paste_on_device(target, face, crop_alpha("basic", 256), matrix, torch.device("cpu"), False)
    weight = cv2.warpAffine(np.ones((256, 256), np.float32), cv2.invertAffineTransform(matrix), (400, 300))
    np.testing.assert_array_equal(result[weight == 0], target[weight == 0])


def test_only_cuda_frames_without_a_kept_mask_use_the_device_paste() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert runs_on_device(cuda, "ghost", keep_mask=False)
    assert not runs_on_device(cuda, "ghost", keep_mask=True)  # photos: the mask feeds inpainting
    assert not runs_on_device(cuda, "insightface", keep_mask=False)  # its mask is built in the frame
    assert not runs_on_device(cpu, "ghost", keep_mask=False)  # the CPU paste is exact
