"""Live streams: frames swapped one at a time as they arrive, by the frame pipeline in causal mode.

``open_stream(...)`` prepares the sources once and returns a ``FrameStream`` whose ``swap(image, seconds)`` gives
the swapped frame at once: the smoothing looks only at past frames, so nothing waits for the future, and the
NSFW classifier samples the stream as it does a video (a flagged frame raises NSFWContentError).
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from utils.errors import GhostError
from utils.inference.pipeline import Frame, FramePipeline, SourceFace
from utils.inference.selection import FaceSelection
from utils.inference.swap import FaceSwapper


@dataclass(frozen=True)
class StreamOptions:
    """How a live stream is swapped; field names are live.py's flags."""

    smooth_window: int = 2  # each face's keypoints averaged with up to N earlier frames of its track; 0 = off
    nsfw_check_seconds: float = 1.0  # one NSFW-checked frame (and its output) per this much stream time
    enhance_every: int = 1  # GFPGAN (--enhance_output) on every Nth frame only; the others keep the raw face
    detection_upscale: bool = False  # scale frames smaller than --detection_max_size up before detection

    def __post_init__(self) -> None:
        if self.smooth_window < 0:
            raise GhostError(f"--smooth_window counts frames (0 = off); got {self.smooth_window}")
        if self.nsfw_check_seconds <= 0:
            raise GhostError(f"--nsfw_check_seconds must be positive; got {self.nsfw_check_seconds}")
        if self.enhance_every < 1:
            raise GhostError(f"--enhance_every must be at least 1; got {self.enhance_every}")


STREAM_HELP = {
    "smooth_window": "average each face's keypoints with up to N earlier frames of its track (causal: no frame "
                     "waits for later ones); 0 = off",
    "nsfw_check_seconds": "the NSFW classifier checks one camera frame (and its output) per this many seconds",
    "enhance_every": "with --enhance_output, run GFPGAN on every Nth frame only (GFPGAN is the slowest stage)",
    "detection_upscale": "scale frames smaller than --detection_max_size up before detection (slower)",
}


class FrameStream:
    """Swaps frames one at a time (see the module doc); ``close()`` (or ``with``) hands the weights back."""

    def __init__(self, swapper: FaceSwapper, sources: Sequence[SourceFace], selection: FaceSelection,
                 references: np.ndarray | None, options: StreamOptions) -> None:
        self.swapper = swapper
        self.pipeline = FramePipeline(swapper, sources, selection, references, upscale=options.detection_upscale,
                                      smooth_window=options.smooth_window, causal=True,
                                      nsfw_seconds=options.nsfw_check_seconds, enhance_every=options.enhance_every)
        self.frames = 0
        self._resources = contextlib.ExitStack()
        self._resources.enter_context(swapper.weights_resident())

    def swap(self, image: np.ndarray, seconds: float) -> np.ndarray:
        """The swapped ``H×W×3 uint8 BGR`` frame of ``image`` taken at ``seconds`` into the stream."""
        with torch.inference_mode():
            (result,) = self.pipeline.push([Frame(image, self.frames, seconds)])
        self.frames += 1
        return result.image

    def close(self) -> None:
        self._resources.close()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_stream(swapper: FaceSwapper, source_paths: Sequence[str | Path], selection: FaceSelection,
                options: StreamOptions) -> FrameStream:
    """Prepare the sources (and reference photos) once and return the stream that swaps frames into them.

    Raises NoFaceFoundError for a source photo without a face, and our other GhostErrors with a message.
    """
    from utils.inference.run import prepare_sources, reference_embeddings

    sources = [Path(path) for path in source_paths]
    selection.check_sources(len(sources))
    source_faces = prepare_sources(swapper, sources)
    references = reference_embeddings(swapper, [Path(path) for path in selection.reference_face_paths])
    return FrameStream(swapper, source_faces, selection, references, options)
