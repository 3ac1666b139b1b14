"""GFPGAN v1 "clean" face restoration (v1.4 at inference, v1.2 during preprocessing): network and helper.

A U-Net encodes the degraded 512x512 face into 16 per-layer style latents and, at each resolution,
spatial scale/shift maps; a StyleGAN2 decoder (without custom CUDA ops) modulated by those latents
applies the maps to half of its channels (SFT). Both released files share this exact constructor
(conformance kit faces/README.md §3). By default every StyleConv draws fresh Gaussian noise, as the
released code does; ``randomize_noise=False`` uses the stored noise buffers (deterministic). The noise can
also be given (``noises``, one [B,1,r,r] map per StyleConv; :meth:`GFPGANv1Clean.draw_noise` draws exactly
what the network would draw itself), which is how the ONNX export takes it as an input.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.registry import load_model
from utils.device import module_device
from utils.image import bgr_to_tensor, tensor_to_bgr_rounded

logger = logging.getLogger(__name__)

VERSIONS = {"v1.4": "gfpgan_v1_4", "v1.2": "gfpgan_v1_2"}
FACE_SIZE = 512
NOISE_EPSILON = 1e-8
LEAKY_SLOPE = 0.2


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class ResBlock(nn.Module):
    """Residual block that halves (``down``) or doubles (``up``) the resolution, bilinearly."""

    def __init__(self, in_channels: int, out_channels: int, mode: str) -> None:
        super().__init__()
        self.factor = {"down": 0.5, "up": 2.0}[mode]
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _resize(_lrelu(self.conv1(x)), self.factor)
        out = _lrelu(self.conv2(out))
        return out + self.skip(_resize(x, self.factor))


class NormStyleCode(nn.Module):
    """Normalises a style code to unit mean square (first layer of the mapping network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + NOISE_EPSILON)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution (per-sample weights); optionally upsamples its input x2 first."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, num_style_feat: int,
        demodulate: bool = True, upsample: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2
        shape = (1, out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape) / math.sqrt(in_channels * kernel_size**2))
        self.modulation = nn.Linear(num_style_feat, in_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        weight = self.weight * self.modulation(style).view(batch, 1, channels, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + NOISE_EPSILON).view(batch, -1, 1, 1, 1)
        weight = weight.view(batch * self.out_channels, channels, *weight.shape[3:])
        if self.upsample:
            x = _resize(x, 2.0)
        height, width = x.shape[2:]
        out = F.conv2d(x.reshape(1, batch * channels, height, width), weight, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channels, *out.shape[2:])


class StyleConv(nn.Module):
    """Modulated 3x3 conv + scaled noise + bias + leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, num_style_feat: int, upsample: bool = False) -> None:
        super().__init__()
        self.modulated_conv = ModulatedConv2d(in_channels, out_channels, 3, num_style_feat, upsample=upsample)
        self.weight = nn.Parameter(torch.zeros(1))  # noise strength
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) * 2**0.5
        if noise is None:
            noise = out.new_empty(out.shape[0], 1, *out.shape[2:]).normal_()
        return _lrelu(out + self.weight * noise + self.bias)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB (no demodulation), added to the upsampled previous RGB."""

    def __init__(self, in_channels: int, num_style_feat: int, upsample: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = ModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            out = out + (_resize(skip, 2.0) if self.upsample else skip)
        return out


class ConstantInput(nn.Module):
    """The learned 4x4 input of the StyleGAN2 decoder."""

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.weight.repeat(batch, 1, 1, 1)


class StyleGAN2GeneratorSFT(nn.Module):
    """StyleGAN2 decoder whose upsampling convs are followed by SFT on half of their channels."""

    def __init__(
        self, out_size: int, num_style_feat: int, num_mlp: int, channel_multiplier: int, narrow: float
    ) -> None:
        super().__init__()
        self.num_style_feat = num_style_feat
        mapping: list[nn.Module] = [NormStyleCode()]
        for _ in range(num_mlp):
            mapping += [nn.Linear(num_style_feat, num_style_feat), nn.LeakyReLU(LEAKY_SLOPE)]
        self.style_mlp = nn.Sequential(*mapping)
        channels = _decoder_channels(channel_multiplier, narrow)
        self.log_size = int(math.log2(out_size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.num_latent = self.log_size * 2 - 2
        self.constant_input = ConstantInput(channels[4], 4)
        self.style_conv1 = StyleConv(channels[4], channels[4], num_style_feat)
        self.to_rgb1 = ToRGB(channels[4], num_style_feat, upsample=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for index, resolution in enumerate(self.noise_resolutions()):
            self.noises.register_buffer(f"noise{index}", torch.randn(1, 1, resolution, resolution))
        in_channels = channels[4]
        for level in range(3, self.log_size + 1):
            out_channels = channels[2**level]
            self.style_convs.append(StyleConv(in_channels, out_channels, num_style_feat, upsample=True))
            self.style_convs.append(StyleConv(out_channels, out_channels, num_style_feat))
            self.to_rgbs.append(ToRGB(out_channels, num_style_feat))
            in_channels = out_channels

    def noise_resolutions(self) -> list[int]:
        """Side of each StyleConv's noise map, in call order (4, 8, 8, 16, 16, ..., out_size, out_size)."""
        return [2 ** ((index + 5) // 2) for index in range(self.num_layers)]

    def forward(
        self, latent: torch.Tensor, conditions: list[torch.Tensor], randomize_noise: bool = True,
        noises: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """latent [B,num_latent,num_style_feat] (already in W space), conditions: (scale, shift) per level.

        ``noises`` (one [B or 1,1,r,r] map per layer, see :meth:`noise_resolutions`) overrides
        ``randomize_noise``. Returns the RGB image [B,3,out_size,out_size], nominally [-1, 1].
        """
        if noises is not None:
            if len(noises) != self.num_layers:
                raise ValueError(f"GFPGAN takes {self.num_layers} noise maps, got {len(noises)}")
            noises = list(noises)
        elif randomize_noise:
            noises = [None] * self.num_layers
        else:
            noises = [getattr(self.noises, f"noise{index}") for index in range(self.num_layers)]
        out = self.style_conv1(self.constant_input(latent.shape[0]), latent[:, 0], noise=noises[0])
        rgb = self.to_rgb1(out, latent[:, 1])
        for level, to_rgb in enumerate(self.to_rgbs):
            layer = 2 * level + 1
            out = self.style_convs[2 * level](out, latent[:, layer], noise=noises[layer])
            if 2 * level + 1 < len(conditions):
                unchanged, modulated = torch.split(out, out.shape[1] // 2, dim=1)
                modulated = modulated * conditions[2 * level] + conditions[2 * level + 1]
                out = torch.cat([unchanged, modulated], dim=1)
            out = self.style_convs[2 * level + 1](out, latent[:, layer + 1], noise=noises[layer + 1])
            rgb = to_rgb(out, latent[:, layer + 2], rgb)
        return rgb


def draw_noise_maps(
    resolutions: Sequence[int], batch: int, device: torch.device, dtype: torch.dtype = torch.float32
) -> list[torch.Tensor]:
    """One [batch,1,r,r] standard normal map per side in ``resolutions``, drawn in order as StyleConv draws them."""
    return [torch.empty(batch, 1, side, side, device=device, dtype=dtype).normal_() for side in resolutions]


def _decoder_channels(channel_multiplier: int, narrow: float) -> dict[int, int]:
    """StyleGAN2 channel count per resolution."""
    return {
        4: int(512 * narrow), 8: int(512 * narrow), 16: int(512 * narrow), 32: int(512 * narrow),
        64: int(256 * channel_multiplier * narrow), 128: int(128 * channel_multiplier * narrow),
        256: int(64 * channel_multiplier * narrow), 512: int(32 * channel_multiplier * narrow),
        1024: int(16 * channel_multiplier * narrow),
    }


def _condition_branch(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Conv2d(channels, channels, 3, padding=1),
    )


class GFPGANv1Clean(nn.Module):
    """GFPGAN v1 clean (the v1.2/v1.3/v1.4 architecture); defaults are the released constructor.

    forward: x [B,3,512,512] float32 RGB in [-1, 1] -> (restored [B,3,512,512] RGB, nominally [-1, 1] and
    not clamped; list of per-level RGB previews, empty unless ``return_rgb``).
    """

    def __init__(
        self,
        out_size: int = FACE_SIZE,
        num_style_feat: int = 512,
        channel_multiplier: int = 2,
        num_mlp: int = 8,
        input_is_latent: bool = True,
        different_w: bool = True,
        narrow: float = 1,
        sft_half: bool = True,
    ) -> None:
        super().__init__()
        if not (input_is_latent and different_w and sft_half):
            raise ValueError("only the released GFPGAN v1 clean setting is implemented "
                             "(input_is_latent=True, different_w=True, sft_half=True)")
        self.num_style_feat = num_style_feat
        unet = _decoder_channels(channel_multiplier, narrow * 0.5)  # the U-Net is half as wide
        self.log_size = int(math.log2(out_size))
        first = unet[2**self.log_size]
        self.conv_body_first = nn.Conv2d(3, first, 1)
        self.conv_body_down = nn.ModuleList()
        in_channels = first
        for level in range(self.log_size, 2, -1):
            self.conv_body_down.append(ResBlock(in_channels, unet[2 ** (level - 1)], "down"))
            in_channels = unet[2 ** (level - 1)]
        self.final_conv = nn.Conv2d(in_channels, unet[4], 3, padding=1)
        self.conv_body_up = nn.ModuleList()
        in_channels = unet[4]
        for level in range(3, self.log_size + 1):
            self.conv_body_up.append(ResBlock(in_channels, unet[2**level], "up"))
            in_channels = unet[2**level]
        self.toRGB = nn.ModuleList(nn.Conv2d(unet[2**level], 3, 1) for level in range(3, self.log_size + 1))
        num_latent = self.log_size * 2 - 2
        self.final_linear = nn.Linear(unet[4] * 4 * 4, num_latent * num_style_feat)
        self.stylegan_decoder = StyleGAN2GeneratorSFT(out_size, num_style_feat, num_mlp, channel_multiplier, narrow)
        levels = range(3, self.log_size + 1)
        self.condition_scale = nn.ModuleList(_condition_branch(unet[2**level]) for level in levels)
        self.condition_shift = nn.ModuleList(_condition_branch(unet[2**level]) for level in levels)

    def style_code(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Encoder: (latents [B,16,512], 4x4 features, U-Net skips from 4x4 up to 256x256)."""
        features = _lrelu(self.conv_body_first(x))
        skips = []
        for block in self.conv_body_down:
            features = block(features)
            skips.insert(0, features)
        features = _lrelu(self.final_conv(features))
        latent = self.final_linear(features.flatten(1)).view(x.shape[0], -1, self.num_style_feat)
        return latent, features, skips

    def draw_noise(self, batch: int, device: torch.device, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        """The fresh noise ``forward(randomize_noise=True)`` would draw, drawn now from the same generator.

        One [batch,1,r,r] standard normal map per StyleConv, in call order: passing them as ``noises`` gives
        the same output, bit for bit, as letting the network draw them (the ONNX export takes them as inputs).
        ``dtype`` is the StyleConv output's (float16 under CUDA autocast).
        """
        return draw_noise_maps(self.stylegan_decoder.noise_resolutions(), batch, device, dtype)

    def stored_noise(self) -> list[torch.Tensor]:
        """The checkpoint's noise buffers ([1,1,r,r] each), what ``randomize_noise=False`` uses."""
        decoder = self.stylegan_decoder
        return [getattr(decoder.noises, f"noise{index}") for index in range(decoder.num_layers)]

    def forward(
        self, x: torch.Tensor, return_rgb: bool = False, randomize_noise: bool = True,
        noises: Sequence[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x [B,3,512,512] RGB in [-1, 1] -> (restored image, previews); ``noises`` see :meth:`draw_noise`."""
        latent, features, skips = self.style_code(x)
        conditions, previews = [], []
        for index, block in enumerate(self.conv_body_up):
            features = block(features + skips[index])
            conditions.append(self.condition_scale[index](features))
            conditions.append(self.condition_shift[index](features))
            if return_rgb:
                previews.append(self.toRGB[index](features))
        return self.stylegan_decoder(latent, conditions, randomize_noise=randomize_noise, noises=noises), previews


def enhance_face(face_bgr: np.ndarray, model: nn.Module, randomize_noise: bool = True) -> np.ndarray:
    """Restore one face crop with GFPGAN; the input comes back unchanged if the network fails.

    face_bgr: 512 x 512 x 3 uint8 BGR (other sizes run but the model was trained at 512) -> same shape
    uint8 BGR (output clamped to [-1, 1], rounded half to even). ``randomize_noise`` False makes the
    result deterministic (stored noise); True is the released behaviour.
    """
    return enhance_faces([face_bgr], model, randomize_noise)[0]


@contextmanager
def seeded_noise(seed: int, device: torch.device) -> Iterator[None]:
    """Inside the block, GFPGAN's fresh noise is drawn from generators seeded with ``seed`` (repeatable runs).

    The released code draws unseeded noise at every call; this keeps its distribution but makes it a function
    of the seed. Every generator's state is restored on exit, so nothing else sees a difference.
    """
    device_type = device.type if device.type in ("cuda", "mps") else None
    count = torch.cuda.device_count() if device.type == "cuda" else int(device.type == "mps")
    with torch.random.fork_rng(devices=list(range(count)), device_type=device_type):
        torch.manual_seed(seed)
        yield


def enhance_faces(faces_bgr: Sequence[np.ndarray], model: nn.Module, randomize_noise: bool = True) -> list[np.ndarray]:
    """:func:`enhance_face` on several same-size faces in one network call (the inputs come back on failure)."""
    device = module_device(model)
    x = torch.cat([bgr_to_tensor(face) for face in faces_bgr]).to(device)
    try:
        with torch.no_grad():
            restored = model(x, return_rgb=False, randomize_noise=randomize_noise)[0]
    except RuntimeError as error:
        logger.warning("face enhancement failed, keeping the faces as they are: %s", error)
        return list(faces_bgr)
    return [tensor_to_bgr_rounded(face.float()) for face in restored]


def load_gfpgan(
    version: str = "v1.4",
    device: str | torch.device = "cpu",
    path: str | Path | None = None,
    weights_dir: str | Path | None = None,
) -> GFPGANv1Clean:
    """Load GFPGAN ``v1.4`` (inference) or ``v1.2`` (preprocessing) strictly, in eval mode."""
    if version not in VERSIONS:
        raise ValueError(f"unknown GFPGAN version {version!r}; expected one of {', '.join(VERSIONS)}")
    return load_model(VERSIONS[version], device=device, path=path, weights_dir=weights_dir)
