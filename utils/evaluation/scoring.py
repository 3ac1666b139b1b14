"""Scoring one swapped frame: measure the source, target and swapped faces, then compute every metric.

Every face is re-aligned with one fixed template (``EVAL_ALIGN_MODE``) whatever the generator's own align mode,
so that generators are compared on the same crops. The swapped face is cut with the *target's* geometry (its
detection, alignment matrix and 68 landmarks) whenever the swapped image has the target's size, as a pasted
result has: the crops then differ only by what the generator changed, and the target scored as its own swap
gives exactly 0 pose, expression and eye error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from utils.align import DEFAULT_ALIGN_MODE, align_face
from utils.evaluation import metrics
from utils.evaluation.measures import FaceMeasures
from utils.evaluation.options import METRIC_MODELS, METRIC_NAMES
from utils.image import bgr_to_tensor, tensor_to_uint8_truncated

EVAL_ALIGN_MODE = DEFAULT_ALIGN_MODE
EVAL_CROP_SIZE = 256
RETRIEVED, MISSED = 100.0, 0.0  # id_retrieval per frame, so that its mean is a percentage


@dataclass
class FaceGeometry:
    """Where a face is in its image: detection box ``(4,)``, five keypoints ``(5, 2)``, 68 landmarks or None."""

    box: np.ndarray
    keypoints: np.ndarray
    landmarks_68: np.ndarray | None = None  # image pixels; measured on first need


@dataclass
class MeasuredFace:
    """A face cut with the evaluation template and what the models said about it (None: not measured)."""

    crop: np.ndarray  # 256×256×3 uint8 BGR
    matrix: np.ndarray  # 2×3 float64, image → crop
    embedding: torch.Tensor | None = None  # (512,)
    angles: torch.Tensor | None = None  # (3,) pitch, yaw, roll in degrees
    expression: torch.Tensor | None = None  # (21, 3)
    eyes: torch.Tensor | None = None  # (4,) 256-pixel coordinates of the two eye points


@dataclass
class Gallery:
    """Every source of a run for id_retrieval: embeddings ``[M, 512]`` and an identity label per source ``[M]``."""

    embeddings: torch.Tensor
    identities: torch.Tensor


class FrameScorer:
    """Measures faces and scores frames with the metrics asked for whose models are available."""

    def __init__(self, measures: FaceMeasures, metric_names: tuple[str, ...] = METRIC_NAMES) -> None:
        self.measures = measures
        groups = sorted({METRIC_MODELS[name] for name in metric_names if name in METRIC_MODELS})
        self.missing_groups = measures.unavailable(groups)
        self.unavailable = {name: self.missing_groups[METRIC_MODELS[name]] for name in metric_names
                            if METRIC_MODELS.get(name) in self.missing_groups}
        self.metric_names = tuple(name for name in metric_names if name not in self.unavailable)
        active = {METRIC_MODELS[name] for name in self.metric_names if name in METRIC_MODELS}
        self.uses_identity, self.uses_motion, self.uses_eyes = ("identity" in active, "motion" in active,
                                                                 "eyes" in active)

    # ------------------------------------------------------------------------------------------------ measuring

    @staticmethod
    def cut(image: np.ndarray, geometry: FaceGeometry) -> MeasuredFace:
        """The evaluation crop of the face at ``geometry`` in an ``H×W×3 uint8 BGR`` image."""
        crop, matrix = align_face(image, geometry.keypoints, EVAL_ALIGN_MODE, EVAL_CROP_SIZE)
        return MeasuredFace(crop=crop, matrix=matrix)

    def measure_source(self, image: np.ndarray, geometry: FaceGeometry) -> MeasuredFace:
        """The source's evaluation crop and (when identity is scored) its embedding."""
        face = self.cut(image, geometry)
        if self.uses_identity:
            face.embedding = self.measures.embed(bgr_to_tensor(face.crop))[0]
        return face

    def measure_pair(self, target_image: np.ndarray, target_geometry: FaceGeometry, swapped_image: np.ndarray,
                     swapped_geometry: FaceGeometry | None = None) -> tuple[MeasuredFace, MeasuredFace]:
        """Measure the target face and the swapped face (cut with ``swapped_geometry``, default the target's)."""
        swapped_geometry = swapped_geometry or target_geometry
        target, swapped = self.cut(target_image, target_geometry), self.cut(swapped_image, swapped_geometry)
        faces = torch.cat([bgr_to_tensor(target.crop), bgr_to_tensor(swapped.crop)])
        if self.uses_identity:
            swapped.embedding = self.measures.embed(faces[1:])[0]
        if self.uses_motion:
            crops = [self.measures.motion_crop(image, self._landmarks(image, geometry))
                     for image, geometry in ((target_image, target_geometry), (swapped_image, swapped_geometry))]
            angles, expressions = self.measures.head_motion(crops)
            target.angles, swapped.angles = angles
            target.expression, swapped.expression = expressions
        if self.uses_eyes:
            target.eyes, swapped.eyes = self.measures.eye_points(faces)
        return target, swapped

    def _landmarks(self, image: np.ndarray, geometry: FaceGeometry) -> np.ndarray:
        if geometry.landmarks_68 is None:
            geometry.landmarks_68 = self.measures.landmarks_68(image, geometry.box)
        return geometry.landmarks_68

    # ------------------------------------------------------------------------------------------------ scoring

    def score(self, source: MeasuredFace, target: MeasuredFace, swapped: MeasuredFace,
              gallery: Gallery | None = None, source_row: int | None = None) -> dict[str, float]:
        """Every per-face metric of one frame (NaN where not measured).

        ``gallery``: every source of the run, ``source_row`` this source's row in it (for id_retrieval).
        """
        values = dict.fromkeys(METRIC_NAMES, math.nan)
        wanted = set(self.metric_names)
        if self.uses_identity and "id_similarity" in wanted:
            values["id_similarity"] = float(metrics.cosine_similarity(swapped.embedding[None], source.embedding[None])[0])
        if self.uses_identity and "id_retrieval" in wanted and gallery is not None and source_row is not None:
            hit = metrics.identity_retrieval(swapped.embedding[None], gallery.embeddings, torch.tensor([source_row]),
                                             gallery.identities)[0]
            values["id_retrieval"] = RETRIEVED if bool(hit) else MISSED
        if self.uses_motion:
            if "pose_error" in wanted:
                values["pose_error"] = float(metrics.pose_error(swapped.angles[None], target.angles[None])[0])
            if "expression_error" in wanted:
                values["expression_error"] = float(
                    metrics.expression_error(swapped.expression[None], target.expression[None])[0])
        if self.uses_eyes and "eye_error" in wanted:
            values["eye_error"] = float(metrics.eye_error(swapped.eyes[None], target.eyes[None])[0])
        return values

    @torch.no_grad()
    def score_aligned(self, sources: torch.Tensor, source_rows: torch.Tensor, targets: torch.Tensor,
                      swapped: torch.Tensor) -> dict[str, torch.Tensor]:
        """The per-face metrics of a batch of already aligned faces (the training validation's input).

        ``sources`` ``[M, 3, 256, 256]``: the distinct source faces (the retrieval gallery); ``source_rows``
        ``[N]``: each pair's source row; ``targets``, ``swapped`` ``[N, 3, 256, 256]``; all RGB in [-1, 1].
        LivePortrait sees the aligned faces as they are (tighter than its own crop). Returns
        ``{metric: [N] float32}`` for the asked metrics whose models are available.
        """
        values: dict[str, torch.Tensor] = {}
        wanted = set(self.metric_names)
        source_rows = source_rows.cpu()
        if self.uses_identity:
            swapped_embeddings, gallery = self.measures.embed(swapped), self.measures.embed(sources)
            if "id_similarity" in wanted:
                values["id_similarity"] = metrics.cosine_similarity(swapped_embeddings, gallery[source_rows])
            if "id_retrieval" in wanted:
                hits = metrics.identity_retrieval(swapped_embeddings, gallery, source_rows)
                values["id_retrieval"] = hits.float() * RETRIEVED
        if self.uses_motion:
            crops = [tensor_to_uint8_truncated(face) for face in torch.cat([targets, swapped]).cpu()]
            angles, expressions = self.measures.head_motion(crops)
            count = targets.shape[0]
            if "pose_error" in wanted:
                values["pose_error"] = metrics.pose_error(angles[count:], angles[:count])
            if "expression_error" in wanted:
                values["expression_error"] = metrics.expression_error(expressions[count:], expressions[:count])
        if self.uses_eyes and "eye_error" in wanted:
            eyes = self.measures.eye_points(torch.cat([targets, swapped]))
            values["eye_error"] = metrics.eye_error(eyes[targets.shape[0]:], eyes[:targets.shape[0]])
        return values

    def outside_change(self, target_image: np.ndarray, swapped_image: np.ndarray, target: MeasuredFace) -> float:
        """``outside_face_change`` of a result with the target's size (NaN for another size or when not asked)."""
        if "outside_face_change" not in self.metric_names or swapped_image.shape != target_image.shape:
            return math.nan
        outside = metrics.outside_face(target.matrix, EVAL_CROP_SIZE, target_image.shape)
        return metrics.outside_face_change(swapped_image, target_image, outside)
