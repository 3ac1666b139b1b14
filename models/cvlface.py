"""CVLFace models: the three embedding wrappers (`cvl_arcface`, `cvl_adaface`, `cvl_vit`); the differentiable
face aligner (DFA) of the ``cvlface`` align mode is in models/cvlface_aligner.py.

Every CVLFace checkpoint stores its network under a single child ``net`` (hence the ``net.`` key prefix);
the original HuggingFace files add a leading ``model.``, which :func:`convert_state_dict` removes. The
wrappers feed RGB in [-1, 1] as given (no BGR flip, as GhostV2's reference); their output is the raw
embedding, L2-normalised later by models/embeddings.py. The ArcFace and AdaFace networks are the same
architectures as the standalone checkpoints, so they are imported from models/arcface.py and
models/adaface.py (one recognition family, four files). See conformance/recognition/README.md §4, §6, §7.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.adaface import AdaFaceIR101
from models.arcface import IResNet100
from utils.checkpoint import StateDict, strip_prefix

EMBEDDING_SIZE = 512
VIT_INPUT_SIZE = 112
# ArcFace 112×112 five-point template (x, y): eyes, nose tip, mouth corners.
ARCFACE_TEMPLATE_112 = (
    (38.29459953, 51.69630051),
    (73.53179932, 51.50139999),
    (56.02519989, 71.73660278),
    (41.54930115, 92.3655014),
    (70.72990036, 92.20410156),
)


def convert_state_dict(state_dict: StateDict) -> StateDict:
    """Map a CVLFace file's keys to our module keys: ``model.net.x`` and ``net.x`` both become ``net.x``.

    The original HuggingFace layout wraps the model in a ``model`` attribute; GhostV2 releases may or may not.
    """
    return strip_prefix(state_dict, "model.")


class _CVLFaceWrapper(nn.Module):
    """A CVLFace recognition model: the network lives in ``net``; forward is ``net(faces)``, unflipped."""

    net: nn.Module

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Raw identity embedding.

        faces: [N, 3, 112, 112] RGB in [-1, 1] → [N, 512], not normalised.
        """
        return self.net(faces)


class CVLArcFace(_CVLFaceWrapper):
    """CVLFace ArcFace IR-101 (WebFace4M): wrapper around IResNet-100."""

    def __init__(self) -> None:
        super().__init__()
        self.net = IResNet100()


class CVLAdaFace(_CVLFaceWrapper):
    """CVLFace AdaFace IR-101 (WebFace12M): wrapper around the AdaFace backbone without its own normalisation."""

    def __init__(self) -> None:
        super().__init__()
        self.net = AdaFaceIR101(with_norm=False)


# --------------------------------------------------------------------------------------------------
# Vision transformer (cvl_vit, the default embedding model)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample while training; identity in eval."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, branch: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return branch
        keep = 1.0 - self.rate
        mask = branch.new_empty((branch.shape[0],) + (1,) * (branch.ndim - 1)).bernoulli_(keep)
        return branch * mask / keep


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection: [N, 3, 112, 112] → tokens [N, 196, dim], token = row·14 + col."""

    def __init__(self, image_size: int = VIT_INPUT_SIZE, patch_size: int = 8, embed_dim: int = 512) -> None:
        super().__init__()
        self.image_size = image_size
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"the CVLFace ViT takes {self.image_size}×{self.image_size} faces, got {tuple(images.shape[-2:])}"
            )
        return self.proj(images).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention; qkv rows are laid out [q | k | v] × heads × head_dim."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, dim = tokens.shape
        qkv = self.qkv(tokens).reshape(batch, length, 3, self.num_heads, dim // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # Scale after the product (not fused attention) to follow the reference's rounding.
        weights = ((query @ key.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((weights @ value).transpose(1, 2).reshape(batch, length, dim))


class Mlp(nn.Module):
    """Two linear layers with an activation in between (ReLU6 in the ViT, exact GELU in the DFA mixer)."""

    def __init__(self, in_features: int, hidden_features: int, activation: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = activation()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(features)))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, num_heads)
        self.drop_path = DropPath(drop_path)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), activation=nn.ReLU6)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.drop_path(self.attn(self.norm1(tokens)))
        return tokens + self.drop_path(self.mlp(self.norm2(tokens)))


class VisionTransformer(nn.Module):
    """CVLFace ViT: patch tokens (no class token) + learned positions, pre-norm blocks, flattening head.

    forward: [N, 3, 112, 112] RGB in [-1, 1] → [N, num_features] raw embedding. Defaults are ViT-base
    (patch 8, dim 512, depth 24, 16 heads, MLP ratio 3); smaller values build tiny test networks.
    """

    def __init__(
        self,
        image_size: int = VIT_INPUT_SIZE,
        patch_size: int = 8,
        embed_dim: int = 512,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 3.0,
        drop_path_rate: float = 0.1,
        num_features: int = EMBEDDING_SIZE,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(image_size, patch_size, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dim))
        # Stochastic depth rises linearly from 0 to drop_path_rate (plain floats: works on the meta device).
        rates = [drop_path_rate * index / max(1, depth - 1) for index in range(depth)]
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, rate) for rate in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-5)
        self.feature = nn.Sequential(
            nn.Linear(num_patches * embed_dim, num_features, bias=False),
            nn.BatchNorm1d(num_features, eps=2e-5),
            nn.Linear(num_features, num_features, bias=False),
            nn.BatchNorm1d(num_features, eps=2e-5),
        )

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Raw identity embedding.

        faces: [N, 3, 112, 112] RGB in [-1, 1] → [N, 512], not normalised.
        """
        tokens = self.patch_embed(faces) + self.pos_embed
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens.float())
        return self.feature(tokens.reshape(tokens.shape[0], -1))


class CVLViT(_CVLFaceWrapper):
    """CVLFace AdaFace ViT-base (WebFace4M), GhostV2's default embedding model."""

    def __init__(self, **vit_settings: Any) -> None:
        super().__init__()
        self.net = VisionTransformer(**vit_settings)


# --------------------------------------------------------------------------------------------------
# Differentiable face aligner: RetinaFace-MobileNet0.25 landmark predictor + MLP-Mixer aggregator
