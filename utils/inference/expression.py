"""The expression restorer: LivePortrait moves the swapped face's expression back toward the target's.

A generator keeps the target's pose but not always its expression (a half-open mouth closes, a frown fades). Per
face, LivePortrait's motion extractor reads the 21 implicit keypoints of the swapped face (pose, scale,
translation, canonical keypoints ``kp``, expression deltas ``exp``) and the expression deltas of the target; the
swapped face's expression is moved toward the target's by ``factor`` on the keypoints of the chosen areas
(``upper``: brows and eyes, ``lower``: lips, mouth and jaw), and the appearance feature extractor, the warping
network and the SPADE generator re-render the swapped face with those keypoints. Pose, scale and translation stay
the swapped face's, so only the expression moves. Faces are ``S×S×3 uint8 BGR`` aligned crops (the generator's
256 px, or a pixel-boost crop); LivePortrait sees them at 256 and renders at 512, resized back to S.

Videos smooth the target's expression along each face track with :class:`ExpressionSmoother` (causal: it only
looks back) and pass it to the restorer as ``target_expressions``.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from utils.device import autocast
from utils.errors import GhostError
from utils.inference.model_cache import ModelCache

# LivePortrait keypoint indices by face area: the brow keypoints its eyebrow edit moves (1, 2) and its "eyes"
# animation region (11, 13, 15, 16, 18); its "lip" animation region (6, 12, 14, 17, 19, 20) and the cheek points
# its smile edit moves (3, 7). The other keypoints (head outline, nose) keep the swapped face's values.
EXPRESSION_AREAS: dict[str, tuple[int, ...]] = {
    "upper": (1, 2, 11, 13, 15, 16, 18),
    "lower": (3, 6, 7, 12, 14, 17, 19, 20),
}
LIVEPORTRAIT_INPUT_SIZE = 256
# The four networks the restorer runs, by role (registry checkpoint names; --*_model_path flags may override them).
CHECKPOINTS = {
    "motion": "liveportrait_motion_extractor",
    "appearance": "liveportrait_appearance_feature_extractor",
    "warping": "liveportrait_warping_module",
    "generator": "liveportrait_spade_generator",
}


@dataclass(frozen=True)
class ExpressionOptions:
    """``--expression_restorer_*``: how far (0..100 %) the swapped face's expression moves toward the target's, on
    which areas, and how much a video smooths the target's expression along its track (0: not at all).

    The default factor 0 runs nothing and loads nothing: the output is today's, byte for byte.
    """

    expression_restorer_factor: float = 0.0
    expression_restorer_areas: tuple[str, ...] = ("upper", "lower")
    expression_restorer_smoothing: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "expression_restorer_areas", tuple(dict.fromkeys(self.expression_restorer_areas)))
        if not 0.0 <= self.expression_restorer_factor <= 100.0:
            raise GhostError(f"--expression_restorer_factor must be between 0 and 100 (got "
                             f"{self.expression_restorer_factor:g})")
        check_areas(self.expression_restorer_areas)
        if not 0.0 <= self.expression_restorer_smoothing < 1.0:
            raise GhostError(f"--expression_restorer_smoothing must be at least 0 and below 1 (got "
                             f"{self.expression_restorer_smoothing:g})")

    @property
    def restores_expression(self) -> bool:
        return self.expression_restorer_factor > 0


def check_areas(areas: Sequence[str]) -> None:
    """Raise GhostError (one line listing the valid names) for an empty or unknown area list."""
    unknown = [name for name in areas if name not in EXPRESSION_AREAS]
    if unknown or not areas:
        raise GhostError(f"unknown --expression_restorer_areas {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(EXPRESSION_AREAS)}")


def area_keypoints(areas: Sequence[str]) -> list[int]:
    """The sorted keypoint indices of ``areas``."""
    check_areas(areas)
    return sorted({index for name in areas for index in EXPRESSION_AREAS[name]})


def blend_expression(expression: torch.Tensor, target_expression: torch.Tensor, factor: float,
                     areas: Sequence[str]) -> torch.Tensor:
    """``expression`` moved by ``factor`` (0..100) toward ``target_expression`` on the keypoints of ``areas``.

    Both ``B×21×3``. At 100 the chosen keypoints are the target's exactly; the others are never changed.
    """
    blended = expression.clone()
    rows = area_keypoints(areas)
    weight = factor / 100.0
    if weight == 1.0:
        blended[:, rows] = target_expression[:, rows]
    else:
        blended[:, rows] = expression[:, rows] + weight * (target_expression[:, rows] - expression[:, rows])
    return blended


def posed_keypoints(info: Mapping[str, torch.Tensor], expression: torch.Tensor) -> torch.Tensor:
    """LivePortrait's posed keypoints ``B×21×3``: scale · (kp @ R + expression), then + (tx, ty) on x and y."""
    from models.liveportrait.camera import transform_keypoint

    return transform_keypoint({**info, "exp": expression})


