"""The swap of a live stream, one frame at a time: ``FrameStream.swap(image, seconds)`` returns the swapped frame at
once (causal: it only ever looks at past frames), samples frames for the NSFW check and raises NSFWContentError on
a flagged one; ``close()`` lets go of its state.

:func:`open_stream` builds it from a FaceSwapper (models load once and stay resident for the stream), the source
photos and the face selection. Its keypoints are smoothed causally (an exponential average over the track's past
frames), GFPGAN runs on every ``enhance_every``-th swapped frame, and frames without a chosen face pass unchanged.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from utils.errors import GhostError
from utils.inference.run import prepare_sources, reference_embeddings
from utils.inference.selection import FaceSelection, pick_by_index, pick_by_reference
from utils.inference.swap import FaceSwapper
from utils.inference.tracking import FaceTracker
from utils.live.options import LiveOptions

logger = logging.getLogger(__name__)

FrameSwap = Callable[[np.ndarray, float], np.ndarray]  # (H×W×3 uint8 BGR frame, stream seconds) -> swapped frame
KEYPOINT_SMOOTHING = 0.5  # weight of the newest keypoints in each track's causal exponential average


class FrameStream(Protocol):
    """A live swap over consecutive frames of one camera."""

    def swap(self, image: np.ndarray, seconds: float) -> np.ndarray: ...

    def close(self) -> None: ...


class SwapperStream:
    """:class:`FrameStream` over a FaceSwapper: detect, pick, smooth (causally), generate, enhance, paste."""

    def __init__(self, swapper: FaceSwapper, source_paths: Sequence[str | Path], selection: FaceSelection,
                 options: LiveOptions) -> None:
        if swapper.options.paste_back_mode == "none":
            raise GhostError("--paste_back_mode none gives the 256×256 face only; a live stream needs another mode")
        selection.check_sources(len(source_paths))
        self.swapper, self.selection, self.options = swapper, selection, options
        # The weights stay mapped for the whole stream (each frame runs every model); frames may come from
        # different threads (the web page's workers), so inference mode is entered per frame, not here.
        self._resources = ExitStack()
        self._resources.enter_context(swapper.weights_resident())
        try:
            swapper.load_models()  # now, not on the first frame: that frame would wait seconds
            with torch.inference_mode():
                self.sources = prepare_sources(swapper, [Path(path) for path in source_paths])
                self.references = reference_embeddings(swapper, [Path(path) for path in
                                                                 selection.reference_face_paths])
        except BaseException:
            self._resources.close()
            raise
        self.tracker = FaceTracker()
        self.keypoints: dict[int, np.ndarray] = {}
        self.swapped_frames = 0
        self.next_nsfw_check: float | None = None

    def swap(self, image: np.ndarray, seconds: float) -> np.ndarray:
        """The swapped H×W×3 uint8 BGR frame (``image`` itself when no chosen face is in it)."""
        with torch.inference_mode():
            return self._swap(image, seconds)

    def _swap(self, image: np.ndarray, seconds: float) -> np.ndarray:
        swapper = self.swapper
        check_nsfw = self.next_nsfw_check is None or seconds >= self.next_nsfw_check
        if check_nsfw:
            self.next_nsfw_check = seconds + self.options.nsfw_check_seconds
            swapper.check_nsfw(image, f"camera frame at {seconds:.1f} s")
        faces = swapper.detect_frames([image])[0]
        boxes = np.array([face.box for face in faces], dtype=np.float32).reshape(-1, 4)
        tracks = self.tracker.update(boxes)
        previous, self.keypoints = self.keypoints, {}  # only the tracks of this frame keep their past
        picks = self._pick(image, faces)
        if not picks:
            return image
        enhance = swapper.options.enhance_output and self.swapped_frames % self.options.enhance_every == 0
        self.swapped_frames += 1
        output = image
        for index, source_index in picks:
            keypoints = self._smoothed(tracks[index], np.asarray(faces[index].keypoints, np.float32), previous)
            target = swapper.align(image, np.asarray(faces[index].box, np.float32), keypoints)
            if swapper.options.uses_landmarks:
                swapper.add_landmarks(target)
            source = self.sources[source_index]
            face = swapper.generate(target.face, source.identity)
            if enhance:
                face = swapper.enhance(face)
            output, _ = swapper.paste(face, source.face, target, image=output)
        if check_nsfw and swapper.options.check_output_nsfw:
            swapper.check_nsfw(output, f"swapped camera frame at {seconds:.1f} s")
        return output

    def _pick(self, image: np.ndarray, faces: list) -> list[tuple[int, int]]:
        if self.references is None:
            return pick_by_index(len(faces), self.selection)
        if not faces:
            return []
        crops = [self.swapper.align(image, np.asarray(face.box, np.float32),
                                    np.asarray(face.keypoints, np.float32)).face for face in faces]
        embeddings = self.swapper.embed_batch(crops).cpu().numpy()
        return pick_by_reference(embeddings, self.references, self.selection.similarity_th)

    def _smoothed(self, track: int, keypoints: np.ndarray, previous: dict[int, np.ndarray]) -> np.ndarray:
        past = previous.get(track)
        smoothed = keypoints if past is None else (
            KEYPOINT_SMOOTHING * keypoints + (1 - KEYPOINT_SMOOTHING) * past).astype(np.float32)
        self.keypoints[track] = smoothed
        return smoothed

    def close(self) -> None:
        self._resources.close()
        self.keypoints.clear()


def open_stream(swapper: FaceSwapper, source_paths: Sequence[str | Path], selection: FaceSelection,
                options: LiveOptions) -> FrameStream:
    """A live stream swapping ``source_paths``' faces into ``selection``'s faces of each frame.

    Raises our GhostErrors (a source photo without a face, unpaired reference photos) before any frame.
    """
    return SwapperStream(swapper, source_paths, selection, options)
