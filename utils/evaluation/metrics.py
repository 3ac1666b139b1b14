"""The evaluation's metrics as pure functions of measurements (embeddings, angles, landmarks, pixels).

Shared by evaluate.py (utils/evaluation/run.py) and the training validation (utils/training/validation.py), so
both report the same quantities. Each function takes a batch and returns one value per item; what is measured
(and with which model) is utils/evaluation/measures.py's job.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ANGLE_NAMES = ("pitch", "yaw", "roll")
# The pasted face may reach past the aligned square by the paste-back's blur (insightface mode: side / 20) and
# the inpainting band; pixels farther than this fraction of the square's side count as "outside the face".
OUTSIDE_MARGIN_FRACTION = 0.1
MIN_OUTSIDE_MARGIN = 5


def cosine_similarity(embeddings: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity: ``[N, D]`` and ``[N, D]`` → ``[N]`` in [-1, 1] (any embedding scale)."""
    return F.cosine_similarity(embeddings.float(), references.float(), dim=1)


def identity_retrieval(swapped: torch.Tensor, sources: torch.Tensor, true_sources: torch.Tensor,
                       identities: torch.Tensor | None = None) -> torch.Tensor:
    """Whether each swapped face's nearest source (cosine) is its own: ``[N, D]``, ``[M, D]``, ``[N]`` → ``[N]`` bool.

    ``true_sources`` holds each swapped face's row in ``sources``; ties go to the lower row. With ``identities``
    ``[M]`` (a label per source, e.g. the video a frame comes from), any source of the same identity counts.
    """
    similarities = F.normalize(swapped.float(), dim=1) @ F.normalize(sources.float(), dim=1).T
    nearest, true_sources = similarities.argmax(dim=1), true_sources.to(similarities.device)
    if identities is None:
        return nearest == true_sources
    identities = identities.to(similarities.device)
    return identities[nearest] == identities[true_sources]


def pose_error(angles: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of (pitch, yaw, roll) in degrees: ``[N, 3]`` and ``[N, 3]`` → ``[N]``."""
    return torch.linalg.vector_norm(angles.float() - references.float(), dim=1)


def expression_error(expressions: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Mean distance per keypoint of LivePortrait expression deltas: ``[N, K, 3]`` twice → ``[N]``."""
    return torch.linalg.vector_norm(expressions.float() - references.float(), dim=2).mean(dim=1)


def eye_error(eyes: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Mean distance of the two eye points over the reference's inter-ocular distance.

    ``[N, 4]`` (x_left, y_left, x_right, y_right, any pixel unit) twice → ``[N]``; 0 when the points coincide.
    """
    eyes, references = eyes.float().reshape(-1, 2, 2), references.float().reshape(-1, 2, 2)
    distances = torch.linalg.vector_norm(eyes - references, dim=2).mean(dim=1)
    inter_ocular = torch.linalg.vector_norm(references[:, 0] - references[:, 1], dim=1)
    return distances / inter_ocular.clamp_min(1e-6)


def face_square(matrix: np.ndarray, crop_size: int, image_shape: tuple[int, ...]) -> np.ndarray:
    """``H×W`` bool: the image pixels the ``crop_size`` aligned square of ``matrix`` (image → crop) covers."""
    weights = cv2.warpAffine(np.ones((crop_size, crop_size), np.float32), cv2.invertAffineTransform(matrix),
                             (image_shape[1], image_shape[0]), flags=cv2.INTER_LINEAR)
    return weights > 0


def outside_face(matrix: np.ndarray, crop_size: int, image_shape: tuple[int, ...]) -> np.ndarray:
    """``H×W`` bool: pixels farther than the paste-back margin from the aligned square (what a swap must keep)."""
    square = face_square(matrix, crop_size, image_shape)
    side = crop_size / math.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2])))
    margin = max(MIN_OUTSIDE_MARGIN, round(side * OUTSIDE_MARGIN_FRACTION))
    grown = cv2.dilate(square.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    return grown == 0


def outside_face_change(swapped: np.ndarray, target: np.ndarray, outside: np.ndarray) -> float:
    """Mean absolute difference (0-255) of two ``H×W×3 uint8`` images over the ``H×W`` bool region; NaN if empty."""
    if not outside.any():
        return math.nan
    difference = np.abs(swapped.astype(np.int16) - target.astype(np.int16))
    return float(difference[outside].mean())


def temporal_flicker(previous_swapped: np.ndarray, swapped: np.ndarray, previous_target: np.ndarray,
                     target: np.ndarray, region: np.ndarray) -> float:
    """How much more the output changes between two frames than the target does, inside the face.

    Mean over the ``H×W`` bool ``region`` of ``|(swapped_t - swapped_t-1) - (target_t - target_t-1)|`` (0-255,
    all images ``H×W×3 uint8``): 0 when the swap moves exactly as the target video; NaN for an empty region.
    """
    if not region.any():
        return math.nan
    swapped_change = swapped.astype(np.int16) - previous_swapped.astype(np.int16)
    target_change = target.astype(np.int16) - previous_target.astype(np.int16)
    return float(np.abs(swapped_change - target_change)[region].mean())


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """``{"mean", "std", "count"}`` of the finite values (population std); mean and std None when there are none."""
    finite = np.array([value for value in values if value is not None and math.isfinite(value)], np.float64)
    if finite.size == 0:
        return {"mean": None, "std": None, "count": 0}
    return {"mean": float(finite.mean()), "std": float(finite.std()), "count": int(finite.size)}
