"""BiSeNet face parser (19 CelebAMask-HQ classes) and the helpers that turn a face into a class map.

Architecture of zllrunning/face-parsing.PyTorch (ResNet-18 context path, attention refinement,
feature fusion; conformance kit faces/README.md §4). The facexlib_with_parser paste-back feeds it the
swapped face resized to 512x512 (its training size, utils/paste_back.PARSER_INPUT_SIZE), converted like
GFPGAN's input: RGB in [-1, 1]. FACE_CLASSES is the one table of which classes count as face.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from models.registry import load_model
from utils.device import module_device
from utils.image import bgr_to_tensor

NUM_CLASSES = 19
CLASS_NAMES: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eyeglasses", "l_ear", "r_ear", "earring",
    "nose", "mouth", "u_lip", "l_lip", "neck", "necklace", "cloth", "hair", "hat",
)
# Classes the paste-back keeps as "face": skin, brows, eyes, glasses, ears, earring, nose, mouth, lips, and the
# necklace (as the reference does). Background, neck, cloth, hair and hat are left to the target.
FACE_CLASSES: tuple[int, ...] = (*range(1, 14), 15)


def _global_average(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, x.shape[2:])


class ConvBNReLU(nn.Module):
    """k x k conv (no bias) + BatchNorm + ReLU, padding keeping the size for 3x3."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BiSeNetOutput(nn.Module):
    """Segmentation head: ConvBNReLU 3x3 then 1x1 conv to class logits."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels, 3)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class AttentionRefinementModule(nn.Module):
    """ConvBNReLU re-weighted per channel by a sigmoid of its global average."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels, 3)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        attention = torch.sigmoid(self.bn_atten(self.conv_atten(_global_average(features))))
        return features * attention


class ContextPath(nn.Module):
    """ResNet-18 features at 1/8, with the 1/16 and 1/32 context refined and brought up to 1/8 and 1/16."""

    def __init__(self) -> None:
        super().__init__()
        resnet = resnet18(weights=None)
        del resnet.fc, resnet.avgpool  # not part of the release
        self.resnet = resnet
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3)
        self.conv_head16 = ConvBNReLU(128, 128, 3)
        self.conv_avg = ConvBNReLU(512, 128, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        resnet = self.resnet
        x = resnet.layer1(resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x)))))
        feat8 = resnet.layer2(x)
        feat16 = resnet.layer3(feat8)
        feat32 = resnet.layer4(feat16)
        global_context = F.interpolate(
            self.conv_avg(_global_average(feat32)), size=feat32.shape[2:], mode="nearest"
        )
        context32 = self.arm32(feat32) + global_context
        context32 = self.conv_head32(F.interpolate(context32, size=feat16.shape[2:], mode="nearest"))
        context16 = self.arm16(feat16) + context32
        context16 = self.conv_head16(F.interpolate(context16, size=feat8.shape[2:], mode="nearest"))
        return feat8, context16, context32


class FeatureFusionModule(nn.Module):
    """Fuses spatial and context features, with a squeeze-excitation style residual re-weighting."""

    def __init__(self, in_channels: int = 256, out_channels: int = 256) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, 1)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        features = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_average(features)))))
        return features * attention + features


class BiSeNet(nn.Module):
    """BiSeNet face parser.

    forward: x [B,3,H,W] float32 RGB in [-1, 1] -> (main logits, 1/8 auxiliary logits, 1/16 auxiliary
    logits), each [B,num_classes,H,W] (bilinear, align_corners=True); only the first is used.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, num_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, num_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = x.shape[2:]
        feat8, context16, context32 = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context16))
        logits16 = self.conv_out16(context16)
        logits32 = self.conv_out32(context32)
        return tuple(
            F.interpolate(output, size=size, mode="bilinear", align_corners=True)
            for output in (logits, logits16, logits32)
        )


@torch.no_grad()
def parse_face(face_bgr: np.ndarray, model: nn.Module) -> np.ndarray:
    """Class index of every pixel of a face crop (no resizing: the reference parses the face as given).

    face_bgr: H x W x 3 uint8 BGR -> H x W uint8 class map (see CLASS_NAMES).
    """
    device = module_device(model)
    logits = model(bgr_to_tensor(face_bgr).to(device))[0]
    return logits[0].argmax(0).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def parse_faces(faces_bgr: Sequence[np.ndarray], model: nn.Module) -> list[np.ndarray]:
    """:func:`parse_face` on several same-size face crops in one network call (H x W uint8 class maps).

    ``model`` is BiSeNet or any callable with its outputs (its ONNX Runtime twin)."""
    device = module_device(model)
    logits = model(torch.cat([bgr_to_tensor(face) for face in faces_bgr]).to(device))[0]
    return list(logits.argmax(1).to(torch.uint8).cpu().numpy())


def face_region_mask(parsing: np.ndarray) -> np.ndarray:
    """H x W class map -> H x W uint8 mask: 255 on FACE_CLASSES, 0 elsewhere (neck, cloth, hair, hat, ...)."""
    return np.where(np.isin(parsing, FACE_CLASSES), 255, 0).astype(np.uint8)


def load_bisenet(
    device: str | torch.device = "cpu", path: str | Path | None = None, weights_dir: str | Path | None = None
) -> BiSeNet:
    """Load the released BiSeNet weights strictly, in eval mode."""
    return load_model("bisenet", device=device, path=path, weights_dir=weights_dir)
