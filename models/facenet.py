"""FaceNet InceptionResnetV1 (facenet-pytorch layout, VGGFace2 weights), the `facenet` identity embedder.

Input: 160×160 RGB in [-1, 1]; output: a unit-norm 512-d embedding (normalised inside forward). The
8631-way ``logits`` classifier is kept only because the released file holds it. See
conformance/recognition/README.md §5.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 160
EMBEDDING_SIZE = 512
VGGFACE2_CLASSES = 8631


class BasicConv2d(nn.Module):
    """Conv (no bias) → BatchNorm (eps 1e-3) → ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.1, affine=True)
        self.relu = nn.ReLU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(features)))


class _ScaledResidual(nn.Module):
    """Inception-ResNet block: concatenated branches → 1×1 conv (with bias) → x + scale·that (→ ReLU)."""

    def __init__(
        self, branches: dict[str, nn.Module], concat_channels: int, channels: int, scale: float, relu: bool
    ) -> None:
        super().__init__()
        # Branches are registered before conv2d so the state_dict order matches the released file.
        self.branch_names = tuple(branches)
        for name, branch in branches.items():
            setattr(self, name, branch)
        self.scale = scale
        self.conv2d = nn.Conv2d(concat_channels, channels, kernel_size=1)
        self.relu = nn.ReLU() if relu else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([getattr(self, name)(features) for name in self.branch_names], dim=1)
        out = self.conv2d(mixed) * self.scale + features
        return self.relu(out) if self.relu is not None else out


class Block35(_ScaledResidual):
    """Inception-ResNet-A on 256 channels (17×17 for a 160 input)."""

    def __init__(self, scale: float = 1.0) -> None:
        branches = {
            "branch0": BasicConv2d(256, 32, 1),
            "branch1": nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1)),
            "branch2": nn.Sequential(
                BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1), BasicConv2d(32, 32, 3, padding=1)
            ),
        }
        super().__init__(branches, 96, 256, scale, relu=True)


class Block17(_ScaledResidual):
    """Inception-ResNet-B on 896 channels (8×8), with factorised 1×7 / 7×1 convolutions."""

    def __init__(self, scale: float = 1.0) -> None:
        branches = {
            "branch0": BasicConv2d(896, 128, 1),
            "branch1": nn.Sequential(
                BasicConv2d(896, 128, 1),
                BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
                BasicConv2d(128, 128, (7, 1), padding=(3, 0)),
            ),
        }
        super().__init__(branches, 256, 896, scale, relu=True)


class Block8(_ScaledResidual):
    """Inception-ResNet-C on 1792 channels (3×3), with factorised 1×3 / 3×1 convolutions."""

    def __init__(self, scale: float = 1.0, relu: bool = True) -> None:
        branches = {
            "branch0": BasicConv2d(1792, 192, 1),
            "branch1": nn.Sequential(
                BasicConv2d(1792, 192, 1),
                BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
                BasicConv2d(192, 192, (3, 1), padding=(1, 0)),
            ),
        }
        super().__init__(branches, 384, 1792, scale, relu=relu)


class Mixed6a(nn.Module):
    """Reduction-A: 256×17×17 → 896×8×8 (two strided conv branches and a max-pool, concatenated)."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 192, 1), BasicConv2d(192, 192, 3, padding=1), BasicConv2d(192, 256, 3, stride=2)
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(features), self.branch1(features), self.branch2(features)], dim=1)


class Mixed7a(nn.Module):
    """Reduction-B: 896×8×8 → 1792×3×3."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2))
        self.branch2 = nn.Sequential(
            BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, padding=1), BasicConv2d(256, 256, 3, stride=2)
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return torch.cat([branch(features) for branch in branches], dim=1)


class InceptionResnetV1(nn.Module):
    """FaceNet InceptionResnetV1 embedding network (manifest_facenet_pytorch.json).

    forward: [N, 3, 160, 160] RGB in [-1, 1] → [N, 512] unit-norm embedding.
    """

    def __init__(self, num_classes: int = VGGFACE2_CLASSES, dropout: float = 0.6) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[Block35(scale=0.17) for _ in range(5)])
        self.mixed_6a = Mixed6a()
        self.repeat_2 = nn.Sequential(*[Block17(scale=0.10) for _ in range(10)])
        self.mixed_7a = Mixed7a()
        self.repeat_3 = nn.Sequential(*[Block8(scale=0.20) for _ in range(5)])
        self.block8 = Block8(relu=False)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.last_linear = nn.Linear(1792, EMBEDDING_SIZE, bias=False)
        self.last_bn = nn.BatchNorm1d(EMBEDDING_SIZE, eps=1e-3, momentum=0.1, affine=True)
        # Never used by forward; present in the released file, so it must exist for a strict load.
        self.logits = nn.Linear(EMBEDDING_SIZE, num_classes)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Unit-norm identity embedding of aligned faces.

        faces: [N, 3, 160, 160] RGB in [-1, 1] → [N, 512] with L2 norm 1.
        """
        features = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(faces)))
        features = self.conv2d_4b(self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(features))))
        features = self.mixed_6a(self.repeat_1(features))
        features = self.mixed_7a(self.repeat_2(features))
        features = self.block8(self.repeat_3(features))
        features = self.dropout(torch.flatten(self.avgpool_1a(features), 1))
        embedding = self.last_bn(self.last_linear(features))
        return F.normalize(embedding, p=2, dim=1)
