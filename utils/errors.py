"""Typed errors that entry points turn into one clear line and a non-zero exit code."""
from __future__ import annotations

from pathlib import Path


class GhostError(Exception):
    """Base class of every error GhostV2 reports to a user (no traceback needed)."""


class WeightsNotFoundError(GhostError, FileNotFoundError):
    """A checkpoint file is missing; the message names the script that downloads it."""

    def __init__(self, path: Path, description: str, download_hint: str) -> None:
        self.path = Path(path)
        super().__init__(f"missing weights for {description}: {self.path} does not exist. {download_hint}")


class PathError(GhostError):
    """A problem with one file or folder: ``path`` names it, the message is ``<what> <path>: <reason>``."""

    what = "cannot use"

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.what} {self.path}: {reason}")


class CheckpointFormatError(PathError):
    """A checkpoint file exists but is not a readable safetensors file (truncated, pickle, ...)."""

    what = "cannot read checkpoint"


class CheckpointMismatchError(GhostError):
    """A checkpoint's keys or shapes do not match the module it is loaded into."""

    def __init__(
        self,
        path: Path | None,
        expected: str,
        missing: list[str],
        unexpected: list[str],
        wrong_shape: list[str],
        detail: str = "",
        limit: int = 5,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.missing, self.unexpected, self.wrong_shape = missing, unexpected, wrong_shape
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                shown = ", ".join(keys[:limit]) + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")
                parts.append(f"{label} keys: {shown}")
        source = "state dict" if self.path is None else str(self.path)
        message = f"checkpoint {source} does not match {expected}"
        if detail:
            message += f" ({detail})"
        super().__init__(message + ": " + "; ".join(parts))


class ImageReadError(PathError):
    """An input image is missing, empty, or not decodable."""

    what = "cannot read image"


class OutputPathError(PathError):
    """An output file or folder cannot be written (under a file, a folder given as a file, no permission)."""

    what = "cannot write"


class NoFaceFoundError(GhostError):
    """The detector found no face above the detection threshold."""


class AlignmentError(GhostError, ValueError):
    """Five keypoints, a crop size or an align mode that no alignment can use."""


class FaceBoxError(AlignmentError):
    """A face box (or a face's points) that cannot belong to the image: not finite, inverted, huge or outside it.

    ``reason`` is a short key for run summaries (``box_not_finite``, ``box_inverted``, ...).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class FaceIndexError(GhostError):
    """A requested face index is out of range for the faces found."""


class NSFWContentError(GhostError):
    """The NSFW classifier flagged an image; nothing is written."""


class DatasetError(GhostError):
    """A training or preprocessing dataset folder is missing, empty, or inconsistent."""
