"""Video face swap, streaming: decode → detect → track → smooth → align → generator/GFPGAN in batches → paste →
encode, with decoding and encoding in their own threads behind bounded queues, so memory stays flat whatever the
video's length.

The faces go through the frame pipeline (utils.inference.pipeline), the same per-face path as photos.
Frames where no chosen face is found go to the encoder as the decoder gave them (pixel for pixel with a
lossless codec). Each track keeps its ghost mask settings and its reference match, and its keypoints and box
are averaged over ±``smooth_window`` frames (utils.inference.tracking). Edge inpainting (SDXL) is not run on
video frames. The NSFW classifier sees one target frame every ``nsfw_check_seconds`` of video, and the same output
frames after the swap.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from utils.errors import GhostError
from utils.inference.media import DecodedFrame, decode_frames, open_video, rotate_stored
from utils.inference.pipeline import Frame, FramePipeline, FrameResult, SourceFace
from utils.inference.selection import FaceSelection
from utils.inference.swap import FaceSwapper
from utils.inference.video_output import VideoWriter

logger = logging.getLogger(__name__)

CUDA_BATCH_SIZE, CPU_BATCH_SIZE = 8, 1  # --batch_size when unset


@dataclass(frozen=True)
class VideoOptions:
    """How videos are swapped and written; field names are inference.py's flags."""

    # Frames detected together, and faces through the generator and GFPGAN together; None: 8 on CUDA, 1 on CPU,
    # where bench/video.py measured batches of 8 slower (47 s vs 42 s for 8 720p frames) at 2.3x the peak RSS.
    batch_size: int | None = None
    smooth_window: int = 2  # keypoints averaged over ±N frames of a track (GHOST v1: 2); 0 = off
    keep_audio: bool = True
    video_codec: str = "auto"  # auto: the container's default (H.264 for .mp4/.mkv/.mov, VP9 for .webm)
    video_quality: int = 18  # constant-quality factor (CRF) of H.264/H.265/VP9; 18 is visually lossless
    video_preset: str = "medium"  # x264/x265 speed preset
    nsfw_check_seconds: float = 1.0  # one NSFW-checked frame per this much video time (the first frame too)
    # Frames are detected at their own size (at most --detection_max_size), never scaled up unless asked: the
    # original had no video, and its photo default enlarged a 480×352 frame 2.7× before RetinaFace.
    video_detection_upscale: bool = False

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise GhostError(f"--batch_size must be at least 1; got {self.batch_size}")
        if self.smooth_window < 0:
            raise GhostError(f"--smooth_window counts frames (0 = off); got {self.smooth_window}")
        if not 0 <= self.video_quality <= 63:
            raise GhostError(f"--video_quality is a CRF between 0 and 63; got {self.video_quality}")
        if self.nsfw_check_seconds <= 0:
            raise GhostError(f"--nsfw_check_seconds must be positive; got {self.nsfw_check_seconds}")


@dataclass
class VideoStats:
    """What a video swap did."""

    frames: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def add(self, result: FrameResult) -> None:
        """Count one output frame."""
        self.frames += 1
        self.frames_swapped += int(bool(result.faces))
        self.faces_swapped += len(result.faces)


# ---------------------------------------------------------------------------------------------------- threads

_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _BackgroundReader:
    """Runs an iterator in a thread, handing its items over through a bounded queue (errors re-raised)."""

    def __init__(self, items: Iterable[Any], size: int) -> None:
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="video-decode", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            iterator = iter(self._items)
            while True:
                start = time.perf_counter()
                item = next(iterator, _END)
                self.seconds += time.perf_counter() - start
                if item is _END or not self._put(item):
                    break
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(_Failure(error))
        self._put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _BackgroundWriter:
    """Feeds ``VideoWriter.write`` from a thread through a bounded queue; its errors surface on the next put."""

    def __init__(self, writer: VideoWriter, size: int) -> None:
        self.writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="video-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self.error is not None:
                continue  # keep draining so that put() never blocks
            start = time.perf_counter()
            try:
                self.writer.write(*item)
            except BaseException as error:  # noqa: BLE001 - raised in the producer by put() or close()
                self.error = error
            self.seconds += time.perf_counter() - start

    def put(self, frame: av.VideoFrame, rotation: int) -> None:
        self._raise_error()
        self._queue.put((frame, rotation))

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._queue.put(_END)
        self._thread.join()
        self._raise_error()
        start = time.perf_counter()
        self.writer.close()
        self.seconds += time.perf_counter() - start

    def abort(self) -> None:
        self.error = self.error or GhostError("aborted")
        self._queue.put(_END)
        self._thread.join()
        self.writer.abort()


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------------------------------------------- the swap


def swap_video(
    swapper: FaceSwapper,
    sources: list[SourceFace],
    target_path: Path,
    output_path: Path,
    selection: FaceSelection,
    reference_embeddings: np.ndarray | None,
    options: VideoOptions,
    progress: Callable[[int, int | None], None] | None = None,
) -> VideoStats:
    """Swap the chosen faces of every frame of ``target_path`` into a new video at ``output_path``.

    ``sources[k]`` replaces the faces matched to reference k (``reference_embeddings`` ``[R, 512]``), or
    source 0 the faces ``selection`` picks by index. ``progress(done, total or None)`` is called per frame.
    Raises GhostErrors with a message for the user; the caller removes ``output_path`` on failure.
    """
    if swapper.options.paste_back_mode == "none":
        raise GhostError("--paste_back_mode none writes the 256×256 face only; a video needs another paste-back mode")
    if swapper.options.uses_inpainting:
        logger.info("edge inpainting (SDXL) is not run on video frames")
    container, info = open_video(target_path)
    writer = VideoWriter(output_path, target_path, info, options.video_codec, options.video_quality,
                         options.video_preset, options.keep_audio)
    batch_size = options.batch_size or (CUDA_BATCH_SIZE if swapper.device.type == "cuda" else CPU_BATCH_SIZE)
    pipeline = FramePipeline(swapper, sources, selection, reference_embeddings,
                             upscale=options.video_detection_upscale, smooth_window=options.smooth_window,
                             nsfw_seconds=options.nsfw_check_seconds)
    stats = VideoStats()
    queue_size = 2 * batch_size + options.smooth_window
    reader = _BackgroundReader(decode_frames(container, info, target_path), queue_size)
    encoder = _BackgroundWriter(writer, queue_size)

    def write(results: list[FrameResult]) -> None:
        for result in results:
            stats.add(result)
            encoder.put(_output_frame(result), result.frame.payload.rotation)
            if progress is not None:
                progress(stats.frames, info.frame_count)

    try:
        with torch.inference_mode(), swapper.weights_resident():
            for decoded in _chunks(reader, batch_size):
                write(pipeline.push([Frame(item.image, item.index, item.seconds, item) for item in decoded]))
            write(pipeline.flush())
        encoder.close()
    except BaseException:
        reader.stop()
        encoder.abort()
        raise
    finally:
        reader.stop()
        container.close()
    stats.timings = {**swapper.timings, "read": reader.seconds, "write": encoder.seconds}
    return stats


def _output_frame(result: FrameResult) -> av.VideoFrame:
    """The decoder's own frame where nothing was replaced, else the swapped image with the input's timing."""
    decoded: DecodedFrame = result.frame.payload
    if not result.faces:
        return decoded.frame
    output = av.VideoFrame.from_ndarray(rotate_stored(result.image, decoded.rotation), format="bgr24")
    output.pts, output.time_base = decoded.frame.pts, decoded.frame.time_base
    return output
