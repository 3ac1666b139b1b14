"""LivePortrait stitching and eye/lip retargeting MLPs (one file holds all three).

Keypoints are ``B×21×3``; ratios are ``B×k`` float32. The MLPs always run in float32.
"""
from __future__ import annotations

import torch
from torch import nn


class StitchingRetargetingNetwork(nn.Module):
    """Linear layers with ReLU between them (``mlp.0``, ``mlp.2``, ...), nothing after the last."""

    def __init__(self, input_size: int, hidden_sizes: tuple[int, ...], output_size: int) -> None:
        super().__init__()
        sizes = [input_size, *hidden_sizes]
        layers: list[nn.Module] = []
        for in_size, out_size in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(in_size, out_size), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(sizes[-1], output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class StitchingRetargetingModules(nn.Module):
    """The three MLPs under the file's own prefixes (the stitching network is called 'shoulder' there)."""

    def __init__(self, num_kp: int = 21) -> None:
        super().__init__()
        flat = 3 * num_kp
        self.retarget_shoulder_module = StitchingRetargetingNetwork(2 * flat, (128, 128, 64), flat + 2)
        self.retarget_mouth_module = StitchingRetargetingNetwork(flat + 2, (128, 128, 64), flat)
        self.retarget_eye_module = StitchingRetargetingNetwork(flat + 3, (256, 256, 128, 128, 64), flat)

    def stitching_input(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """``B×126`` = [source keypoints, driving keypoints] flattened."""
        batch = kp_source.shape[0]
        return torch.cat([kp_source.reshape(batch, -1), kp_driving.reshape(batch, -1)], dim=1)

    def stitch(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """Driving keypoints ``B×21×3`` corrected so the face stays glued to the source's shoulders."""
        batch, num_kp = kp_source.shape[:2]
        delta = self.retarget_shoulder_module(self.stitching_input(kp_source, kp_driving).float())
        stitched = kp_driving.clone()
        stitched += delta[..., :3 * num_kp].reshape(batch, num_kp, 3)
        stitched[..., :2] += delta[..., 3 * num_kp:3 * num_kp + 2].reshape(batch, 1, 2)
        return stitched

    def retarget_eye(self, kp_source: torch.Tensor, eye_ratios: torch.Tensor) -> torch.Tensor:
        """Keypoint delta ``B×21×3`` for ratios ``B×3`` = [source left, source right, target]."""
        batch = kp_source.shape[0]
        features = torch.cat([kp_source.reshape(batch, -1), eye_ratios.reshape(batch, -1)], dim=1).float()
        return self.retarget_eye_module(features).reshape(-1, kp_source.shape[1], 3)

    def retarget_lip(self, kp_source: torch.Tensor, lip_ratios: torch.Tensor) -> torch.Tensor:
        """Keypoint delta ``B×21×3`` for ratios ``B×2`` = [source, target]."""
        batch = kp_source.shape[0]
        features = torch.cat([kp_source.reshape(batch, -1), lip_ratios.reshape(batch, -1)], dim=1).float()
        return self.retarget_mouth_module(features).reshape(-1, kp_source.shape[1], 3)
