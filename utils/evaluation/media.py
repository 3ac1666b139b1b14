"""Images and videos as sequences of frames (``H×W×3 uint8 BGR``), and the lossless video the results go into.

Videos are decoded by inference's reader (utils/inference/media.py: PyAV, frames turned upright) and the
results written with PyAV.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from utils.errors import GhostError
from utils.image import IMAGE_EXTENSIONS, read_image
from utils.inference.media import VIDEO_EXTENSIONS, decode_frames, open_video

MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
# Swapped videos are written losslessly (FFV1 in Matroska), so that --swapped_dir re-scores the very pixels.
RESULT_VIDEO_EXTENSION = ".mkv"
DEFAULT_FPS = 25


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_media(location: str | Path, extensions: Sequence[str] = MEDIA_EXTENSIONS) -> list[Path]:
    """The files of a folder (not its subfolders) with one of ``extensions``, sorted; or the one file given."""
    location = Path(location)
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise GhostError(f"{location} does not exist")
    return sorted(path for path in location.iterdir() if path.is_file() and path.suffix.lower() in extensions)


def video_fps(path: str | Path) -> Fraction:
    """The frame rate of a video's first moving-picture stream (DEFAULT_FPS when the file does not say)."""
    container, info = open_video(path)
    container.close()
    return Fraction(info.average_rate) if info.average_rate else Fraction(DEFAULT_FPS)


def read_frames(path: str | Path, step: int = 1, max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame index, H×W×3 uint8 BGR)`` of an image (index 0) or of every ``step``-th video frame, upright.

    At most ``max_frames`` frames are returned. Raises ImageReadError / MediaReadError (GhostErrors naming the
    file) for a file that cannot be decoded.
    """
    path = Path(path)
    if not is_video(path):
        yield 0, read_image(path)
        return
    container, info = open_video(path)
    returned = 0
    with container:
        for decoded in decode_frames(container, info, path):
            if decoded.index % step:
                continue
            yield decoded.index, decoded.image
            returned += 1
            if max_frames is not None and returned >= max_frames:
                return


class LosslessVideoWriter:
    """Writes ``H×W×3 uint8 BGR`` frames to a lossless video, renamed into place by :meth:`close` only.

    Until then the frames go to a hidden ``.partial`` file, which :meth:`abort` removes.
    """

    def __init__(self, path: str | Path, fps: Fraction) -> None:
        self.path = Path(path)
        self.fps = fps
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self._container = None
        self._stream = None

    def write(self, frame: np.ndarray) -> None:
        import av

        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self.partial), mode="w", format="matroska")
            self._stream = self._container.add_stream("ffv1", rate=self.fps)
            self._stream.width, self._stream.height = frame.shape[1], frame.shape[0]
            self._stream.pix_fmt = "bgr0"
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        self._container.mux(self._stream.encode(video_frame))

    def close(self) -> Path | None:
        """Finish the file and give it its final name; None when no frame was written."""
        if self._container is None:
            return None
        self._container.mux(self._stream.encode())
        self._container.close()
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file."""
        if self._container is not None:
            self._container.close()
            self._container = None
        self.partial.unlink(missing_ok=True)
