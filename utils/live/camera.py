"""Frame sources of a live swap: an OpenCV camera (index, device path, stream URL), a video file played at its own
rate, and a list of frames at a chosen rate (tests and benchmarks). Each ``read()`` blocks until the next frame.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from utils.errors import GhostError

logger = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
# A real camera may fail a read now and then (USB hiccup); this many failures in a row mean it is gone.
FAILED_READS_BEFORE_DISCONNECT = 5
FILE_FALLBACK_FPS = 25.0  # a video file that does not say its rate


class CameraError(GhostError):
    """A camera that does not exist, cannot be opened, or delivers no frame."""


class Camera(Protocol):
    """A source of H×W×3 uint8 BGR frames."""

    description: str
    size: tuple[int, int]  # width, height of the frames (the first frame's)
    fps: float  # frames per second the source says it delivers (0: unknown)

    def read(self) -> np.ndarray | None:
        """The next frame (blocks until the source has one); None once the source has ended or disconnected."""

    def close(self) -> None:
        """Release the device (idempotent)."""


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Silence what OpenCV's FFmpeg and V4L2 back ends print while a device opens (we report one line instead)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_capture(target: int | str, width: int | None, height: int | None) -> cv2.VideoCapture:
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with native_stderr_silenced():
            capture = cv2.VideoCapture(target)
            if capture.isOpened():
                if width:
                    capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                if height:
                    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    finally:
        cv2.utils.logging.setLogLevel(previous)
    return capture


class OpenCVCamera:
    """A camera, device or stream read with ``cv2.VideoCapture``; ``paced`` plays a file at its frame rate."""

    def __init__(self, capture: cv2.VideoCapture, description: str, paced: bool = False) -> None:
        self.capture = capture
        self.description = description
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._interval = 1.0 / (self.fps if self.fps > 0 else FILE_FALLBACK_FPS) if paced else 0.0
        self._next_time: float | None = None
        self._first: np.ndarray | None = None
        self.size = (0, 0)

    def check_first_frame(self) -> None:
        """Read one frame now, so a device that opens but delivers nothing is refused at start-up."""
        frame = self._read_once()
        if frame is None:
            self.close()
            raise CameraError(f"camera {self.description} opened but delivered no frame")
        self._first = frame
        self.size = (frame.shape[1], frame.shape[0])

    def _read_once(self) -> np.ndarray | None:
        if self.capture is None:
            return None
        ok, frame = self.capture.read()
        return frame if ok and frame is not None and frame.size else None

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            frame = None
            for _ in range(1 if self._interval else FAILED_READS_BEFORE_DISCONNECT):
                frame = self._read_once()
                if frame is not None:
                    break
        if frame is None:
            return None
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self._interval:
            self._next_time = pace(self._next_time, self._interval)
        return frame

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


class FrameListCamera:
    """Plays ``frames`` (H×W×3 uint8 BGR) at ``fps`` like a camera, ``repeat`` times over (tests, benchmarks).

    ``fps`` 0 delivers them as fast as they are read. ``stamp`` writes the frame number into the top-left
    pixels (see :func:`frame_number`), so latency can be measured at the output.
    """

    def __init__(self, frames: Sequence[np.ndarray], fps: float, repeat: int = 1, stamp: bool = False,
                 description: str = "test frames") -> None:
        if not frames:
            raise CameraError("a test camera needs at least one frame")
        self.frames, self.fps, self.repeat, self.stamp = list(frames), fps, repeat, stamp
        self.description = description
        self.size = (self.frames[0].shape[1], self.frames[0].shape[0])
        self.delivered = 0
        self._next_time: float | None = None

    def read(self) -> np.ndarray | None:
        if self.delivered >= len(self.frames) * self.repeat:
            return None
        if self.fps:
            self._next_time = pace(self._next_time, 1.0 / self.fps)
        frame = self.frames[self.delivered % len(self.frames)].copy()
        if self.stamp:
            stamp_frame_number(frame, self.delivered)
        self.delivered += 1
        return frame

    def close(self) -> None:
        self.delivered = len(self.frames) * self.repeat


def pace(next_time: float | None, interval: float) -> float:
    """Sleep until ``next_time`` (now when None) and return the time the frame after is due."""
    now = time.monotonic()
    if next_time is None or next_time < now - interval:  # first frame, or a consumer that fell far behind
        return now + interval
    time.sleep(max(0.0, next_time - now))
    return next_time + interval


STAMP_BITS, STAMP_CELL = 16, 4  # a frame number (mod 65536) as 16 black/white 4×4 cells along the top edge


def stamp_frame_number(frame: np.ndarray, number: int) -> None:
    """Write ``number`` (mod 65536) into the top-left ``4 × 64`` pixels of an H×W×3 uint8 frame (in place)."""
    for bit in range(STAMP_BITS):
        value = 255 if number >> bit & 1 else 0
        frame[:STAMP_CELL, bit * STAMP_CELL:(bit + 1) * STAMP_CELL] = value


def frame_number(frame: np.ndarray) -> int:
    """The number :func:`stamp_frame_number` wrote (robust to lossy coding: each cell's mean is thresholded)."""
    number = 0
    for bit in range(STAMP_BITS):
        cell = frame[:STAMP_CELL, bit * STAMP_CELL:(bit + 1) * STAMP_CELL]
        number |= int(cell.mean() > 127) << bit
    return number


def open_camera(spec: str, width: int | None = None, height: int | None = None) -> OpenCVCamera:
    """The camera ``spec`` names: an index (``0``), a device path, a stream URL or a video file.

    Raises CameraError with one line when it does not exist, cannot be opened or delivers no frame.
    """
    spec = spec.strip()
    paced = False
    if spec.isdigit():
        target: int | str = int(spec)
        description = f"{spec} (OpenCV index)"
    elif spec.lower().startswith(URL_SCHEMES):
        target, description = spec, spec
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise CameraError(f"camera {spec} does not exist (give an OpenCV index such as 0, a device path such "
                              f"as /dev/video0, a stream URL or a video file)")
        target, description = str(path), str(path)
        paced = path.is_file()  # a video file plays at its own rate; a device node delivers at the camera's
    capture = _open_capture(target, width, height)
    if not capture.isOpened():
        capture.release()
        hint = " (no camera with that index, or it is in use)" if isinstance(target, int) else ""
        raise CameraError(f"cannot open camera {description}{hint}")
    camera = OpenCVCamera(capture, description, paced=paced)
    camera.check_first_frame()
    logger.info("camera %s: %dx%d at %.1f frames/s", description, *camera.size, camera.fps)
    return camera
