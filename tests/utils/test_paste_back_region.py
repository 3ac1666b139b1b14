"""Paste-back on the face's region: its warps equal the whole-frame cv2.warpAffine pixel for pixel.

The region warps repeat OpenCV's coordinate arithmetic (utils/paste_back.py); these checks compare them with
cv2.warpAffine on random matrices, frames of odd widths (SIMD row tails), faces hanging over the edges, and every
array type and border the paste-back modes use. The conformance vectors check the modes' outputs exactly.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from utils import paste_back
from utils.paste_back import face_region, warp_region

CASES = [  # (array type, warpAffine keywords) as the paste-back modes use them
    ("uint8", {}), ("uint8", {"borderMode": cv2.BORDER_REPLICATE}), ("uint8", {"borderValue": 0.0}),
    ("float32", {}), ("float64", {}), ("float64", {"flags": cv2.INTER_AREA}),
]


def random_matrix(random: np.random.Generator) -> np.ndarray:
    angle, scale = random.uniform(-0.8, 0.8), random.uniform(0.3, 4.0)
    return np.array([[scale * np.cos(angle), -scale * np.sin(angle), random.uniform(-700, 200)],
                     [scale * np.sin(angle), scale * np.cos(angle), random.uniform(-500, 200)]])


def crop_array(random: np.random.Generator, kind: str) -> np.ndarray:
    if kind == "uint8":
        return random.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return random.random((256, 256)).astype(kind)


@pytest.mark.parametrize("kind, keywords", CASES)
def test_region_warps_equal_the_whole_frame_warp(kind: str, keywords: dict) -> None:
    random = np.random.default_rng(len(kind) + len(keywords))
    checked = 0
    for _ in range(40):
        shape = (int(random.integers(60, 400)), int(random.integers(60, 700)), 3)
        matrix, crop = random_matrix(random), crop_array(random, kind)
        region = face_region(matrix, 256, shape, margin=int(random.integers(0, 40)))
        if region is None:
            continue
        x0, y0, x1, y1 = region
        whole = cv2.warpAffine(crop, cv2.invertAffineTransform(matrix), (shape[1], shape[0]), **keywords)
        np.testing.assert_array_equal(warp_region(crop, matrix, shape, region, **keywords), whole[y0:y1, x0:x1])
        outside = np.ones(shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        if "borderMode" not in keywords:  # outside the region the whole-frame warp is its border value
            assert not whole[outside].any()
        checked += 1
    assert checked > 20


def test_the_machine_reproduces_warp_affine_without_falling_back() -> None:
    # Not required for exact results (the fallback is exact too), but the speed needs it on x86-64 and ARM.
    assert paste_back.float_kernel_variant() is not None


@pytest.mark.parametrize("mode", ["basic", "insightface", "facexlib_without_parser", "ghost"])
def test_pixels_outside_the_face_region_are_the_target(mode: str) -> None:
    from tests.cli.test_inference import synthetic_landmarks

    random = np.random.default_rng(3)
    target = random.integers(0, 256, (300, 517, 3), dtype=np.uint8)
    face = random.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    matrix = np.array([[1.6, 0.2, -300.0], [-0.2, 1.6, -120.0]])
    extra = {"source_landmarks": synthetic_landmarks(), "target_landmarks": synthetic_landmarks()} \
        if mode == "ghost" else {}
    image, _ = paste_back.paste_back(mode, target, face, matrix, **extra)
    x0, y0, x1, y1 = face_region(matrix, 256, target.shape, margin=80)
    outside = np.ones(target.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert outside.mean() > 0.3
    np.testing.assert_array_equal(image[outside], target[outside])
    assert not np.array_equal(image, target)
