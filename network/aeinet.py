"""AEI-Net: the multi-level attribute encoder and the AAD generator that swap an identity onto a target face.

Layout and arithmetic follow ../shared/conformance/network/README.md §3; module attribute names follow the
released checkpoint keys (``encoder.*``, ``generator.up1``, ``generator.AADBlk1`` … ``AADBlk8``), so a file loads
without any remapping once the ``_orig_mod.`` prefix that ``torch.compile`` adds is stripped.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from utils.checkpoint import StateDict, strip_prefix

BACKBONES = ("unet", "linknet", "resnet")
COMPILE_PREFIX = "_orig_mod."
NUM_ATTRIBUTES = 8

# Output channels of the encoder's up path (deconv1 … deconv6), shared by unet and linknet.
_DECONV_CHANNELS = (1024, 512, 256, 128, 64, 32)
# Down path channels, image → conv1 … conv7.
_CONV_CHANNELS = (3, 32, 64, 128, 256, 512, 1024, 1024)
# Channels of attribute maps 0 … 7: unet concatenates skips (and resnet mimics it), linknet adds them.
ATTRIBUTE_CHANNELS = {
    "unet": (1024, 2048, 1024, 512, 256, 128, 64, 64),
    "resnet": (1024, 2048, 1024, 512, 256, 128, 64, 64),
    "linknet": (1024, 1024, 512, 256, 128, 64, 32, 32),
}
# (cin, cout) of the generator's AAD residual blocks AADBlk1 … AADBlk8.
_GENERATOR_CHANNELS = (
    (1024, 1024), (1024, 1024), (1024, 1024), (1024, 512), (512, 256), (256, 128), (128, 64), (64, 3),
)
# ResNet encoder: (planes, blocks) of layer1 … layer6; every layer starts with a stride-2 bottleneck.
_RESNET_LAYERS = ((32, 2), (64, 2), (128, 2), (256, 2), (512, 2), (256, 2))
_BOTTLENECK_EXPANSION = 4


def upsample2x(features: torch.Tensor, align_corners: bool) -> torch.Tensor:
    """Bilinear ×2 upsampling as used throughout AEI-Net.

    [B, C, H, W] → [B, C, 2H, 2W], any value range.
    """
    return F.interpolate(features, scale_factor=2, mode="bilinear", align_corners=align_corners)


def _check_configuration(backbone: str, num_blocks: int) -> None:
    if backbone not in BACKBONES:
        raise ValueError(f"unsupported AEI-Net backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 1:
        raise ValueError(
            f"unsupported AEI-Net num_blocks {num_blocks!r}; use a positive integer (1, 2 or 3 in practice; "
            "the released generators use 2)"
        )


# --------------------------------------------------------------------------------------------- attribute encoders


def _down_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv 4×4 stride 2 → BatchNorm → LeakyReLU(0.1); keys ``0.weight`` and ``1.*``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1),
    )


class UpStage(nn.Module):
    """Transposed conv 4×4 stride 2 → BatchNorm → LeakyReLU(0.1), then merged with a skip feature.

    [B, cin, H, W] + skip [B, cout, 2H, 2W] → [B, 2·cout or cout, 2H, 2W].
    """

    def __init__(self, in_channels: int, out_channels: int, concatenate: bool) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activation = nn.LeakyReLU(0.1)
        self.concatenate = concatenate

    def forward(self, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        upsampled = self.activation(self.bn(self.deconv(features)))
        # unet keeps both (upsampled first), linknet sums them.
        return torch.cat((upsampled, skip), dim=1) if self.concatenate else upsampled + skip


class UNetAttributeEncoder(nn.Module):
    """The multi-level attribute encoder of backbones ``unet`` (concatenated skips) and ``linknet`` (added skips).

    Images [B, 3, H, W] in [-1, 1] (H, W multiples of 128) → 8 maps, coarsest (H/128) first, last at H×W.
    """

    def __init__(self, concatenate_skips: bool = True, align_corners: bool = True) -> None:
        super().__init__()
        for index in range(1, len(_CONV_CHANNELS)):
            self.add_module(f"conv{index}", _down_stage(_CONV_CHANNELS[index - 1], _CONV_CHANNELS[index]))
        merge_factor = 2 if concatenate_skips else 1
        in_channels = _CONV_CHANNELS[-1]
        for index, out_channels in enumerate(_DECONV_CHANNELS, start=1):
            self.add_module(f"deconv{index}", UpStage(in_channels, out_channels, concatenate_skips))
            in_channels = out_channels * merge_factor
        self.align_corners = align_corners

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        skips = []
        features = images
        for index in range(1, len(_CONV_CHANNELS)):
            features = getattr(self, f"conv{index}")(features)
            skips.append(features)
        attributes = [skips.pop()]
        for index in range(1, len(_DECONV_CHANNELS) + 1):
            attributes.append(getattr(self, f"deconv{index}")(attributes[-1], skips.pop()))
        attributes.append(upsample2x(attributes[-1], self.align_corners))
        return tuple(attributes)


class Bottleneck(nn.Module):
    """Caffe-style ResNet bottleneck (the stride sits on the first 1×1 conv), expansion 4.

    [B, cin, H, W] → [B, 4·planes, H/stride, W/stride].
    """

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * _BOTTLENECK_EXPANSION
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        shortcut = features if self.downsample is None else self.downsample(features)
        main = self.relu(self.bn1(self.conv1(features)))
        main = self.relu(self.bn2(self.conv2(main)))
        main = self.bn3(self.conv3(main))
        return self.relu(main + shortcut)


class ResNetAttributeEncoder(nn.Module):
    """The attribute encoder of backbone ``resnet``: a bottleneck ResNet whose stage outputs are the attributes.

    Images [B, 3, H, W] in [-1, 1] (H, W multiples of 128) → 8 maps with the unet channel table, last at H×W.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 64, kernel_size=7, stride=1, padding=3, bias=False)
        self.bn0 = nn.BatchNorm2d(64)
        self.conv1 = nn.Conv2d(64, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        in_channels = 64
        for index, (planes, blocks) in enumerate(_RESNET_LAYERS, start=1):
            layer = [Bottleneck(in_channels, planes, stride=2)]
            in_channels = planes * _BOTTLENECK_EXPANSION
            layer += [Bottleneck(in_channels, planes) for _ in range(blocks - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*layer))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = [self.relu(self.bn0(self.conv0(images)))]
        features.append(self.relu(self.bn1(self.conv1(features[-1]))))
        for index in range(1, len(_RESNET_LAYERS) + 1):
            features.append(getattr(self, f"layer{index}")(features[-1]))
        return tuple(reversed(features))


# ---------------------------------------------------------------------------------------------------- AAD generator


class AADLayer(nn.Module):
    """Adaptive attentional denormalisation: blends attribute- and identity-modulated normalised activations.

    activation [B, C, H, W], attributes [B, A, H, W], identity [B, c_id] → [B, C, H, W].
    """

    def __init__(self, channels: int, attribute_channels: int, identity_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(attribute_channels, channels, kernel_size=1)
        self.conv2 = nn.Conv2d(attribute_channels, channels, kernel_size=1)
        self.fc1 = nn.Linear(identity_channels, channels)
        self.fc2 = nn.Linear(identity_channels, channels)
        self.conv_h = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, activation: torch.Tensor, attributes: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        normalised = F.instance_norm(activation, eps=1e-5)
        attribute_scale, attribute_shift = self.conv1(attributes), self.conv2(attributes)
        identity_scale = self.fc1(identity)[:, :, None, None]
        identity_shift = self.fc2(identity)[:, :, None, None]
        from_attributes = attribute_scale * normalised + attribute_shift
        from_identity = identity_scale * normalised + identity_shift
        mask = torch.sigmoid(self.conv_h(normalised))
        return (1 - mask) * from_attributes + mask * from_identity


def _aad_unit(in_channels: int, out_channels: int, attribute_channels: int, identity_channels: int) -> list[nn.Module]:
    """One [AAD, ReLU, Conv 3×3] unit, flattened so its keys are ``{3u}.*`` and ``{3u+2}.weight``."""
    return [
        AADLayer(in_channels, attribute_channels, identity_channels),
        nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
    ]


def _run_units(
    units: nn.ModuleList, features: torch.Tensor, attributes: torch.Tensor, identity: torch.Tensor
) -> torch.Tensor:
    for start in range(0, len(units), 3):
        aad, activation, conv = units[start:start + 3]
        features = conv(activation(aad(features, attributes, identity)))
    return features


class AADResBlock(nn.Module):
    """AAD residual block: ``num_blocks`` AAD units, plus one AAD unit on the shortcut when channels change.

    features [B, cin, H, W], attributes [B, A, H, W], identity [B, c_id] → [B, cout, H, W].
    """

    def __init__(
        self, in_channels: int, out_channels: int, attribute_channels: int, identity_channels: int, num_blocks: int
    ) -> None:
        super().__init__()
        units: list[nn.Module] = []
        for index in range(num_blocks):
            unit_out = out_channels if index == num_blocks - 1 else in_channels
            units += _aad_unit(in_channels, unit_out, attribute_channels, identity_channels)
        self.add_blocks = nn.ModuleList(units)
        self.last_add_block = None
        if in_channels != out_channels:
            self.last_add_block = nn.ModuleList(
                _aad_unit(in_channels, out_channels, attribute_channels, identity_channels)
            )

    def forward(self, features: torch.Tensor, attributes: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        main = _run_units(self.add_blocks, features, attributes, identity)
        shortcut = features if self.last_add_block is None else _run_units(
            self.last_add_block, features, attributes, identity
        )
        return main + shortcut


class AADGenerator(nn.Module):
    """Decodes an identity embedding, modulated by the 8 attribute maps, into a 256×256 face.

    attributes (8 maps, 2×2 … 256×256), identity [B, c_id] → [B, 3, 256, 256] in (-1, 1), RGB.
    """

    def __init__(
        self,
        attribute_channels: Sequence[int],
        identity_channels: int = 512,
        num_blocks: int = 2,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose2d(identity_channels, 1024, kernel_size=2, stride=1, padding=0)
        for index, ((cin, cout), attr_channels) in enumerate(zip(_GENERATOR_CHANNELS, attribute_channels), start=1):
            self.add_module(f"AADBlk{index}", AADResBlock(cin, cout, attr_channels, identity_channels, num_blocks))
        self.align_corners = align_corners

    def forward(self, attributes: Sequence[torch.Tensor], identity: torch.Tensor) -> torch.Tensor:
        features = self.up1(identity.reshape(identity.shape[0], -1, 1, 1))
        for index, attribute in enumerate(attributes[:-1], start=1):
            block = getattr(self, f"AADBlk{index}")
            features = upsample2x(block(features, attribute, identity), self.align_corners)
        last = getattr(self, f"AADBlk{len(attributes)}")
        return torch.tanh(last(features, attributes[-1], identity))


class AEINet(nn.Module):
    """The GhostV2 face-swap generator: target attributes from the encoder, identity from an embedding.

    ``forward(target [B, 3, 256, 256] RGB in [-1, 1], identity [B, c_id])`` → (swapped [B, 3, 256, 256] in (-1, 1),
    the target's 8 attribute maps).
    """

    def __init__(
        self, backbone: str = "unet", num_blocks: int = 2, c_id: int = 512, align_corners: bool = True
    ) -> None:
        super().__init__()
        _check_configuration(backbone, num_blocks)
        self.backbone, self.num_blocks, self.c_id = backbone, num_blocks, c_id
        if backbone == "resnet":
            self.encoder: nn.Module = ResNetAttributeEncoder()
        else:
            self.encoder = UNetAttributeEncoder(concatenate_skips=backbone == "unet", align_corners=align_corners)
        self.generator = AADGenerator(ATTRIBUTE_CHANNELS[backbone], c_id, num_blocks, align_corners)

    def forward(self, target: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        attributes = self.encoder(target)
        return self.generator(attributes, identity), attributes

    def get_attr(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The 8 attribute maps of images (the encoder alone; used by the attribute loss).

        [B, 3, H, W] RGB in [-1, 1], H and W multiples of 128 → maps from [B, 1024, H/128, W/128] to [B, ·, H, W].
        """
        return self.encoder(images)

    def extra_repr(self) -> str:
        return f"backbone={self.backbone}, num_blocks={self.num_blocks}, c_id={self.c_id}"


# ------------------------------------------------------------------------------------------------ checkpoint helpers


def convert_state_dict(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Keys of a G or D file as the plain module names them."""
    # Training saves the torch.compile wrapper, which prefixes every key with "_orig_mod.".
    return strip_prefix(state_dict, COMPILE_PREFIX)


def describe_state_dict(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Name the configuration a generator (or discriminator) state dict holds, inferred from its keys and shapes."""
    keys = convert_state_dict(state_dict)
    if any(key.startswith("encoder.layer1.") for key in keys):
        backbone = "resnet"
    elif "encoder.deconv2.deconv.weight" in keys:
        skip_channels = keys["encoder.deconv2.deconv.weight"].shape[0]
        backbone = "unet" if skip_channels == 2 * _DECONV_CHANNELS[0] else "linknet"
    elif any(re.match(r"layer\d+\.0\.weight$", key) for key in keys):
        scales = len({key.split(".")[0] for key in keys if key.startswith("layer")})
        return f"a multiscale discriminator with {scales} scales"
    else:
        return f"no AEI-Net layout ({len(keys)} tensors, first key {next(iter(keys), '<none>')!r})"
    units = {
        int(match.group(1))
        for key in keys
        if (match := re.match(r"generator\.AADBlk1\.add_blocks\.(\d+)\.conv1\.weight$", key))
    }
    description = f"AEI-Net backbone={backbone}"
    if units:
        description += f", num_blocks={len(units)}"
    identity_channels = keys["generator.up1.weight"].shape[0] if "generator.up1.weight" in keys else 512
    if identity_channels != 512:
        description += f", c_id={identity_channels}"
    return description
