"""How far apart two identity embeddings of the same face are (the library side of embedding_distance.py).

One photo, its highest-score face, two crops of that face (each with its own align mode and size) and two
embedding models: ``1 − cosine similarity`` tells whether a model/alignment pair gives identity vectors
compatible with another (e.g. training with one alignment and evaluating with another).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.retinaface import DEFAULT_THRESHOLD
from utils.device import resolve_device
from utils.errors import GhostError, NoFaceFoundError
from utils.image import bgr_to_tensor, check_output_file, read_image, write_image

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingSide:
    """One of the two crops: which model embeds it, how it is aligned, at what size."""

    face_embeddings: str = "cvl_vit"
    align_mode: str = "insightface_v2"
    crop_size: int = 112
    model_path: str | Path | None = None  # None: the registry's file under weights_dir


@dataclass(frozen=True)
class EmbeddingDistanceOptions:
    """Everything embedding_distance.py can be asked (the original flags' meaning)."""

    source_image_path: str | Path
    source: EmbeddingSide = EmbeddingSide(align_mode="insightface_v1", crop_size=256)
    target: EmbeddingSide = EmbeddingSide()
    detection_threshold: float = DEFAULT_THRESHOLD
    device: str = "auto"
    weights_dir: str | Path | None = None
    retina_face_model_path: str | Path | None = None
    cvlface_aligner_model_path: str | Path | None = None
    debug_source_face_path: str | Path | None = None  # written only when set
    debug_target_face_path: str | Path | None = None


@dataclass(frozen=True)
class EmbeddingDistance:
    """The distance and what it was computed from."""

    distance: float  # 1 − cosine similarity, in [0, 2]
    source_face: np.ndarray  # source_crop_size² ×3 uint8 BGR
    target_face: np.ndarray
    source_embedding: torch.Tensor  # [1, 512]
    target_embedding: torch.Tensor


def cosine_distance(first: torch.Tensor, second: torch.Tensor) -> float:
    """``1 − cos(first, second)`` of two ``[1, D]`` embeddings (normalised or not)."""
    return float(1.0 - F.cosine_similarity(first.float(), second.float(), dim=1)[0])


def _aligned_crop(image: np.ndarray, keypoints: np.ndarray, side: EmbeddingSide, cvlface_aligner) -> np.ndarray:
    from utils.align import align_face

    try:
        face, _ = align_face(image, keypoints, side.align_mode, side.crop_size, cvlface_aligner=cvlface_aligner)
    except (ValueError, AssertionError) as error:
        raise GhostError(f"cannot align at {side.crop_size} pixels with {side.align_mode}: {error}") from None
    return face


def measure_embedding_distance(options: EmbeddingDistanceOptions) -> EmbeddingDistance:
    """Detect the best face of the photo, crop it twice, embed both crops and compare them.

    The same model object serves both sides when they name the same model (and file).
    """
    from models.embeddings import load_face_embedder
    from models.registry import load_model
    from models.retinaface import best_face, load_face_detector
    from utils.align import check_align_mode

    for side in (options.source, options.target):
        check_align_mode(side.align_mode)
    for path in (options.debug_source_face_path, options.debug_target_face_path):
        if path is not None:
            check_output_file(path)
    image = read_image(options.source_image_path)
    device = resolve_device(options.device)
    # No max_size: the original embedding_distance.py detects the photo at its own size (faces/README.md §1.3).
    detector = load_face_detector(device=device, path=options.retina_face_model_path, weights_dir=options.weights_dir,
                                  threshold=options.detection_threshold, max_size=None)
    with torch.inference_mode():
        face = best_face(detector.detect(image, in_score_order=True))
        if face is None:
            raise NoFaceFoundError(f"no face found in {options.source_image_path} "
                                   f"(detection threshold {options.detection_threshold})")
        keypoints = face.keypoints
        cvlface_aligner = None
        if "cvlface" in (options.source.align_mode, options.target.align_mode):
            cvlface_aligner = load_model("cvlface_aligner", device=device, path=options.cvlface_aligner_model_path,
                                         weights_dir=options.weights_dir)
        embedders: dict[tuple, torch.nn.Module] = {}
        crops, embeddings = [], []
        for side in (options.source, options.target):
            key = (side.face_embeddings, side.model_path)
            if key not in embedders:
                embedders[key] = load_face_embedder(side.face_embeddings, device=device, path=side.model_path,
                                                    weights_dir=options.weights_dir)
            crop = _aligned_crop(image, keypoints, side, cvlface_aligner)
            crops.append(crop)
            embeddings.append(embedders[key](bgr_to_tensor(crop).to(device)).float().cpu())
    for path, crop in ((options.debug_source_face_path, crops[0]), (options.debug_target_face_path, crops[1])):
        if path is not None:
            write_image(path, crop, protect=(options.source_image_path,))
            logger.info("debug: wrote %s", path)
    return EmbeddingDistance(cosine_distance(*embeddings), crops[0], crops[1], embeddings[0], embeddings[1])
