"""The multiscale PatchGAN discriminator GhostV2 trains against (pix2pixHD style, three scales).

Layout follows ../shared/conformance/network/README.md §4: three identical sub-networks ``layer0`` … ``layer2``,
each a flat ``nn.Sequential`` (so the keys are ``layer{i}.{index}.weight``); ``layer2`` sees the full-resolution
image, ``layer1`` the image pooled once, ``layer0`` pooled twice.
"""
from __future__ import annotations

import math

import torch
from torch import nn

_KERNEL = 4
_PADDING = math.ceil((_KERNEL - 1) / 2)
_MAX_CHANNELS = 512


def patch_discriminator(input_channels: int = 3, base_channels: int = 64, num_layers: int = 5) -> nn.Sequential:
    """One PatchGAN sub-network: strided 4×4 convs with InstanceNorm and LeakyReLU(0.2), then a 1-channel score map.

    [B, input_channels, H, W] → [B, 1, H', W'] (unbounded scores; 256 → 11).
    """
    layers: list[nn.Module] = [
        nn.Conv2d(input_channels, base_channels, _KERNEL, stride=2, padding=_PADDING),
        nn.LeakyReLU(0.2),
    ]
    channels = base_channels
    for index in range(1, num_layers + 1):
        out_channels = min(channels * 2, _MAX_CHANNELS)
        # The last hidden layer keeps the resolution; the ones before halve it.
        stride = 2 if index < num_layers else 1
        layers += [
            nn.Conv2d(channels, out_channels, _KERNEL, stride=stride, padding=_PADDING),
            nn.InstanceNorm2d(out_channels),
            nn.LeakyReLU(0.2),
        ]
        channels = out_channels
    layers.append(nn.Conv2d(channels, 1, _KERNEL, stride=1, padding=_PADDING))
    return nn.Sequential(*layers)


class MultiscaleDiscriminator(nn.Module):
    """Scores an image at full, half and quarter resolution (the training configuration by default).

    images [B, 3, H, W] RGB in [-1, 1] → list over scales (full resolution first) of one-element lists
    ``[score map [B, 1, h, w]]``; the losses read ``result[scale][0]``.
    """

    def __init__(
        self, input_channels: int = 3, base_channels: int = 64, num_layers: int = 5, num_scales: int = 3
    ) -> None:
        super().__init__()
        self.num_scales = num_scales
        for index in range(num_scales):
            self.add_module(f"layer{index}", patch_discriminator(input_channels, base_channels, num_layers))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, images: torch.Tensor) -> list[list[torch.Tensor]]:
        scores = []
        current = images
        for scale in range(self.num_scales):
            network = getattr(self, f"layer{self.num_scales - 1 - scale}")
            scores.append([network(current)])
            if scale != self.num_scales - 1:
                current = self.downsample(current)
        return scores
