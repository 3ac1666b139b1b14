"""LivePortrait SPADE generator G: the warped feature map becomes a 512×512 face image.

Input ``B×256×64×64``; output ``B×3×512×512`` RGB in [0, 1] (``return_logits`` also gives the pre-sigmoid map).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SpectralNormConv2d(nn.Module):
    """Conv2d whose weight is divided by the stored spectral-norm estimate u·(W v), without power iteration.

    This is the eval-mode behaviour of the original (torch's spectral_norm); the file stores
    ``weight_orig`` and the ``weight_u`` / ``weight_v`` buffers.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        # Registration order follows the released keys: bias, weight_orig, then the buffers u and v.
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight_orig, a=5 ** 0.5)
        self.register_buffer("weight_u", nn.functional.normalize(torch.randn(out_channels), dim=0))
        self.register_buffer("weight_v", nn.functional.normalize(torch.randn(in_channels * kernel_size ** 2), dim=0))
        self.padding = padding

    def weight(self) -> torch.Tensor:
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        sigma = torch.dot(self.weight_u, torch.mv(matrix, self.weight_v))
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class SPADE(nn.Module):
    """Instance norm modulated per pixel by gamma/beta predicted from the (resized) segmentation features."""

    def __init__(self, norm_channels: int, label_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(norm_channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, hidden, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_channels, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, segmentation: torch.Tensor) -> torch.Tensor:
        normalised = self.param_free_norm(x)
        segmentation = F.interpolate(segmentation, size=x.shape[2:], mode="nearest")
        hidden = self.mlp_shared(segmentation)
        return normalised * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class SPADEResnetBlock(nn.Module):
    """Two SPADE-normalised spectral convolutions with a (learned when channels change) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, label_channels: int) -> None:
        super().__init__()
        self.learned_shortcut = in_channels != out_channels
        middle = min(in_channels, out_channels)
        self.conv_0 = SpectralNormConv2d(in_channels, middle, kernel_size=3, padding=1)
        self.conv_1 = SpectralNormConv2d(middle, out_channels, kernel_size=3, padding=1)
        if self.learned_shortcut:
            self.conv_s = SpectralNormConv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.norm_0 = SPADE(in_channels, label_channels)
        self.norm_1 = SPADE(middle, label_channels)
        if self.learned_shortcut:
            self.norm_s = SPADE(in_channels, label_channels)

    def forward(self, x: torch.Tensor, segmentation: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, segmentation)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, segmentation), 2e-1))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, segmentation), 2e-1))
        return shortcut + dx


class SPADEDecoder(nn.Module):
    """G: warped features ``B×256×64×64`` → image ``B×3×512×512`` RGB in [0, 1]."""

    def __init__(self, upscale: int = 2, max_features: int = 512, block_expansion: int = 64, out_channels: int = 64,
                 num_down_blocks: int = 2) -> None:
        super().__init__()
        input_channels = min(max_features, block_expansion * 2 ** num_down_blocks)
        middle = 2 * input_channels
        self.fc = nn.Conv2d(input_channels, middle, kernel_size=3, padding=1)
        for index in range(6):
            self.add_module(f"G_middle_{index}", SPADEResnetBlock(middle, middle, input_channels))
        self.up_0 = SPADEResnetBlock(middle, input_channels, input_channels)
        self.up_1 = SPADEResnetBlock(input_channels, out_channels, input_channels)
        self.conv_img = nn.Sequential(nn.Conv2d(out_channels, 3 * upscale ** 2, kernel_size=3, padding=1),
                                      nn.PixelShuffle(upscale))

    def logits(self, feature: torch.Tensor) -> torch.Tensor:
        """The pre-sigmoid image ``B×3×512×512``."""
        x = self.fc(feature)
        for index in range(6):
            x = getattr(self, f"G_middle_{index}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2), feature)
        return self.conv_img(F.leaky_relu(x, 2e-1))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(feature))
