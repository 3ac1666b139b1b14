"""The swap of a live stream: utils.inference.stream's FrameStream (the frame pipeline in causal mode), opened with
every model loaded first, so the first camera frame does not wait for one to load.

``swap(image, seconds)`` returns the swapped frame at once (smoothing looks only at past frames), samples frames
for the NSFW check and raises NSFWContentError on a flagged one; ``close()`` hands the weights back.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from utils.errors import GhostError
from utils.inference.selection import FaceSelection
from utils.inference.stream import FrameStream, StreamOptions, open_stream
from utils.inference.swap import FaceSwapper

FrameSwap = Callable[[np.ndarray, float], np.ndarray]  # (H×W×3 uint8 BGR frame, stream seconds) -> swapped frame


class LiveStream(Protocol):
    """What the live loop needs of a stream: utils.inference.stream.FrameStream, or a test's stand-in."""

    def swap(self, image: np.ndarray, seconds: float) -> np.ndarray: ...

    def close(self) -> None: ...


def open_live_stream(swapper: FaceSwapper, source_paths: Sequence[str | Path], selection: FaceSelection,
                     options: StreamOptions) -> FrameStream:
    """The causal stream swapping ``source_paths``' faces into ``selection``'s faces of each camera frame.

    Raises our GhostErrors (a source photo without a face, unpaired reference photos) before any frame.
    """
    if swapper.options.paste_back_mode == "none":
        raise GhostError("--paste_back_mode none gives the 256×256 face only; a live stream needs another mode")
    swapper.load_models()
    return open_stream(swapper, source_paths, selection, options)
