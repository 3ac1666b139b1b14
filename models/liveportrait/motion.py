"""LivePortrait motion extractor M (ConvNeXt-V2 tiny): head pose, translation, scale, keypoints, expression.

Input ``B×3×256×256`` RGB in [0, 1]. Attribute names follow the released keys (all under ``detector.``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.liveportrait.camera import headpose_pred_to_degree


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``B×C×H×W`` (biased variance, eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-V2 GRN on ``B×H×W×C``: scale each channel by its spatial L2 norm relative to the channel mean."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial_norm = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        relative = spatial_norm / (spatial_norm.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * relative) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """Depthwise 7×7, LN, Linear ×4, GELU, GRN, Linear back, residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, kernel_size=7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.grn = GlobalResponseNorm(4 * channels)
        self.pwconv2 = nn.Linear(4 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(x)))))
        return residual + x.permute(0, 3, 1, 2)


class ConvNeXtV2Detector(nn.Module):
    """The backbone and the seven linear heads (``detector.*`` in the file)."""

    def __init__(self, in_channels: int = 3, depths: tuple[int, ...] = (3, 3, 9, 3),
                 dims: tuple[int, ...] = (96, 192, 384, 768), num_kp: int = 21, num_bins: int = 66) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0]))]
            + [nn.Sequential(ChannelsFirstLayerNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
               for i in range(len(dims) - 1)]
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtV2Block(dim) for _ in range(depth))) for depth, dim in zip(depths, dims)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.fc_kp = nn.Linear(dims[-1], 3 * num_kp)
        self.fc_scale = nn.Linear(dims[-1], 1)
        self.fc_pitch = nn.Linear(dims[-1], num_bins)
        self.fc_yaw = nn.Linear(dims[-1], num_bins)
        self.fc_roll = nn.Linear(dims[-1], num_bins)
        self.fc_t = nn.Linear(dims[-1], 3)
        self.fc_exp = nn.Linear(dims[-1], 3 * num_kp)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        features = self.norm(x.mean([-2, -1]))
        return {
            "pitch": self.fc_pitch(features), "yaw": self.fc_yaw(features), "roll": self.fc_roll(features),
            "t": self.fc_t(features), "exp": self.fc_exp(features), "scale": self.fc_scale(features),
            "kp": self.fc_kp(features),
        }


class MotionExtractor(nn.Module):
    """M: ``B×3×256×256`` RGB [0, 1] → raw heads (pose logits ``B×66``, t ``B×3``, exp/kp ``B×63``, scale ``B×1``)."""

    def __init__(self, num_kp: int = 21, num_bins: int = 66) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.detector = ConvNeXtV2Detector(num_kp=num_kp, num_bins=num_bins)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.detector(image)


def refine_kp_info(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Pose logits → degrees ``B×1``; kp and exp → ``B×21×3`` (the original's ``get_kp_info``)."""
    batch = raw["kp"].shape[0]
    info = dict(raw)
    for name in ("pitch", "yaw", "roll"):
        info[name] = headpose_pred_to_degree(raw[name])[:, None]
    info["kp"] = raw["kp"].reshape(batch, -1, 3)
    info["exp"] = raw["exp"].reshape(batch, -1, 3)
    return info
