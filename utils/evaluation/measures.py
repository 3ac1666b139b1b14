"""The models the evaluation measures faces with, each loaded on first use, and what they measure.

Three groups, each loaded only when a requested metric needs it (utils/evaluation/options.py METRIC_MODELS):

* ``identity``: a recognition model (models/embeddings.py) on 256×256 aligned faces;
* ``motion``: LivePortrait's motion extractor (head pose in degrees, expression deltas) on LivePortrait's own
  face crop, which is cut around the 68 FAN landmarks exactly as the preprocessing's do_crop mode does;
* ``eyes``: the AdaptiveWingLoss FAN of the training eye loss, on 256×256 aligned faces (its eye points 96/97).

A group whose weights are missing is reported by :meth:`FaceMeasures.unavailable` (the message names the
download script) and its metrics are skipped; the others still run.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from utils.errors import WeightsNotFoundError
from utils.inference.model_cache import ModelCache

logger = logging.getLogger(__name__)

GROUPS = ("identity", "motion", "eyes")


class FaceMeasures:
    """Lazily loaded evaluation models on one device (float32), sharing a ModelCache with the swapper.

    ``paths`` maps registry checkpoint names (an embedding model's name, ``liveportrait_motion_extractor``,
    ``adaptive_wing_fan``, ``face_alignment``) to explicit files; others resolve under ``weights_dir``.
    """

    def __init__(self, face_embeddings: str, device: torch.device, weights_dir: str | Path | None = None,
                 paths: dict[str, str | None] | None = None, models: ModelCache | None = None) -> None:
        self.face_embeddings = face_embeddings
        self.device = device
        self.weights_dir = weights_dir
        self.paths = dict(paths or {})
        self.models = models or ModelCache()
        self._unavailable: dict[str, str] = {}

    def _get(self, name: str, load: Callable[[str | None], Any]) -> Any:
        # Keys match FaceSwapper's (name, path, weights_dir), so a model both need is loaded once.
        path = self.paths.get(name)
        return self.models.get((name, path, self.weights_dir), lambda: load(path))

    def _registry_model(self, name: str) -> torch.nn.Module:
        from models.registry import load_model

        return self._get(name, lambda path: load_model(name, device=self.device, path=path,
                                                       weights_dir=self.weights_dir))

    @property
    def embedder(self) -> torch.nn.Module:
        """The evaluation's ``FaceEmbedder`` (``face_embeddings``)."""
        from models.embeddings import load_face_embedder

        return self._get(self.face_embeddings, lambda path: load_face_embedder(
            self.face_embeddings, device=self.device, path=path, weights_dir=self.weights_dir))

    @property
    def motion_extractor(self) -> torch.nn.Module:
        """LivePortrait's motion extractor M."""
        return self._registry_model("liveportrait_motion_extractor")

    @property
    def eye_detector(self) -> torch.nn.Module:
        """The AdaptiveWingLoss FAN (98 WFLW landmarks)."""
        return self._registry_model("adaptive_wing_fan")

    @property
    def landmark_detector(self) -> Any:
        """The 68-point FAN (``models.fan_landmarks.LandmarkDetector``) that places LivePortrait's crop."""
        from models.fan_landmarks import load_landmark_detector

        return self._get("face_alignment", lambda path: load_landmark_detector(
            device=self.device, path=path, weights_dir=self.weights_dir))

    def _load_group(self, group: str) -> None:
        if group == "identity":
            _ = self.embedder
        elif group == "motion":
            _ = self.motion_extractor, self.landmark_detector
        elif group == "eyes":
            _ = self.eye_detector
        else:
            raise ValueError(f"unknown model group {group!r}; expected one of {', '.join(GROUPS)}")

    def unavailable(self, groups: Iterable[str]) -> dict[str, str]:
        """Load ``groups`` now; ``{group: message}`` for those whose weights are missing (logged once each)."""
        for group in groups:
            if group in self._unavailable:
                continue
            try:
                self._load_group(group)
            except WeightsNotFoundError as error:
                self._unavailable[group] = str(error)
                logger.warning("%s metrics skipped: %s", group, error)
        return {group: message for group, message in self._unavailable.items() if group in set(groups)}

    # ------------------------------------------------------------------------------------------------ measuring

    @torch.inference_mode()
    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        """Identity embeddings: aligned faces ``[N, 3, 256, 256]`` RGB in [-1, 1] → ``[N, 512]`` float32 (CPU)."""
        return self.embedder(faces.to(self.device)).float().cpu()

    def motion_crop(self, image_bgr: np.ndarray, landmarks_68: np.ndarray) -> np.ndarray:
        """LivePortrait's ``256×256×3 uint8 RGB`` input for the face at ``landmarks_68`` (``68×2``, image pixels)."""
        from models.liveportrait.crop import crop_source_image

        image_rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
        _, crop_256 = crop_source_image(image_rgb, np.asarray(landmarks_68, np.float32))
        return crop_256

    def landmarks_68(self, image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The 68 FAN landmarks ``68×2`` (image pixels) of the face in ``box`` of an ``H×W×3 uint8 BGR`` image."""
        with torch.inference_mode():
            return self.landmark_detector.get_landmarks(image_bgr, box)

    @torch.inference_mode()
    def head_motion(self, crops_rgb: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Head pose and expression of LivePortrait crops (``256×256×3 uint8 RGB`` each).

        Returns angles ``[N, 3]`` (pitch, yaw, roll in degrees) and expression deltas ``[N, 21, 3]`` (CPU).
        """
        from models.liveportrait.crop import prepare_source
        from models.liveportrait.motion import refine_kp_info

        batch = torch.cat([prepare_source(crop) for crop in crops_rgb]).to(self.device)
        info = refine_kp_info(self.motion_extractor(batch))
        angles = torch.cat([info[name].float() for name in ("pitch", "yaw", "roll")], dim=1)
        return angles.cpu(), info["exp"].float().cpu()

    @torch.inference_mode()
    def eye_points(self, faces: torch.Tensor) -> torch.Tensor:
        """The eye-loss eye points: aligned faces ``[N, 3, 256, 256]`` RGB [-1, 1] → ``[N, 4]`` 256-pixel (x, y)×2."""
        from models.adaptive_wing import detect_landmarks

        eyes, _, _, _ = detect_landmarks(faces.to(self.device), self.eye_detector)
        return eyes.float().cpu()
