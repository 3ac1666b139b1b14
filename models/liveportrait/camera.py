"""LivePortrait head-pose and keypoint maths: pose bins to degrees, rotation matrices, keypoint transform.

Angles are in degrees; keypoints are ``B×21×3`` in LivePortrait's normalised (x, y, z) space.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

NUM_POSE_BINS = 66


def headpose_pred_to_degree(prediction: torch.Tensor) -> torch.Tensor:
    """Turn ``B×66`` pose-bin logits into degrees ``(B,)``; anything else is returned unchanged.

    The expected bin index (softmax-weighted) maps bin 0 to -97.5 degrees in 3-degree steps.
    """
    if prediction.ndim > 1 and prediction.shape[1] == NUM_POSE_BINS:
        bins = torch.arange(NUM_POSE_BINS, dtype=torch.float32, device=prediction.device)
        probabilities = F.softmax(prediction, dim=1)
        return torch.sum(probabilities * bins, dim=1) * 3 - 97.5
    return prediction


def get_rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``B×3×3`` = (Rz(roll) · Ry(yaw) · Rx(pitch))ᵀ from angles in degrees, ``(B,)`` or ``(B,1)``.

    The transpose lets keypoints (row vectors) be rotated as ``kp @ R``.
    """
    def to_column(angle: torch.Tensor) -> torch.Tensor:
        radians = angle / 180 * np.pi
        return radians.unsqueeze(1) if radians.ndim == 1 else radians

    x, y, z = to_column(pitch), to_column(yaw), to_column(roll)
    batch = x.shape[0]
    ones = torch.ones([batch, 1], dtype=x.dtype, device=x.device)
    zeros = torch.zeros([batch, 1], dtype=x.dtype, device=x.device)
    rot_x = torch.cat([ones, zeros, zeros, zeros, torch.cos(x), -torch.sin(x), zeros, torch.sin(x), torch.cos(x)],
                      dim=1).reshape(batch, 3, 3)
    rot_y = torch.cat([torch.cos(y), zeros, torch.sin(y), zeros, ones, zeros, -torch.sin(y), zeros, torch.cos(y)],
                      dim=1).reshape(batch, 3, 3)
    rot_z = torch.cat([torch.cos(z), -torch.sin(z), zeros, torch.sin(z), torch.cos(z), zeros, zeros, zeros, ones],
                      dim=1).reshape(batch, 3, 3)
    return (rot_z @ rot_y @ rot_x).permute(0, 2, 1)


def transform_keypoint(kp_info: dict[str, torch.Tensor]) -> torch.Tensor:
    """Posed source keypoints ``B×21×3`` = scale · (kp @ R + exp), then + (tx, ty) on x and y only.

    ``kp_info`` holds pitch/yaw/roll (degrees ``B×1``, or bins), kp/exp ``B×21×3`` (or ``B×63``), t ``B×3``, scale ``B×1``.
    """
    kp = kp_info["kp"]
    batch = kp.shape[0]
    num_kp = kp.shape[1] // 3 if kp.ndim == 2 else kp.shape[1]
    rotation = get_rotation_matrix(*(headpose_pred_to_degree(kp_info[name]) for name in ("pitch", "yaw", "roll")))
    transformed = kp.view(batch, num_kp, 3) @ rotation + kp_info["exp"].view(batch, num_kp, 3)
    transformed = transformed * kp_info["scale"][..., None]
    transformed[:, :, 0:2] += kp_info["t"][:, None, 0:2]
    return transformed
