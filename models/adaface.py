"""AdaFace IR-101 backbone (the `adaface` identity embedder, and ``net.`` of `cvl_adaface`).

Input: 112×112 RGB in [-1, 1] fed as given — the original AdaFace code feeds BGR, but GhostV2's reference
never flips, so neither do we. Output: 512-d, divided by its L2 norm when ``with_norm`` (the `adaface`
checkpoint), raw otherwise (CVLFace). See conformance/recognition/README.md §3.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

INPUT_SIZE = 112
EMBEDDING_SIZE = 512
IR101_UNITS = (3, 13, 30, 3)
IR_WIDTHS = (64, 128, 256, 512)


class BasicBlockIR(nn.Module):
    """IR residual unit: BN → conv3×3 → BN → PReLU → conv3×3(stride) → BN, plus a shortcut.

    The shortcut is plain subsampling (a parameter-free 1×1 max-pool) when the width does not change,
    a strided 1×1 conv + BN otherwise. No activation after the addition.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if in_channels == out_channels:
            self.shortcut_layer = nn.MaxPool2d(kernel_size=1, stride=stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.res_layer(features) + self.shortcut_layer(features)


class AdaFaceBackbone(nn.Module):
    """AdaFace "ir" backbone with the flattening output head.

    forward: [N, 3, input_size, input_size] RGB in [-1, 1] → [N, embedding_size]; unit L2 norm when
    ``with_norm``. ``units``/``widths`` default to IR-101; smaller values build tiny test networks.
    """

    def __init__(
        self,
        units: Sequence[int] = IR101_UNITS,
        widths: Sequence[int] = IR_WIDTHS,
        embedding_size: int = EMBEDDING_SIZE,
        input_size: int = INPUT_SIZE,
        with_norm: bool = True,
    ) -> None:
        super().__init__()
        if len(units) != 4 or len(widths) != 4:
            raise ValueError("the IR backbone has exactly four stages: give four unit counts and four widths")
        self.with_norm = with_norm
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.PReLU(widths[0]),
        )
        final_size = input_size // 16  # four stride-2 stages: 112 → 7
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(widths[-1]),
            nn.Dropout(0.4),
            nn.Flatten(),
            nn.Linear(widths[-1] * final_size * final_size, embedding_size),
            nn.BatchNorm1d(embedding_size, affine=False),
        )
        blocks = []
        in_channels = widths[0]
        for count, channels in zip(units, widths):
            blocks.append(BasicBlockIR(in_channels, channels, stride=2))
            blocks += [BasicBlockIR(channels, channels, stride=1) for _ in range(count - 1)]
            in_channels = channels
        self.body = nn.Sequential(*blocks)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Identity embedding of aligned faces.

        faces: [N, 3, 112, 112] RGB in [-1, 1] → [N, 512] (unit norm when ``with_norm``).
        """
        embedding = self.output_layer(self.body(self.input_layer(faces)))
        if self.with_norm:
            # AdaFace divides by the plain norm (no epsilon), unlike F.normalize.
            embedding = embedding / torch.norm(embedding, p=2, dim=1, keepdim=True)
        return embedding


class AdaFaceIR101(AdaFaceBackbone):
    """The released AdaFace IR-101 (manifest_adaface_ir101_webface12m.json)."""

    def __init__(self, with_norm: bool = True) -> None:
        super().__init__(units=IR101_UNITS, with_norm=with_norm)
