"""Video face swap, streaming: decode → detect → track → smooth → align → generator/GFPGAN in batches → paste →
encode, with decoding and encoding in their own threads behind bounded queues, so memory stays flat whatever the
video's length.

Frames where no chosen face is found go to the encoder as the decoder gave them (pixel for pixel with a
lossless codec). Each track keeps its ghost mask settings and its reference match, and its 5 keypoints are
averaged over ±``smooth_window`` frames (utils.inference.tracking). Edge inpainting (SDXL) is not run on video
frames. The NSFW classifier sees one target frame every ``nsfw_check_seconds`` of video, and the same output
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
from utils.inference.selection import (
    FaceSelection,
    cosine_similarities,
    match_references,
    pick_by_index,
)
from utils.inference.swap import FaceInImage, FaceSwapper
from utils.inference.tracking import FaceTracker, KeypointSmoother
from utils.inference.video_output import VideoWriter

logger = logging.getLogger(__name__)

# A track's faces are compared with the reference photos on its first frame and again every this many frames
# (the similarities are averaged), rather than on every frame.
REFERENCE_RECHECK_FRAMES = 12


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
class SourceFace:
    """A source face ready for the generator: the aligned face (with landmarks for ghost) and its identity."""

    face: FaceInImage
    identity: torch.Tensor  # [1, 512] float32 on the swapper's device


@dataclass
class VideoStats:
    """What a video swap did."""

    frames: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Chosen:
    """A face of a frame that will be replaced."""

    track_id: int
    box: np.ndarray
    keypoints: np.ndarray
    source_index: int


@dataclass
class _Pending:
    frame: DecodedFrame
    chosen: list[_Chosen]
    check_nsfw: bool


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


class _VideoSwap:
    """The state of one video swap: tracks, their reference matches and mask settings, the NSFW sampling."""

    def __init__(self, swapper: FaceSwapper, sources: list[SourceFace], selection: FaceSelection,
                 reference_embeddings: np.ndarray | None, options: VideoOptions) -> None:
        self.swapper, self.sources, self.selection, self.options = swapper, sources, selection, options
        self.references = reference_embeddings
        self.tracker = FaceTracker()
        self.smoother = KeypointSmoother(options.smooth_window)
        self.ghost_settings: dict[tuple[int, int], Any] = {}
        self.similarities: dict[int, tuple[np.ndarray, int, int]] = {}  # track → (sum, count, frame last checked)
        self.next_nsfw_check = 0.0
        self.stats = VideoStats()

    # ------------------------------------------------------------------------------------ per decoded batch

    def detect(self, frames: list[DecodedFrame]) -> list[tuple[_Pending, dict[int, np.ndarray]]]:
        """Detect, track and choose the faces of decoded frames; returns the frames the smoother released."""
        check = [self._nsfw_due(frame) for frame in frames]
        for frame, due in zip(frames, check):
            if due:
                self.swapper.check_nsfw(frame.image, f"target video frame {frame.index}")
        released = []
        for frame, faces, due in zip(frames, self.swapper.detect_frames([frame.image for frame in frames]), check):
            boxes = np.array([face.box for face in faces], dtype=np.float32).reshape(-1, 4)
            track_ids = self.tracker.update(boxes)
            chosen = self._choose(frame, faces, track_ids)
            keypoints = {face.track_id: face.keypoints for face in chosen}
            released.extend(self.smoother.push(_Pending(frame, chosen, due), keypoints))
        return released

    def _nsfw_due(self, frame: DecodedFrame) -> bool:
        if frame.index > 0 and frame.seconds < self.next_nsfw_check:
            return False
        self.next_nsfw_check = frame.seconds + self.options.nsfw_check_seconds
        return True

    def _choose(self, frame: DecodedFrame, faces: list, track_ids: list[int]) -> list[_Chosen]:
        def chosen(index: int, source: int) -> _Chosen:
            face = faces[index]
            return _Chosen(track_ids[index], np.asarray(face.box, np.float32),
                           np.asarray(face.keypoints, np.float32), source)

        if self.references is None:
            return [chosen(index, source) for index, source in pick_by_index(len(faces), self.selection)]
        if not faces:
            return []
        self._update_similarities(frame, faces, track_ids)
        mean = np.array([self.similarities[track][0] / self.similarities[track][1] for track in track_ids])
        matches = match_references(mean.reshape(len(faces), -1), self.selection.similarity_th)
        return [chosen(index, source) for index, source in enumerate(matches) if source is not None]

    def _update_similarities(self, frame: DecodedFrame, faces: list, track_ids: list[int]) -> None:
        """Embed the faces whose track is new or due for a re-check; add their similarities to the track's."""
        due = [index for index, track in enumerate(track_ids)
               if track not in self.similarities
               or frame.index - self.similarities[track][2] >= REFERENCE_RECHECK_FRAMES]
        if not due:
            return
        crops = [self.swapper.align(frame.image, np.asarray(faces[index].box, np.float32),
                                    np.asarray(faces[index].keypoints, np.float32)).face for index in due]
        embeddings = self.swapper.embed_batch(crops).cpu().numpy()
        for index, similarity in zip(due, cosine_similarities(embeddings, self.references)):
            total, count, _ = self.similarities.get(track_ids[index], (0.0, 0, 0))
            self.similarities[track_ids[index]] = (total + similarity, count + 1, frame.index)

    # ------------------------------------------------------------------------------------ per swap batch

    def swap(self, pending: list[tuple[_Pending, dict[int, np.ndarray]]]) -> Iterator[tuple[av.VideoFrame, int]]:
        """The output frames of smoothed pending frames, in order (input frames where nothing is replaced)."""
        swapper = self.swapper
        jobs = []
        for item, keypoints in pending:
            for face in item.chosen:
                target = swapper.align(item.frame.image, face.box, keypoints[face.track_id])
                if swapper.options.uses_landmarks:
                    swapper.add_landmarks(target)
                jobs.append((item, face, target))
        faces: list[np.ndarray] = []
        if jobs:
            identities = torch.cat([self.sources[face.source_index].identity for _, face, _ in jobs])
            faces = swapper.generate_batch([target.face for _, _, target in jobs], identities)
            if swapper.options.enhance_output:
                faces = swapper.enhance_batch(faces)
        by_frame: dict[int, list] = {}
        for (item, face, target), swapped in zip(jobs, faces):
            by_frame.setdefault(item.frame.index, []).append((face, target, swapped))
        for item, _ in pending:
            yield self._output_frame(item, by_frame.get(item.frame.index, [])), item.frame.rotation

    def _output_frame(self, item: _Pending, pasted: list) -> av.VideoFrame:
        frame = item.frame
        self.stats.frames += 1
        if not pasted:
            return frame.frame
        image = frame.image
        for face, target, swapped in pasted:
            source = self.sources[face.source_index].face
            image, _ = self.swapper.paste(swapped, source, target, image=image,
                                          ghost_settings=self._ghost_settings(face, source, target))
        if item.check_nsfw and self.swapper.options.check_output_nsfw:
            self.swapper.check_nsfw(image, f"swapped video frame {frame.index}")
        self.stats.frames_swapped += 1
        self.stats.faces_swapped += len(pasted)
        output = av.VideoFrame.from_ndarray(rotate_stored(image, frame.rotation), format="bgr24")
        output.pts, output.time_base = frame.frame.pts, frame.frame.time_base
        return output

    def _ghost_settings(self, face: _Chosen, source: FaceInImage, target: FaceInImage) -> Any:
        """The ghost mask settings of the track, chosen on its first frame (so the mask does not flicker)."""
        if self.swapper.options.paste_back_mode != "ghost":
            return None
        from utils.paste_back import ghost_mask_settings, jaw_offsets

        key = (face.track_id, face.source_index)
        if key not in self.ghost_settings:
            offset = jaw_offsets(source.landmarks, target.landmarks)[2]
            self.ghost_settings[key] = ghost_mask_settings(offset)
        return self.ghost_settings[key]


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
    state = _VideoSwap(swapper, sources, selection, reference_embeddings, options)
    queue_size = 2 * batch_size + options.smooth_window
    reader = _BackgroundReader(decode_frames(container, info, target_path), queue_size)
    encoder = _BackgroundWriter(writer, queue_size)
    try:
        with torch.inference_mode(), swapper.weights_resident():
            ready: list = []
            for frames in _chunks(reader, batch_size):
                ready.extend(state.detect(frames))
                while len(ready) >= batch_size:
                    _write(state.swap(ready[:batch_size]), encoder, state, info.frame_count, progress)
                    del ready[:batch_size]
            ready.extend(state.smoother.flush())
            _write(state.swap(ready), encoder, state, info.frame_count, progress)
        encoder.close()
    except BaseException:
        reader.stop()
        encoder.abort()
        raise
    finally:
        reader.stop()
        container.close()
    state.stats.timings = {**swapper.timings, "read": reader.seconds, "write": encoder.seconds}
    return state.stats


def _write(frames: Iterable[tuple[av.VideoFrame, int]], encoder: _BackgroundWriter, state: _VideoSwap,
           total: int | None, progress: Callable[[int, int | None], None] | None) -> None:
    for frame, rotation in frames:
        encoder.put(frame, rotation)
        if progress is not None:
            progress(state.stats.frames, total)
