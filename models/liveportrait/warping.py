"""LivePortrait warping module W: moves the appearance volume from source to driving keypoints.

Inputs: feature volume ``B×32×16×64×64``, source and driving keypoints ``B×21×3`` in [-1, 1] coordinates.
Output: dict with ``out`` ``B×256×64×64``, ``deformation`` ``B×16×64×64×3`` and ``occlusion_map`` ``B×1×64×64``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.liveportrait.appearance import SameBlock2d


class DownBlock3d(nn.Module):
    """Conv3d, BatchNorm3d, ReLU, then average pooling over H and W only."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class UpBlock3d(nn.Module):
    """Nearest ×2 upsampling of H and W, then Conv3d, BatchNorm3d, ReLU."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=(1, 2, 2))
        return F.relu(self.norm(self.conv(x)))


class Encoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(in_features if i == 0 else min(max_features, block_expansion * 2 ** i),
                        min(max_features, block_expansion * 2 ** (i + 1)))
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = [x]
        for block in self.down_blocks:
            outputs.append(block(outputs[-1]))
        return outputs


class Decoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            in_filters = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(UpBlock3d(in_filters, min(max_features, block_expansion * 2 ** i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def make_coordinate_grid(depth: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Identity sampling grid ``D×H×W×3`` in [-1, 1], last axis (x, y, z)."""
    def axis(size: int) -> torch.Tensor:
        values = torch.arange(size, dtype=like.dtype, device=like.device)
        return 2 * (values / (size - 1)) - 1

    x, y, z = axis(width), axis(height), axis(depth)
    xx = x.view(1, 1, -1).repeat(depth, height, 1)
    yy = y.view(1, -1, 1).repeat(depth, 1, width)
    zz = z.view(-1, 1, 1).repeat(1, height, width)
    return torch.stack([xx, yy, zz], dim=3)


def keypoint_gaussians(keypoints: torch.Tensor, grid: torch.Tensor, variance: float = 0.01) -> torch.Tensor:
    """Gaussian heatmaps ``B×K×D×H×W`` centred on keypoints ``B×K×3`` over a grid ``D×H×W×3``."""
    difference = grid[None, None] - keypoints[:, :, None, None, None, :]
    return torch.exp(-0.5 * (difference ** 2).sum(-1) / variance)


class DenseMotionNetwork(nn.Module):
    """Predicts a dense deformation (a softmax blend of per-keypoint motions) and an occlusion map."""

    def __init__(self, block_expansion: int = 32, num_blocks: int = 5, max_features: int = 1024, num_kp: int = 21,
                 feature_channel: int = 32, reshape_depth: int = 16, compress: int = 4) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (compress + 1), num_blocks, max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, kernel_size=7, padding=3)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, _, depth, height, width = feature.shape
        feature = F.relu(self.norm(self.compress(feature)))
        grid = make_coordinate_grid(depth, height, width, kp_source)
        # Motion k maps a driving position back to the source: grid - driving_k + source_k (identity first).
        keypoint_motions = (grid[None, None] - kp_driving[:, :, None, None, None, :]
                            + kp_source[:, :, None, None, None, :])
        identity = grid[None, None].expand(batch, 1, depth, height, width, 3)
        motions = torch.cat([identity, keypoint_motions], dim=1)
        count = self.num_kp + 1
        repeated = feature.unsqueeze(1).expand(batch, count, *feature.shape[1:]).reshape(batch * count, -1, depth,
                                                                                         height, width)
        warped = F.grid_sample(repeated, motions.reshape(batch * count, depth, height, width, 3), align_corners=False)
        warped = warped.view(batch, count, -1, depth, height, width)
        heatmap = keypoint_gaussians(kp_driving, grid) - keypoint_gaussians(kp_source, grid)
        heatmap = torch.cat([torch.zeros_like(heatmap[:, :1]), heatmap], dim=1).unsqueeze(2)
        prediction = self.hourglass(torch.cat([heatmap, warped], dim=2).view(batch, -1, depth, height, width))
        mask = F.softmax(self.mask(prediction), dim=1).unsqueeze(2)
        deformation = (motions.permute(0, 1, 5, 2, 3, 4) * mask).sum(dim=1).permute(0, 2, 3, 4, 1)
        occlusion = torch.sigmoid(self.occlusion(prediction.reshape(batch, -1, height, width)))
        return {"deformation": deformation, "occlusion_map": occlusion}


class WarpingNetwork(nn.Module):
    """W: feature volume + keypoints → warped 2-D feature map ``B×256×64×64`` (see the module docstring)."""

    def __init__(self, num_kp: int = 21, block_expansion: int = 64, max_features: int = 512, num_down_blocks: int = 2,
                 reshape_channel: int = 32) -> None:
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, feature_channel=reshape_channel)
        self.third = SameBlock2d(max_features, block_expansion * 2 ** num_down_blocks, leaky=True)
        self.fourth = nn.Conv2d(block_expansion * 2 ** num_down_blocks, block_expansion * 2 ** num_down_blocks,
                                kernel_size=1)

    def forward(self, feature_3d: torch.Tensor, kp_driving: torch.Tensor,
                kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        dense = self.dense_motion_network(feature_3d, kp_driving, kp_source)
        out = F.grid_sample(feature_3d, dense["deformation"], align_corners=False)
        batch, channels, depth, height, width = out.shape
        out = self.fourth(self.third(out.view(batch, channels * depth, height, width)))
        return {"occlusion_map": dense["occlusion_map"], "deformation": dense["deformation"],
                "out": out * dense["occlusion_map"]}
