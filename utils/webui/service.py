"""What the page asks of the swap pipeline: the faces of a picture to pick from, and one swap job.

One :class:`SwapService` per running page holds the start-up options and one ModelCache, so each model loads
once (for the option set that first needs it) and stays loaded between requests; every job builds its
FaceSwapper from the start-up options plus the advanced panel's changes and runs ``swap_media``, the call
inference.py makes, for images and videos alike. Gradio's queue runs one job at a time (utils/webui/layout.py);
this module never imports Gradio.
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
from utils.inference.media import decode_frames, open_video, probe_media
from utils.inference.model_cache import ModelCache
from utils.inference.options import SwapOptions
from utils.inference.run import Progress, SwapReport, swap_media
from utils.inference.selection import FaceSelection
from utils.inference.swap import FaceSwapper
from utils.inference.video import VideoOptions
from utils.inference.stream import FrameStream, StreamOptions
from utils.live.stream import open_live_stream
from utils.webui.live import LiveSessions, LiveSettings
from utils.webui.settings import WebUISettings
from utils.webui.workspace import Workspace

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 112  # long side of a face thumbnail, pixels
THUMBNAIL_MARGIN = 0.25  # the face box grown by this fraction of its size on each side
THUMBNAIL_PADDING = (245, 245, 245)  # BGR, around a face cut by the picture's edge
SELECTED_COLOUR, SELECTED_BORDER = (60, 200, 60), 6  # BGR green frame, pixels, around a selected face's thumbnail
RESULT_SUFFIX = {"image": ".png", "video": ".mp4"}  # lossless photos; H.264 videos play in every browser


@dataclass(frozen=True)
class FaceChoice:
    """One detected face offered in the page: its CLI index (left to right) and a thumbnail file."""

    index: int
    thumbnail: Path
    score: float
    marked: Path  # the thumbnail framed in SELECTED_COLOUR: how the galleries show a face that is selected


class SwapService:
    """The swap pipeline behind the page: start-up options (model and video), loaded models, the page's folder."""

    def __init__(self, options: SwapOptions, settings: WebUISettings, workspace: Workspace,
                 video: VideoOptions | None = None, models: ModelCache | None = None) -> None:
        self.options = options
        self.video = video or VideoOptions()
        self.settings = settings
        self.workspace = workspace
        self.models = models or ModelCache()
        # Live frames are written where Gradio keeps its files, so the page serves them without copying each one.
        self.live = LiveSessions(self.open_live_stream, workspace.uploads / "live")

    def swapper(self, changes: Mapping[str, Any]) -> FaceSwapper:
        """A swapper with the start-up options plus ``changes`` (the advanced panel), sharing the loaded models."""
        try:
            return FaceSwapper(replace(self.options, **changes), self.models)
        except ValueError as error:  # an option value the pipeline does not know
            raise GhostError(str(error)) from error

    def probe(self, path: str | Path) -> str:
        """``"image"`` or ``"video"``; a video longer than ``max_video_seconds`` is refused."""
        kind = probe_media(path)
        if kind == "video":
            container, info = open_video(path)
            container.close()
            limit = self.settings.max_video_seconds
            if info.duration_seconds is not None and info.duration_seconds > limit:
                raise GhostError(f"the video {Path(path).name} lasts {info.duration_seconds:.1f} s, longer than this "
                                 f"page's limit of {limit:g} s (webui.py --max_video_seconds)")
        return kind

    def faces(self, path: str | Path, changes: Mapping[str, Any], role: str) -> list[FaceChoice]:
        """The best-scoring faces of a photo or a video's first frame (at most ``max_faces_shown``), in CLI order.

        Raises our GhostErrors for a file that is neither, a video over the length limit, or no face found.
        """
        path = Path(path)
        image = read_image(path) if self.probe(path) == "image" else first_frame(path)
        swapper = self.swapper(changes)
        detections = swapper.detections(image)
        if not detections:
            raise NoFaceFoundError(
                f"no face found in the {role} {path.name} (detection threshold "
                f"{swapper.options.detection_threshold}); try a lower detection threshold or another picture"
            )
        best = sorted(range(len(detections)), key=lambda index: -float(detections[index].score))
        shown = sorted(best[: self.settings.max_faces_shown])
        folder = self.workspace.new_folder(self.workspace.faces)
        choices = []
        for index in shown:
            thumbnail = face_thumbnail(image, detections[index].box)
            choices.append(FaceChoice(index, write_image(folder / f"face_{index}.png", thumbnail),
                                      float(detections[index].score),
                                      write_image(folder / f"face_{index}_selected.png", marked(thumbnail))))
        return choices

    def swap(self, source_paths: Sequence[str | Path], target_path: str | Path, selection: FaceSelection,
             changes: Mapping[str, Any], video: VideoOptions, progress: Progress | None = None) -> SwapReport:
        """Swap into a target photo or video with ``swap_media``; the result goes into the page's folder.

        Raises our GhostErrors (NSFW verdict, no face, unreadable file, video too long, ...) with a message.
        """
        if not source_paths:
            raise GhostError("add at least one source photo (the face to put in)")
        kind = self.probe(target_path)
        output_path = self.workspace.result_path(target_path, RESULT_SUFFIX[kind])
        report = swap_media(self.swapper(changes), source_paths, target_path, output_path, selection, video,
                            progress)
        logger.info("%s", report.summary())
        return report


    def open_live_stream(self, settings: LiveSettings) -> FrameStream:
        """A live FrameStream with the start-up options plus the page's changes (models shared with the page).

        Keypoints are smoothed and the NSFW check samples as for the page's videos. Raises our GhostErrors: no
        source photo, a source photo without a face, unpaired reference photos.
        """
        if not settings.source_paths:
            raise GhostError("add a source photo (the face to put in) before starting the camera")
        options = StreamOptions(smooth_window=self.video.smooth_window, enhance_every=settings.enhance_every,
                                nsfw_check_seconds=self.video.nsfw_check_seconds)
        return open_live_stream(self.swapper(dict(settings.changes)), settings.source_paths, settings.selection,
                                options)


