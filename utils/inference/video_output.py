"""Writing the swapped video with PyAV: the input's timestamps, size, rotation and pixel aspect, and its audio.

Each output frame keeps its input frame's presentation timestamp in the input stream's time base, so frame
counts and variable frame rates survive. Audio streams are copied packet by packet (no re-encode) when the
output container takes their codec, and re-encoded to the container's default audio codec otherwise. Audio is
read from a second demuxer on the input and muxed in time order with the video, so memory stays flat.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from utils.errors import GhostError
from utils.inference.media import VideoInfo

logger = logging.getLogger(__name__)

# libx264 / libx265 / libvpx-vp9 take a constant-quality factor; ``--video_quality`` is passed as it.
CRF_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1")
PRESET_ENCODERS = ("libx264", "libx265")
LOSSLESS_ENCODERS = ("ffv1", "png", "rawvideo", "utvideo", "huffyuv", "ffvhuff")


class VideoWriteError(GhostError):
    """The output video cannot be written (codec, container, or file system)."""


def _codec(name: str) -> av.Codec:
    try:
        return av.Codec(name, "w")
    except (av.error.FFmpegError, ValueError) as error:
        raise VideoWriteError(f"unknown video codec {name!r} (PyAV's FFmpeg has no such encoder)") from error


def resolve_video_codec(container: av.container.OutputContainer, requested: str) -> av.Codec:
    """The encoder for ``requested`` (``auto``: the container's default, H.264 for .mp4/.mkv, VP9 for .webm)."""
    codec = _codec(container.default_video_codec if requested == "auto" else requested)
    if codec.type != "video":
        raise VideoWriteError(f"{requested!r} is not a video codec")
    supported = container.supported_codecs
    if supported and codec.canonical_name not in supported:
        raise VideoWriteError(
            f"the {container.format.name} container cannot hold {codec.canonical_name} video; choose another "
            f"--video_codec or output extension"
        )
    return codec


def encoder_pixel_format(codec: av.Codec, input_pix_fmt: str) -> str:
    """The input's pixel format when the encoder takes it (lossless round trips), else yuv420p or its first."""
    formats = [video_format.name for video_format in (codec.video_formats or ())]
    if not formats or input_pix_fmt in formats:
        return input_pix_fmt
    return "yuv420p" if "yuv420p" in formats else formats[0]


def encoder_options(codec: av.Codec, quality: int, preset: str) -> dict[str, str]:
    """Constant-quality settings: CRF ``quality`` (0 = lossless for x264), ``preset`` for x264/x265."""
    options: dict[str, str] = {}
    if codec.name in CRF_ENCODERS:
        options["crf"] = str(quality)
    if codec.name in PRESET_ENCODERS:
        options["preset"] = preset
    if codec.name == "libvpx-vp9":
        options.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
    return options


@dataclass
class _AudioRoute:
    """One input audio stream and how it reaches the output: copied packets or a re-encode."""

    output: av.stream.Stream
    copy: bool
    resampler: av.AudioResampler | None = None


class VideoWriter:
    """Encodes frames into ``path`` (opened on the first frame, which gives the rotation) with the input's audio.

    ``write(frame)`` takes ``av.VideoFrame``s with their ``pts`` and ``time_base`` set (input frames unchanged,
    or new ones); ``close()`` flushes everything, ``abort()`` stops without flushing. Both close the files.
    """

    def __init__(self, path: Path, input_path: Path, info: VideoInfo, codec: str, quality: int, preset: str,
                 keep_audio: bool) -> None:
        self.path, self.input_path, self.info = path, input_path, info
        self.codec_name, self.quality, self.preset, self.keep_audio = codec, quality, preset, keep_audio
        self._output: av.container.OutputContainer | None = None
        self._video: av.video.stream.VideoStream | None = None
        self._audio_input: av.container.InputContainer | None = None
        self._audio_routes: dict[int, _AudioRoute] = {}
        self._audio_packets: Iterator[av.Packet] | None = None
        self._pending_audio: av.Packet | None = None

    # ---------------------------------------------------------------------------------------------- setup

    def _open(self, rotation: int) -> None:
        try:
            self._output = av.open(str(self.path), "w")
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoWriteError(f"cannot write {self.path}: {error}") from error
        codec = resolve_video_codec(self._output, self.codec_name)
        info = self.info
        stream = self._output.add_stream(codec.name, rate=info.average_rate or Fraction(25))
        stream.width, stream.height = info.width, info.height
        stream.pix_fmt = encoder_pixel_format(codec, info.pix_fmt)
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        if info.sample_aspect_ratio is not None:
            stream.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        stream.options = encoder_options(codec, self.quality, self.preset)
        if rotation:
            stream.set_display_rotation(rotation)
        self._video = stream
        logger.info("writing %s: %s %s, %dx%d%s", self.path.name, codec.name, stream.pix_fmt, info.width,
                    info.height, f", rotated {rotation}°" if rotation else "")
        if self.keep_audio:
            self._open_audio()

    def _open_audio(self) -> None:
        audio_input = av.open(str(self.input_path))
        streams = list(audio_input.streams.audio)
        if not streams:
            audio_input.close()
            return
        self._audio_input = audio_input
        supported = self._output.supported_codecs
        for stream in streams:
            name = stream.codec_context.name
            if not supported or name in supported:
                self._audio_routes[stream.index] = _AudioRoute(self._output.add_stream_from_template(stream), True)
                continue
            encoder = self._output.default_audio_codec
            if not encoder or encoder == "none":
                logger.warning("audio stream %d (%s) dropped: the %s container takes no audio", stream.index, name,
                               self._output.format.name)
                continue
            rate = stream.codec_context.sample_rate or 48000
            output = self._output.add_stream(encoder, rate=rate)
            output.layout = stream.codec_context.layout
            resampler = av.AudioResampler(format=output.codec_context.format, layout=output.layout,
                                          rate=output.codec_context.sample_rate)
            self._audio_routes[stream.index] = _AudioRoute(output, False, resampler)
            logger.info("audio stream %d: the %s container cannot hold %s, re-encoding it as %s", stream.index,
                        self._output.format.name, name, output.codec_context.name)
        self._audio_packets = audio_input.demux(*streams) if self._audio_routes else None

    # ---------------------------------------------------------------------------------------------- writing

    def write(self, frame: av.VideoFrame, rotation: int = 0) -> None:
        """Encode one frame (its ``pts``/``time_base`` are kept) and mux the audio that comes before it."""
        if self._output is None:
            self._open(rotation)
        try:
            for packet in self._video.encode(frame):
                self._mux_audio_until(packet.dts * packet.time_base if packet.dts is not None else None)
                self._output.mux(packet)
        except av.error.FFmpegError as error:
            raise VideoWriteError(f"cannot encode {self.path}: {error}") from error

    def _mux_audio_until(self, seconds: Fraction | None) -> None:
        """Mux audio packets whose decoding time is not after ``seconds`` (all of them when None)."""
        if self._audio_packets is None:
            return
        while True:
            if self._pending_audio is None:
                self._pending_audio = next(self._audio_packets, None)
                if self._pending_audio is None:
                    self._audio_packets = None
                    self._flush_audio_encoders()
                    return
            packet = self._pending_audio
            if packet.dts is not None and seconds is not None and packet.dts * packet.time_base > seconds:
                return
            self._pending_audio = None
            route = self._audio_routes[packet.stream.index]
            if packet.dts is None and packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            if route.copy:
                packet.stream = route.output
                self._output.mux(packet)
                continue
            for frame in packet.decode():
                for resampled in route.resampler.resample(frame):
                    self._output.mux(route.output.encode(resampled))

    def _flush_audio_encoders(self) -> None:
        for route in self._audio_routes.values():
            if not route.copy:
                for resampled in route.resampler.resample(None):
                    self._output.mux(route.output.encode(resampled))
                self._output.mux(route.output.encode(None))

    def close(self) -> None:
        """Flush the encoder and the remaining audio, then close the files."""
        try:
            if self._output is not None:
                self._output.mux(self._video.encode(None))
                self._mux_audio_until(None)
        except av.error.FFmpegError as error:
            raise VideoWriteError(f"cannot finish {self.path}: {error}") from error
        finally:
            self._close_files()

    def abort(self) -> None:
        """Close the files without flushing (the caller deletes the partial output)."""
        try:
            self._close_files()
        except (av.error.FFmpegError, OSError) as error:
            logger.debug("while abandoning %s: %s", self.path, error)

    def _close_files(self) -> None:
        output, audio_input = self._output, self._audio_input
        self._output = self._audio_input = None
        try:
            if output is not None:
                output.close()
        finally:
            if audio_input is not None:
                audio_input.close()
