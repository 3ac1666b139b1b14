"""The face-identity embedding API shared by training, inference and embedding_distance.py.

``--face_embeddings`` picks one of :data:`FACE_EMBEDDING_NAMES`; :func:`load_face_embedder` loads it through
the registry and wraps it in a :class:`FaceEmbedder`, which applies the reference's input convention:
plain bilinear resize (align_corners=False, no antialiasing) to 112 (160 for facenet), the model, then
L2 normalisation for every model except ``arcface`` (GhostV1's generator expects the raw ArcFace output).
Model families are reached through the registry only (conformance/recognition/README.md §1).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import load_model

FACE_EMBEDDING_NAMES = ("cvl_vit", "cvl_adaface", "cvl_arcface", "adaface", "arcface", "facenet")
DEFAULT_FACE_EMBEDDINGS = "cvl_vit"
INPUT_SIZES = {"facenet": 160}
DEFAULT_INPUT_SIZE = 112
UNNORMALISED = frozenset({"arcface"})


def _check_name(name: str) -> str:
    if name not in FACE_EMBEDDING_NAMES:
        raise ValueError(f"unknown face embeddings {name!r}; choose one of: {', '.join(FACE_EMBEDDING_NAMES)}")
    return name


class FaceEmbedder(nn.Module):
    """A frozen identity model with its input convention; differentiable w.r.t. the input images.

    forward: [N, 3, H, W] RGB in [-1, 1] (normally 256×256 aligned faces) → [N, 512], unit L2 norm except
    for ``arcface``. The wrapped model stays in eval mode (even under ``.train()``) and its parameters do
    not require gradients, so an identity loss back-propagates into the images only.
    """

    def __init__(self, name: str, model: nn.Module) -> None:
        super().__init__()
        self.name = _check_name(name)
        self.input_size = INPUT_SIZES.get(name, DEFAULT_INPUT_SIZE)
        self.normalize = name not in UNNORMALISED
        self.model = model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> FaceEmbedder:
        """Keep the identity model in eval mode (BatchNorm statistics, dropout, drop-path) whatever ``mode``."""
        super().train(mode)
        self.model.eval()
        return self

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """The model's input: [N, 3, H, W] → [N, 3, S, S], bilinear, align_corners=False, no antialiasing."""
        size = [self.input_size, self.input_size]
        return F.interpolate(images, size, mode="bilinear", align_corners=False, antialias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Identity embeddings of aligned faces.

        images: [N, 3, H, W] RGB in [-1, 1] → [N, 512] (L2-normalised unless the model is ``arcface``).
        """
        embedding = self.model(self.resize(images))
        return F.normalize(embedding, p=2, dim=1) if self.normalize else embedding


def load_face_embedder(
    name: str = DEFAULT_FACE_EMBEDDINGS,
    device: str | torch.device = "cpu",
    path: str | Path | None = None,
    weights_dir: str | Path | None = None,
) -> FaceEmbedder:
    """Load the ``name`` identity model (registry checkpoint of the same name) as a :class:`FaceEmbedder`.

    ``path`` overrides the file location, ``weights_dir`` the weights folder. Raises ValueError for an
    unknown name, and the registry's typed errors for missing or mismatching files.
    """
    model = load_model(_check_name(name), device=device, path=path, weights_dir=weights_dir)
    return FaceEmbedder(name, model).to(device)


def get_face_embeddings(images: torch.Tensor, embedder: FaceEmbedder) -> torch.Tensor:
    """Identity embeddings of aligned faces: [N, 3, H, W] RGB in [-1, 1] → [N, 512] (see FaceEmbedder)."""
    return embedder(images)
