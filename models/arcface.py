"""ArcFace IResNet-100 (insightface "improved residual" network), the `arcface` identity embedder.

Input: 112×112 RGB in [-1, 1] fed as given (no channel flip); output: the raw 512-d embedding, *not*
L2-normalised (GhostV1's generator was trained on it as is). The same network sits under ``net.`` in
the CVLFace ArcFace checkpoint (models/cvlface.py). See conformance/recognition/README.md §2.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

INPUT_SIZE = 112
EMBEDDING_SIZE = 512
IRESNET100_LAYERS = (3, 13, 30, 3)
IRESNET_WIDTHS = (64, 128, 256, 512)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with padding 1 and no bias (BatchNorm follows every convolution)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation residual block: BN → conv → BN → PReLU → conv(stride) → BN, plus the shortcut.

    No activation follows the addition. ``downsample`` (1×1 conv + BN on the raw block input) is present
    on the first block of every stage, the only one with stride 2.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.conv1 = conv3x3(in_channels, channels)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
        self.prelu = nn.PReLU(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn3 = nn.BatchNorm2d(channels, eps=1e-5)
        self.downsample = downsample

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        branch = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(features))))))
        shortcut = features if self.downsample is None else self.downsample(features)
        return branch + shortcut


class IResNet(nn.Module):
    """insightface IResNet with a flattening fully connected head.

    forward: [N, 3, input_size, input_size] RGB in [-1, 1] → [N, embedding_size] raw (not normalised).
    ``layers``/``widths`` default to IResNet-100; smaller values build tiny test networks.
    """

    def __init__(
        self,
        layers: Sequence[int] = IRESNET100_LAYERS,
        widths: Sequence[int] = IRESNET_WIDTHS,
        embedding_size: int = EMBEDDING_SIZE,
        input_size: int = INPUT_SIZE,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError("IResNet has exactly four stages: give four layer counts and four widths")
        self.conv1 = conv3x3(3, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5)
        self.prelu = nn.PReLU(widths[0])
        in_channels = widths[0]
        for index, (blocks, channels) in enumerate(zip(layers, widths), start=1):
            setattr(self, f"layer{index}", self._make_stage(in_channels, channels, blocks))
            in_channels = channels
        # Four stride-2 stages: 112 → 7.
        final_size = input_size // 16
        self.bn2 = nn.BatchNorm2d(widths[-1], eps=1e-5)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(widths[-1] * final_size * final_size, embedding_size)
        # Affine BatchNorm1d whose weight insightface freezes at 1 during training; it is in the file either way.
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-5)

    @staticmethod
    def _make_stage(in_channels: int, channels: int, blocks: int) -> nn.Sequential:
        # Even layer1 (64 → 64) gets a projection shortcut, because its first block has stride 2.
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, channels, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(channels, eps=1e-5),
        )
        stage = [IBasicBlock(in_channels, channels, stride=2, downsample=downsample)]
        stage += [IBasicBlock(channels, channels) for _ in range(blocks - 1)]
        return nn.Sequential(*stage)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Raw identity embedding of aligned faces.

        faces: [N, 3, 112, 112] RGB in [-1, 1] → [N, 512], not normalised.
        """
        features = self.prelu(self.bn1(self.conv1(faces)))
        features = self.layer4(self.layer3(self.layer2(self.layer1(features))))
        features = self.bn2(features)
        features = self.dropout(torch.flatten(features, 1))
        return self.features(self.fc(features))


class IResNet100(IResNet):
    """The released ArcFace backbone: IResNet with [3, 13, 30, 3] blocks (manifest_arcface_backbone.json)."""

    def __init__(self) -> None:
        super().__init__(layers=IRESNET100_LAYERS)