def first_frame(path: Path) -> np.ndarray:
    """The first frame of a video, upright, H×W×3 uint8 BGR."""
    container, info = open_video(path)
    with container:
        return next(decode_frames(container, info, path)).image


def face_thumbnail(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A square around the face box of ``image`` (H×W×3 uint8 BGR) with a margin, scaled to THUMBNAIL_SIZE.

    Square, so the gallery (which crops its tiles square) shows all of it, the frame of a selected face included;
    near the picture's edge the square is cut to fit and padded back to a square.
    """
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(value) for value in box)
    half = max(x2 - x1, y2 - y1) * (0.5 + THUMBNAIL_MARGIN)
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(np.clip(centre_x - half, 0, width - 1)), int(np.clip(centre_y - half, 0, height - 1))
    right = int(np.clip(centre_x + half, left + 1, width))
    bottom = int(np.clip(centre_y + half, top + 1, height))
    crop = image[top:bottom, left:right]
    scale = THUMBNAIL_SIZE / max(crop.shape[:2])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    thumbnail = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad_x, pad_y = THUMBNAIL_SIZE - size[0], THUMBNAIL_SIZE - size[1]
    return cv2.copyMakeBorder(thumbnail, pad_y // 2, pad_y - pad_y // 2, pad_x // 2, pad_x - pad_x // 2,
                              cv2.BORDER_CONSTANT, value=THUMBNAIL_PADDING)


def marked(thumbnail: np.ndarray) -> np.ndarray:
    """A copy of a thumbnail (H×W×3 uint8 BGR) inside a SELECTED_COLOUR frame, for a selected face."""
    framed = thumbnail.copy()
    border = min(SELECTED_BORDER, max(1, min(framed.shape[:2]) // 8))
    framed[:border], framed[-border:], framed[:, :border], framed[:, -border:] = (SELECTED_COLOUR,) * 4
    return framed
