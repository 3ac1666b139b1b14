"""The face-quality steps of the frame pipeline, per batch of faces: pixel boost around the generator, the
expression restorer after it (smoothed along each face track), and the masks of the paste-back.

With the default options every step is a pass-through: the generator sees today's 256 px crops, nothing is
restored, no mask is made, so the output is today's byte for byte. The pipeline calls, per batch:
``crops = target_crops(targets)`` → ``generate(crops, identities)`` → ``restore(swapped, crops, tracks)`` →
(GFPGAN) → ``masks(finals, crops)``; the paste-back and edge inpainting then use the :class:`FaceMasks` of each face.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from utils.face_masks import crop_face_mask, kept_target_pixels, protection_mask
from utils.inference.expression import ExpressionSmoother
from utils.inference.pixel_boost import boosted_crop, pixel_boost, scaled_matrix

if TYPE_CHECKING:
    from utils.inference.stages import FaceInImage
    from utils.inference.swap import FaceSwapper


@dataclass
class FaceMasks:
    """What the face options add to one face's paste-back, all in the ``S×S`` crop of the swapped face."""

    target_face: np.ndarray  # S×S×3 uint8 BGR: the target's crop (mode none blends with it)
    face_mask: np.ndarray | None  # S×S float32 in [0, 1]: multiplies the paste-back's alpha (None: no mask)
    protection: np.ndarray | None  # S×S float32: 0 where the target must stay in front (occluder, mouth)


class FaceQuality:
    """The face-quality steps of one frame pipeline (one instance per stream, so a video smooths per track)."""

    def __init__(self, swapper: FaceSwapper) -> None:
        self.swapper = swapper
        self.options = swapper.options
        self.smoother = ExpressionSmoother(self.options.expression_restorer_smoothing)

    @property
    def size(self) -> int:
        """The side of the faces the generator returns (``--pixel_boost``)."""
        return self.options.pixel_boost

    def target_crops(self, targets: Sequence[FaceInImage]) -> list[np.ndarray]:
        """The target faces at the ``--pixel_boost`` size (the 256 px crops themselves at 256)."""
        return [boosted_crop(target.image, target.matrix, self.size, self.options.align_mode, target.face)
                for target in targets]

    def generate(self, crops: list[np.ndarray], identities: torch.Tensor) -> list[np.ndarray]:
        """The generator on the crops (on their sub-pixel tiles with pixel boost), one batch."""
        return pixel_boost(self.swapper.stages.generate, crops, identities, self.size)

    def restore(self, swapped: list[np.ndarray], crops: list[np.ndarray], tracks: Sequence[int]) -> list[np.ndarray]:
        """The swapped faces with the targets' expression restored (the inputs themselves when it is off).

        The targets' expressions are smoothed along their tracks first (causal; a photo is a one-frame track).
        """
        options = self.options
        if not options.restores_expression or not swapped:
            return swapped
        restorer = self.swapper.expression_restorer
        with self.swapper._stage("expression"):
            expressions = self.smoother(list(tracks), restorer.target_expressions(crops))
            self.smoother.keep_only(list(tracks))
            restored = restorer(swapped, crops, options.expression_restorer_factor,
                                options.expression_restorer_areas, target_expressions=expressions)
        self.swapper.release_networks(restorer.loaded_networks())
        return restored

    def parse(self, finals: list[np.ndarray], crops: list[np.ndarray]
              ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """BiSeNet labels of the swapped faces (paste-back mode, region mask) and of the target crops (occlusion,
        mouth), in one parser batch; None where not needed."""
        options = self.options
        none: list[np.ndarray | None] = [None] * len(finals)
        wanted = (finals if options.parses_swapped_face else []) + (crops if options.needs_target_labels else [])
        labels = self.swapper.stages.parse(wanted)
        face_labels = labels[:len(finals)] if options.parses_swapped_face else none
        target_labels = labels[-len(crops):] if options.needs_target_labels and crops else none
        return face_labels, target_labels

    def masks(self, crops: list[np.ndarray], face_labels: Sequence[np.ndarray | None],
              target_labels: Sequence[np.ndarray | None]) -> list[FaceMasks | None]:
        """Each face's :class:`FaceMasks`, or None when the options add no mask."""
        options = self.options
        if not options.adds_face_mask:
            return [None] * len(crops)
        return [FaceMasks(crop, crop_face_mask(options, crop.shape[0], face_labels=face, target_labels=target),
                          protection_mask(options, crop.shape[0], target))
                for crop, face, target in zip(crops, face_labels, target_labels)]


def finish_keeping_target(finish: Callable[[np.ndarray, np.ndarray], np.ndarray], image: np.ndarray,
                          mask: np.ndarray, masks: FaceMasks | None, target: FaceInImage) -> np.ndarray:
    """``finish(image, mask)`` (edge inpainting), except on the pixels the face masks gave back to the target
    (occluders, the kept mouth), which keep their value: inpainting must not paint over what covers the face."""
    finished = finish(image, mask)
    if masks is None or masks.protection is None:
        return finished
    kept = kept_target_pixels(masks.protection, scaled_matrix(target.matrix, masks.protection.shape[0]), image.shape)
    finished = finished.copy()
    finished[kept] = image[kept]
    return finished