def _to_network(faces: Sequence[np.ndarray]) -> torch.Tensor:
    """``S×S×3 uint8 BGR`` faces → ``B×3×256×256 float32 RGB in [0, 1]`` (LivePortrait's input)."""
    from models.liveportrait.crop import prepare_source

    return torch.cat([prepare_source(np.ascontiguousarray(face[:, :, ::-1])) for face in faces])


class ExpressionRestorer:
    """A batched stage: ``restorer(swapped_faces, target_faces, factor, areas)`` → restored faces.

    The four LivePortrait networks load through ``models.registry.load_model`` on first use, once (kept in
    ``models``, a ModelCache shared with the rest of the pipeline, under the same keys as the evaluation's).
    ``paths`` maps registry names (``CHECKPOINTS``) to explicit files; ``fp16`` runs the networks under float16
    autocast (CUDA only, as LivePortrait does).
    """

    def __init__(self, device: torch.device | str = "cpu", weights_dir: str | Path | None = None,
                 paths: Mapping[str, str | None] | None = None, fp16: bool = False,
                 models: ModelCache | None = None) -> None:
        self.device = torch.device(device)
        self.weights_dir = weights_dir
        self.paths = dict(paths or {})
        self.fp16 = fp16
        self.models = models or ModelCache()

    def network(self, role: str) -> torch.nn.Module:
        """The LivePortrait network of ``role`` (a key of ``CHECKPOINTS``), loaded on first use."""
        from models.registry import load_model

        name = CHECKPOINTS[role]
        path = self.paths.get(name)
        return self.models.get((name, path, self.weights_dir), lambda: load_model(
            name, device=self.device, path=path, weights_dir=self.weights_dir))

    def load(self) -> None:
        """Load the four networks now (otherwise they load at the first restoration)."""
        for role in CHECKPOINTS:
            self.network(role)

    def loaded_networks(self) -> list[torch.nn.Module]:
        """The networks already in memory (whose weight pages a caller may hand back)."""
        keys = [(name, self.paths.get(name), self.weights_dir) for name in CHECKPOINTS.values()]
        return [self.models.get(key, lambda: None) for key in keys if key in self.models]

    @torch.inference_mode()
    def motion(self, faces: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        """LivePortrait's motion of ``S×S×3 uint8 BGR`` faces: pitch/yaw/roll (degrees ``B×1``), t ``B×3``,
        scale ``B×1``, kp and exp ``B×21×3`` (float32, on the device)."""
        from models.liveportrait.motion import refine_kp_info

        with autocast(self.device, self.fp16):
            raw = self.network("motion")(_to_network(faces).to(self.device))
        return {key: value.float() for key, value in refine_kp_info(raw).items()}

    def target_expressions(self, target_faces: Sequence[np.ndarray]) -> torch.Tensor:
        """The expression deltas ``B×21×3`` of the target faces (what a video smooths along its tracks)."""
        return self.motion(target_faces)["exp"]

    @torch.inference_mode()
    def keypoints(self, swapped_faces: Sequence[np.ndarray], target_faces: Sequence[np.ndarray] | None, factor: float,
                  areas: Sequence[str], target_expressions: torch.Tensor | None = None
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The swapped faces' motion, and their source and driving keypoints (``B×21×3`` each).

        The driving keypoints carry the expression blended toward the targets' (``target_expressions``, else
        measured on ``target_faces``); everything else is the swapped face's own.
        """
        if target_expressions is None:
            if target_faces is None:
                raise ValueError("the expression restorer needs the target faces or their expressions")
            both = self.motion([*swapped_faces, *target_faces])
            count = len(swapped_faces)
            info = {key: value[:count] for key, value in both.items()}
            target_expressions = both["exp"][count:]
        else:
            info = self.motion(swapped_faces)
        expression = blend_expression(info["exp"], target_expressions.to(info["exp"]), factor, areas)
        return info, posed_keypoints(info, info["exp"]), posed_keypoints(info, expression)

    @torch.inference_mode()
    def render(self, faces: Sequence[np.ndarray], source_keypoints: torch.Tensor, driving_keypoints: torch.Tensor
               ) -> list[np.ndarray]:
        """Re-render ``S×S×3 uint8 BGR`` faces moved from their source to their driving keypoints (same size)."""
        from models.liveportrait.crop import parse_output

        with autocast(self.device, self.fp16):
            features = self.network("appearance")(_to_network(faces).to(self.device))
            warped = self.network("warping")(features, kp_driving=driving_keypoints, kp_source=source_keypoints)
            logits = self.network("generator").logits(warped["out"]).float()
        rendered = parse_output(torch.sigmoid(logits))  # B×512×512×3 uint8 RGB
        restored = []
        for face, image in zip(faces, rendered):
            size = face.shape[0]
            interpolation = cv2.INTER_AREA if size < image.shape[0] else cv2.INTER_LINEAR
            resized = cv2.resize(image, (size, size), interpolation=interpolation)
            restored.append(np.ascontiguousarray(resized[:, :, ::-1]))  # RGB → BGR
        return restored

    def __call__(self, swapped_faces: Sequence[np.ndarray], target_faces: Sequence[np.ndarray] | None, factor: float,
                 areas: Sequence[str] = ("upper", "lower"), *, target_expressions: torch.Tensor | None = None
                 ) -> list[np.ndarray]:
        """Restore the targets' expression on a batch of swapped faces (``S×S×3 uint8 BGR``, aligned as the
        targets). ``factor`` 0..100; 0 returns the very input arrays and loads nothing."""
        check_areas(areas)
        if factor == 0 or not swapped_faces:
            return list(swapped_faces)
        _, source, driving = self.keypoints(swapped_faces, target_faces, factor, areas, target_expressions)
        return self.render(swapped_faces, source, driving)


class ExpressionSmoother:
    """A causal moving average of the target's expression per face track (videos).

    ``smoothed = weight · previous smoothed + (1 − weight) · measured``, started at the first measurement of a
    track; ``weight`` 0 passes the measurements through. It never waits for later frames.
    """

    def __init__(self, weight: float = 0.5) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
        self.weight = weight
        self._state: dict[Hashable, torch.Tensor] = {}

    def __call__(self, tracks: Sequence[Hashable], expressions: torch.Tensor) -> torch.Tensor:
        """Smoothed ``B×21×3`` expressions of the faces of one step (``tracks``: one id per row)."""
        smoothed = []
        for track, expression in zip(tracks, expressions):
            previous = self._state.get(track)
            value = expression if previous is None else self.weight * previous + (1 - self.weight) * expression
            self._state[track] = value
            smoothed.append(value)
        return torch.stack(smoothed) if smoothed else expressions

    def keep_only(self, tracks: Sequence[Hashable]) -> None:
        """Forget the tracks not in ``tracks`` (ended ones), so memory stays flat over a long video."""
        live = set(tracks)
        for track in [track for track in self._state if track not in live]:
            del self._state[track]
