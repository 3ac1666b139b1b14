"""What the page asks of the swap pipeline: the faces of a picture to pick from, and one swap job.

One :class:`SwapService` per running page holds the start-up options and one ModelCache, so each model loads
once (for the option set that first needs it) and stays loaded between requests; every job builds its
FaceSwapper from the start-up options plus the advanced panel's changes. Gradio's queue runs one job at a time
(see utils/webui/layout.py); this module never imports Gradio.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from utils.errors import GhostError, NoFaceFoundError
from utils.image import read_image, write_image
from utils.inference.model_cache import ModelCache
from utils.inference.options import SwapOptions
from utils.inference.swap import FaceSwapper
from utils.webui.settings import WebUISettings
from utils.webui.workspace import Workspace

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 112  # long side of a face thumbnail, pixels
THUMBNAIL_MARGIN = 0.25  # the face box grown by this fraction of its size on each side
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


@dataclass(frozen=True)
class FaceChoice:
    """One detected face offered in the page: its CLI index (left to right) and a thumbnail file."""

    index: int
    thumbnail: Path
    score: float


@dataclass(frozen=True)
class SwapOutcome:
    """A finished job: the result file and, for a photo, its size."""

    output_path: Path
    kind: str  # "image" or "video"
    width: int
    height: int


class SwapService:
    """The swap pipeline behind the page: start-up options, loaded models, the page's folder."""

    def __init__(self, options: SwapOptions, settings: WebUISettings, workspace: Workspace,
                 models: ModelCache | None = None) -> None:
        self.options = options
        self.settings = settings
        self.workspace = workspace
        self.models = models or ModelCache()

    def swapper(self, changes: Mapping[str, Any]) -> FaceSwapper:
        """A swapper with the start-up options plus ``changes`` (the advanced panel), sharing the loaded models."""
        try:
            return FaceSwapper(replace(self.options, **changes), self.models)
        except ValueError as error:  # an option value the pipeline does not know
            raise GhostError(str(error)) from error

    def faces(self, image_path: str | Path, changes: Mapping[str, Any], role: str) -> list[FaceChoice]:
        """The best-scoring faces of a photo (at most ``max_faces_shown``), in CLI order, with thumbnails.

        Raises ImageReadError for a file that is not an image, NoFaceFoundError when none is found.
        """
        image_path = Path(image_path)
        refuse_video(image_path, role)
        image = read_image(image_path)
        swapper = self.swapper(changes)
        detections = swapper.detections(image)
        if not detections:
            raise NoFaceFoundError(
                f"no face found in the {role} {image_path.name} (detection threshold "
                f"{swapper.options.detection_threshold}); try a lower detection threshold or another picture"
            )
        best = sorted(range(len(detections)), key=lambda index: -float(detections[index].score))
        shown = sorted(best[: self.settings.max_faces_shown])
        folder = self.workspace.new_folder(self.workspace.faces)
        return [
            FaceChoice(index, write_image(folder / f"face_{index}.png", face_thumbnail(image, detections[index].box)),
                       float(detections[index].score))
            for index in shown
        ]

    def swap(self, source_paths: Sequence[str | Path], source_choice: tuple[int, int], target_path: str | Path,
             target_faces: Sequence[int], changes: Mapping[str, Any]) -> SwapOutcome:
        """Swap source photo ``source_choice[0]``'s face ``source_choice[1]`` onto the chosen target face.

        Writes the result into the page's folder; raises our GhostErrors (NSFW verdict, no face, unreadable
        file, ...) with a message for the user.
        """
        if not source_paths:
            raise GhostError("add at least one source photo (the face to put in)")
        target_path = Path(target_path)
        refuse_video(target_path, "target")
        # TODO(video branch): several target faces and video targets go through utils.inference.run.swap_media.
        if len(target_faces) != 1:
            raise GhostError("swapping several target faces at once is not available yet: pick one target face")
        photo, source_face = source_choice
        if not 0 <= photo < len(source_paths):
            raise GhostError(f"source photo {photo} is gone; pick a source face again")
        swapper = self.swapper({**changes, "source_face_index": source_face, "target_face_index": target_faces[0]})
        result = swapper.swap_images(read_image(source_paths[photo]), read_image(target_path))
        output_path = write_image(self.workspace.result_path(target_path, ".png"), result.image)
        logger.info("swapped %s into %s in %.1f s", Path(source_paths[photo]).name, target_path.name,
                    sum(result.timings.values()))
        return SwapOutcome(output_path, "image", result.image.shape[1], result.image.shape[0])


def refuse_video(path: Path, role: str) -> None:
    """Video files cannot be swapped by this build yet (they wait for the video pipeline)."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise GhostError(f"the {role} {path.name} is a video; video swapping is not available in this build yet")


def face_thumbnail(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The face box of ``image`` (H×W×3 uint8 BGR) with a margin, scaled to a long side of THUMBNAIL_SIZE."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(value) for value in box)
    margin_x, margin_y = (x2 - x1) * THUMBNAIL_MARGIN, (y2 - y1) * THUMBNAIL_MARGIN
    left, top = int(np.clip(x1 - margin_x, 0, width - 1)), int(np.clip(y1 - margin_y, 0, height - 1))
    right, bottom = int(np.clip(x2 + margin_x, left + 1, width)), int(np.clip(y2 + margin_y, top + 1, height))
    crop = image[top:bottom, left:right]
    scale = THUMBNAIL_SIZE / max(crop.shape[:2])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
