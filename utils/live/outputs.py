"""Where swapped live frames go: a window, a virtual camera (pyvirtualcam) or a video file that stays playable.

Every output takes ``write(image, seconds)`` with an H×W×3 uint8 BGR frame and its time on the stream's clock,
and ``close()``. Outputs are opened before the models load, so a missing backend is reported at once.
"""
from __future__ import annotations

import logging
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import cv2
import numpy as np

from utils.errors import GhostError
from utils.image import check_output_file
from utils.inference.video_output import encoder_options, encoder_pixel_format, resolve_video_codec

logger = logging.getLogger(__name__)

WINDOW_TITLE = "GhostV2 live (q or Esc stops)"
STOP_KEYS = (ord("q"), ord("Q"), 27)
FILE_TIME_BASE = Fraction(1, 1000)  # frame times in milliseconds: a live stream has no fixed rate
FILE_CRF, FILE_PRESET = 20, "veryfast"  # a live recording favours encoding speed over size
KEYFRAME_SECONDS = 1.0  # a keyframe (and, in .mp4, a fragment) this often: a killed recording loses at most this
# Fragmented MP4: the index is written with every fragment, so the file plays even if the process is killed.
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
VIRTUAL_CAMERA_INSTALL = "python -m pip install -r requirements-live.txt"


class LiveOutputError(GhostError):
    """An output that cannot be opened or written (no display, no virtual-camera backend, unwritable file)."""


class FrameOutput(Protocol):
    """A destination of swapped frames."""

    stop_requested: bool  # the user asked to stop from the output itself (a key in the window)

    def write(self, image: np.ndarray, seconds: float) -> None: ...

    def close(self) -> None: ...


class WindowOutput:
    """An OpenCV window; q, Esc or closing the window sets ``stop_requested``."""

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise LiveOutputError("--window needs a display (DISPLAY is not set); write to --output_file_path or "
                                  "--virtual_camera instead")
        self.title = title
        self.stop_requested = False
        self._shown = False

    def write(self, image: np.ndarray, seconds: float) -> None:
        try:
            if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self.stop_requested = True  # the user closed the window
                return
            cv2.imshow(self.title, image)
            self._shown = True
            if cv2.waitKey(1) & 0xFF in STOP_KEYS:
                self.stop_requested = True
        except cv2.error as error:
            raise LiveOutputError(f"cannot show the live window: {error.err or error}") from error

    def close(self) -> None:
        if self._shown:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._shown = False


def import_pyvirtualcam() -> Any:
    """The pyvirtualcam module; LiveOutputError naming the install command when it is missing."""
    try:
        import pyvirtualcam
    except ImportError:
        raise LiveOutputError(f"--virtual_camera needs the pyvirtualcam package, which is not installed: "
                              f"{VIRTUAL_CAMERA_INSTALL}") from None
    return pyvirtualcam


class VirtualCameraOutput:
    """A virtual camera through pyvirtualcam: v4l2loopback on Linux, OBS's virtual camera on Windows and macOS."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        pyvirtualcam = import_pyvirtualcam()
        self.camera = None
        self.stop_requested = False
        self.size = (width, height)
        try:
            self.camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR)
        except Exception as error:  # noqa: BLE001 - pyvirtualcam raises RuntimeError/ValueError per backend
            hint = ("load v4l2loopback (sudo modprobe v4l2loopback devices=1 exclusive_caps=1)"
                    if sys.platform.startswith("linux") else "install OBS Studio and start its virtual camera once")
            raise LiveOutputError(f"no virtual camera backend: {str(error).splitlines()[0]}; {hint}") from None
        logger.info("virtual camera %s: %dx%d", self.camera.device, width, height)

    def write(self, image: np.ndarray, seconds: float) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.camera.send(np.ascontiguousarray(image))

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
            self.camera = None


class VideoFileOutput:
    """A video file of the swapped frames at their capture times (variable rate), playable after any stop.

    Frames are encoded as they come; ``close()`` (called in a ``finally`` on Ctrl+C or a camera disconnect)
    flushes the encoder and writes the index. An .mp4 is fragmented, so even a killed process leaves a file that
    plays up to its last second. Odd frame sizes lose their last row or column (4:2:0 video needs even sizes).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        self.path = Path(path)
        self.stop_requested = False
        self.frames = 0
        self.size = (width - width % 2, height - height % 2)
        check_output_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        options = FRAGMENTED_MP4 if self.path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
        try:
            self.container = av.open(str(self.path), "w", options=options)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise LiveOutputError(f"cannot write {self.path}: {error}") from error
        try:
            codec = resolve_video_codec(self.container, "auto")
            rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
            stream = self.container.add_stream(codec.name, rate=rate)
            stream.width, stream.height = self.size
            stream.pix_fmt = encoder_pixel_format(codec, "yuv420p")
            stream.time_base = stream.codec_context.time_base = FILE_TIME_BASE
            stream.codec_context.gop_size = max(1, round(KEYFRAME_SECONDS * float(rate)))
            stream.options = {**encoder_options(codec, FILE_CRF, FILE_PRESET),
                              **({"tune": "zerolatency"} if codec.name == "libx264" else {})}
        except BaseException:
            self.container.close()
            raise
        self.stream = stream
        self._last_pts = -1
        logger.info("recording %s: %s %dx%d", self.path, codec.name, *self.size)

    def write(self, image: np.ndarray, seconds: float) -> None:
        width, height = self.size
        if image.shape[1] < width or image.shape[0] < height:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="bgr24")
        frame.pts = self._last_pts = max(self._last_pts + 1, round(seconds / FILE_TIME_BASE))
        frame.time_base = FILE_TIME_BASE
        try:
            self.container.mux(self.stream.encode(frame))
        except av.error.FFmpegError as error:
            raise LiveOutputError(f"cannot encode {self.path}: {error}") from error
        self.frames += 1

    def discard(self) -> None:
        """Close and delete the file (an NSFW stop: as for videos, nothing is written)."""
        if self.container is not None:
            container, self.container = self.container, None
            try:
                container.close()
            except (av.error.FFmpegError, OSError) as error:
                logger.debug("while discarding %s: %s", self.path, error)
        self.path.unlink(missing_ok=True)
        self.frames = 0

    def close(self) -> None:
        if self.container is None:
            return
        container, self.container = self.container, None
        try:
            container.mux(self.stream.encode(None))
        except av.error.FFmpegError as error:
            logger.warning("while finishing %s: %s", self.path, error)
        finally:
            container.close()
        if not self.frames:  # a file without a frame plays nowhere: leave nothing
            self.path.unlink(missing_ok=True)
            logger.info("no frame was swapped; %s not written", self.path)
            return
        logger.info("wrote %d frame(s) to %s", self.frames, self.path)
