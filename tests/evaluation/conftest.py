"""Fixtures of the evaluation tests: stand-in evaluation models shared by a session, faces placed by hand.

Stand-in detections are meaningless (tests/cli/conftest.py), so the known-answer tests give the scorer face
geometries directly: a box, five keypoints and 68 landmarks laid out like a frontal face inside the box.
FaceNet is the identity model of these tests (the smallest stand-in).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import relabelled_nsfw_model
from utils.evaluation.measures import FaceMeasures
from utils.evaluation.scoring import FaceGeometry, FrameScorer
from utils.inference.model_cache import ModelCache

TEST_EMBEDDINGS = "facenet"
IMAGE_SIZE = 192


def face_landmarks(box: tuple[float, float, float, float]) -> np.ndarray:
    """68 iBUG-ordered points of an upright frontal face filling ``box`` (x1, y1, x2, y2), image pixels."""
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    centre_x = (x1 + x2) / 2

    def at(u: float, v: float) -> list[float]:  # u, v in [0, 1] across the box
        return [x1 + u * width, y1 + v * height]

    contour = [at(0.5 - 0.48 * np.cos(angle), 0.45 + 0.5 * np.sin(angle)) for angle in np.linspace(0, np.pi, 17)]
    brows = [at(u, 0.3 - 0.04 * np.sin((u - 0.15) / 0.3 * np.pi)) for u in np.linspace(0.15, 0.45, 5)]
    brows += [[2 * centre_x - x, y] for x, y in reversed(brows)]
    nose = [at(0.5, v) for v in np.linspace(0.4, 0.6, 4)] + [at(u, 0.65) for u in np.linspace(0.42, 0.58, 5)]

    def eye(u: float) -> list[list[float]]:
        return [at(u + 0.08 * np.cos(angle), 0.42 + 0.03 * np.sin(angle)) for angle in np.linspace(np.pi, -np.pi, 7)[:6]]

    mouth = [at(0.5 - 0.16 * np.cos(angle), 0.8 + 0.06 * np.sin(angle)) for angle in np.linspace(0, 2 * np.pi, 13)[:12]]
    inner = [at(0.5 - 0.1 * np.cos(angle), 0.8 + 0.03 * np.sin(angle)) for angle in np.linspace(0, 2 * np.pi, 9)[:8]]
    points = np.array(contour + brows + nose + eye(0.32) + eye(0.68) + mouth + inner, np.float32)
    assert points.shape == (68, 2)
    return points


def geometry_of(landmarks: np.ndarray) -> FaceGeometry:
    """A FaceGeometry from 68 landmarks: their bounding box and RetinaFace-ordered five keypoints."""
    keypoints = np.stack([landmarks[36:42].mean(0), landmarks[42:48].mean(0), landmarks[30], landmarks[48],
                          landmarks[54]]).astype(np.float32)
    box = np.concatenate([landmarks.min(0), landmarks.max(0)]).astype(np.float32)
    return FaceGeometry(box=box, keypoints=keypoints, landmarks_68=landmarks)


def mirrored(geometry: FaceGeometry, width: int) -> FaceGeometry:
    """The geometry of the same face in the horizontally flipped image (left and right keypoints swapped)."""
    def mirror(points: np.ndarray) -> np.ndarray:
        flipped = points.copy()
        flipped[..., 0] = width - 1 - flipped[..., 0]
        return flipped

    keypoints = mirror(geometry.keypoints)[[1, 0, 2, 4, 3]]
    x1, y1, x2, y2 = geometry.box
    box = np.array([width - 1 - x2, y1, width - 1 - x1, y2], np.float32)
    return FaceGeometry(box=box, keypoints=keypoints, landmarks_68=mirror(geometry.landmarks_68))


@pytest.fixture(scope="session")
def normal_nsfw_model(kit_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit's tiny NSFW model, relabelled so that it calls every image "normal"."""
    return relabelled_nsfw_model(kit_dir, tmp_path_factory.mktemp("nsfw") / "normal", "normal")


@pytest.fixture(scope="session")
def evaluation_models() -> ModelCache:
    """One cache for every evaluation model of the session (each stand-in loads once)."""
    return ModelCache()


@pytest.fixture(scope="session")
def measures(standin_weights: Path, evaluation_models: ModelCache) -> FaceMeasures:
    return FaceMeasures(TEST_EMBEDDINGS, torch.device("cpu"), str(standin_weights), models=evaluation_models)


@pytest.fixture(scope="session")
def scorer(measures: FaceMeasures) -> FrameScorer:
    return FrameScorer(measures)


@pytest.fixture(scope="session")
def photos(example_images: dict[str, Path]) -> dict[str, np.ndarray]:
    """The example photos at 192×192 BGR (the grey cameraman as three channels)."""
    return {name: cv2.resize(cv2.imread(str(path)), (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
            for name, path in example_images.items()}


@pytest.fixture(scope="session")
def face() -> FaceGeometry:
    """A face centred a little off the middle of a 192×192 picture."""
    return geometry_of(face_landmarks((50.0, 40.0, 136.0, 150.0)))
