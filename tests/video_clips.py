"""Tiny test videos made with PyAV: faces (crops of the example photos or coloured patches) moving over a grey
background, with a sine-wave audio track, any codec/container, variable frame rates, rotation, pixel aspect.

``write_clip`` writes one; ``read_clip`` reads back what the tests compare (frames, timestamps, rotation, size,
pixel aspect, decoded audio samples). Also used by bench/video.py.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

BACKGROUND = 128  # grey level of the clips' background (the fake detector finds what differs from it)
SAMPLE_RATE = 48000
TONE_HZ = 440.0


@dataclass
class Clip:
    """What a video file holds, decoded."""

    frames: list[np.ndarray]  # stored orientation, H×W×3 uint8 BGR
    times: list[Fraction]  # presentation times in seconds
    rotation: int
    width: int
    height: int
    sample_aspect_ratio: Fraction | None
    pix_fmt: str
    audio: np.ndarray | None  # channels × samples, decoded
    audio_codec: str | None
    video_codec: str


def face_crop(photo: Path, size: int) -> np.ndarray:
    """The middle of an example photo as a ``size×size`` BGR patch."""
    image = cv2.imread(str(photo))
    height, width = image.shape[:2]
    side = min(height, width) // 2
    top, left = height // 2 - side // 2 - height // 8, width // 2 - side // 2
    return cv2.resize(image[max(top, 0):max(top, 0) + side, left:left + side], (size, size),
                      interpolation=cv2.INTER_AREA)


def coloured_patch(colour_bgr: tuple[int, int, int], size: int) -> np.ndarray:
    """A ``size×size`` patch of one colour with a darker inner square (a little texture for the codecs)."""
    patch = np.empty((size, size, 3), dtype=np.uint8)
    patch[:] = colour_bgr
    patch[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = np.asarray(colour_bgr) * 3 // 4
    return patch


def compose(size_wh: tuple[int, int], faces: Sequence[tuple[np.ndarray, tuple[int, int]]]) -> np.ndarray:
    """A grey ``width×height`` BGR frame with each ``(patch, (x, y))`` pasted with its top-left corner at x, y."""
    width, height = size_wh
    frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    for patch, (x, y) in faces:
        ph, pw = patch.shape[:2]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, width), min(y + ph, height)
        if x1 > x0 and y1 > y0:
            frame[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]
    return frame


def sine_wave(seconds: float, channels: int = 1) -> np.ndarray:
    """``channels × samples`` float32 of a 440 Hz tone at 48 kHz."""
    samples = np.arange(round(seconds * SAMPLE_RATE))
    wave = (0.4 * np.sin(2 * np.pi * TONE_HZ * samples / SAMPLE_RATE)).astype(np.float32)
    return np.repeat(wave[None], channels, axis=0)


def write_clip(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    codec: str = "libx264",
    times_ms: Sequence[int] | None = None,
    fps: int = 25,
    audio_codec: str | None = "aac",
    rotation: int = 0,
    sample_aspect_ratio: Fraction | None = None,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write BGR ``frames`` at ``times_ms`` (default: every 1/fps s) with a sine tone as long as the video."""
    times_ms = list(times_ms) if times_ms is not None else [round(1000 * index / fps) for index in range(len(frames))]
    height, width = frames[0].shape[:2] if frames else (64, 64)
    millisecond = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = millisecond
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "ultrafast"}
        if sample_aspect_ratio is not None:
            stream.codec_context.sample_aspect_ratio = sample_aspect_ratio
        if rotation:
            stream.set_display_rotation(rotation)
        audio = container.add_stream(audio_codec, rate=SAMPLE_RATE) if audio_codec else None
        if audio is not None:
            audio.layout = "mono"
        container.start_encoding()
        for image, time_ms in zip(frames, times_ms):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            frame.pts, frame.time_base = time_ms, millisecond
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None and frames:
            _write_tone(container, audio, (times_ms[-1] + 1000 / fps) / 1000)
    return path


def _write_tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream,
                seconds: float) -> None:
    wave = sine_wave(seconds)
    frame_size = stream.codec_context.frame_size or 1024
    resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=SAMPLE_RATE)
    for start in range(0, wave.shape[1], frame_size):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start:start + frame_size]), format="flt",
                                           layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, start
        for resampled in resampler.resample(frame):
            container.mux(stream.encode(resampled))
    container.mux(stream.encode(None))


def write_audio_only(path: Path, seconds: float = 0.5, codec: str = "aac") -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=SAMPLE_RATE)
        stream.layout = "mono"
        _write_tone(container, stream, seconds)
    return path


def write_empty_video(path: Path, size_wh: tuple[int, int] = (64, 48)) -> Path:
    """A container with a video stream that holds no frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size_wh, "yuv420p"
        container.start_encoding()
    return path


def read_clip(path: Path) -> Clip:
    """Decode every video frame (stored orientation) and the first audio stream of ``path``."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames, times, rotation = [], [], 0
        for frame in container.decode(video):
            frames.append(frame.to_ndarray(format="bgr24"))
            times.append(Fraction(frame.pts) * frame.time_base)
            rotation = round(frame.rotation or 0) % 360
        context = video.codec_context
        info = {"rotation": rotation, "width": context.width, "height": context.height,
                "sample_aspect_ratio": context.sample_aspect_ratio, "pix_fmt": context.pix_fmt,
                "video_codec": context.name}
    audio, audio_codec = None, None
    with av.open(str(path)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            audio_codec = stream.codec_context.name
            chunks = [frame.to_ndarray() for frame in container.decode(stream)]
            audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    return Clip(frames, times, audio=audio, audio_codec=audio_codec, **info)
