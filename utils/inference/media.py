"""What a target file is (an image or a video), and reading video frames with PyAV (its wheel carries FFmpeg).

A file is a video when its container holds a video stream that is neither a single still picture (PNG, JPEG,
... decoded by an image "pipe" demuxer) nor cover art attached to an audio file. Frames come out as the
decoder gives them (``av.VideoFrame``, any pixel format) plus an ``H×W×3 uint8 BGR`` copy turned upright by the
stream's display rotation, so that the detector sees faces the right way up.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from utils.errors import GhostError
from utils.image import IMAGE_EXTENSIONS

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".wmv", ".flv",
                    ".3gp", ".ogv", ".gif")
# FFmpeg demuxers that read one still picture (image2 reads numbered image sequences and single images).
STILL_IMAGE_DEMUXERS = ("image2",)


class MediaReadError(GhostError):
    """A target that is missing, unreadable, audio-only, or a video without frames."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"cannot read {self.path}: {reason}")


def _is_still_image_format(container: av.container.InputContainer) -> bool:
    names = container.format.name.split(",")
    return any(name.endswith("_pipe") or name in STILL_IMAGE_DEMUXERS for name in names)


def _video_streams(container: av.container.InputContainer) -> list[av.video.stream.VideoStream]:
    """Video streams that are moving pictures (attached pictures, e.g. an MP3's cover, are not)."""
    return [stream for stream in container.streams.video
            if not stream.disposition & av.stream.Disposition.attached_pic]


def probe_media(path: str | Path) -> str:
    """``"image"`` or ``"video"``: what ``path`` holds, from its content (the extension is not trusted).

    Raises MediaReadError (a GhostError naming the file) when it is missing, a folder, empty, not a
    picture nor a video FFmpeg can open, or audio only.
    """
    path = Path(path)
    if not path.exists():
        raise MediaReadError(path, "no such file")
    if path.is_dir():
        raise MediaReadError(path, "it is a folder, not an image or video file")
    if path.stat().st_size == 0:
        raise MediaReadError(path, "the file is empty")
    try:
        with av.open(str(path)) as container:
            if _is_still_image_format(container):
                return "image"
            if _video_streams(container):
                return "video"
            if container.streams.audio:
                raise MediaReadError(path, "it holds audio only, no video stream")
    except av.error.FFmpegError as error:
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return "image"  # let the image reader give its own message (e.g. a truncated PNG)
        raise MediaReadError(path, f"not a supported image or video ({error.strerror or error})") from error
    raise MediaReadError(path, "it holds no video frames (no video stream, no picture)")


def upright_rotation(rotation: float) -> int:
    """The display rotation (degrees counter-clockwise, from FFmpeg's display matrix) as 0, 90, 180 or 270."""
    return round(float(rotation or 0) / 90.0) % 4 * 90


def rotate_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """The stored frame as a viewer shows it (``rotation`` degrees counter-clockwise); H×W×3 uint8 in and out."""
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=rotation // 90))


def rotate_stored(image: np.ndarray, rotation: int) -> np.ndarray:
    """Undo :func:`rotate_upright`: back to the stored orientation."""
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90)))


@dataclass(frozen=True)
class VideoInfo:
    """What the writer copies from the input's video stream."""

    width: int  # stored size (before the display rotation)
    height: int
    time_base: Fraction
    average_rate: Fraction | None
    pix_fmt: str
    sample_aspect_ratio: Fraction | None
    frame_count: int | None  # from the container; None when it does not say
    duration_seconds: float | None
    stream_index: int


@dataclass
class DecodedFrame:
    """One input frame: the decoder's frame (for unchanged output) and its upright BGR picture."""

    index: int
    frame: av.VideoFrame
    image: np.ndarray  # H×W×3 uint8 BGR, upright (display rotation applied)
    rotation: int  # degrees counter-clockwise the stored frame is turned for display
    seconds: float  # presentation time


def read_video_info(container: av.container.InputContainer, path: Path) -> VideoInfo:
    """The first moving-picture stream's settings; MediaReadError when there is none."""
    streams = _video_streams(container)
    if not streams:
        raise MediaReadError(path, "it holds no video stream")
    stream = streams[0]
    context = stream.codec_context
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    sample_aspect = context.sample_aspect_ratio
    return VideoInfo(
        width=context.width, height=context.height, time_base=stream.time_base,
        average_rate=stream.average_rate or stream.guessed_rate, pix_fmt=context.pix_fmt or "yuv420p",
        sample_aspect_ratio=sample_aspect if sample_aspect and sample_aspect > 0 else None,
        frame_count=stream.frames or None, duration_seconds=duration, stream_index=stream.index,
    )


def open_video(path: str | Path) -> tuple[av.container.InputContainer, VideoInfo]:
    """Open a video for decoding (threaded decoder); MediaReadError naming the file when FFmpeg cannot."""
    path = Path(path)
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise MediaReadError(path, f"not a readable video ({error.strerror or error})") from error
    try:
        info = read_video_info(container, path)
        container.streams.video[0].thread_type = "AUTO"
    except BaseException:
        container.close()
        raise
    return container, info


def decode_frames(container: av.container.InputContainer, info: VideoInfo, path: Path) -> Iterator[DecodedFrame]:
    """Every frame of the video stream in presentation order; MediaReadError on corrupt data."""
    stream = container.streams[info.stream_index]
    index = 0
    try:
        for frame in container.decode(stream):
            rotation = upright_rotation(frame.rotation)
            image = rotate_upright(frame.to_ndarray(format="bgr24"), rotation)
            seconds = float(frame.time) if frame.time is not None else index / float(info.average_rate or 25)
            yield DecodedFrame(index, frame, image, rotation, seconds)
            index += 1
    except av.error.FFmpegError as error:
        raise MediaReadError(path, f"the video data is corrupt after {index} frame(s) "
                                   f"({error.strerror or error})") from error
    if index == 0:
        raise MediaReadError(path, "the video has no frames")
