"""The one place where images change representation.

Conventions at module boundaries:
* arrays read from or written to files: ``H×W×3 uint8 BGR`` (OpenCV order);
* tensors given to networks: ``float32 N×3×H×W RGB in [-1, 1]`` unless a docstring says otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from utils.errors import FaceBoxError, GhostError, ImageReadError, OutputPathError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# A face box with a side over this many times the image's long side is no face of that image. Faces cut by
# the border stay far below it; a crop around such a box (FAN's window is 200/195 × (width + height)
# pixels) would ask for gigabytes. Untrained stand-in weights and, rarely, real ones produce such boxes.
MAX_FACE_BOX_TO_IMAGE = 4.0


def to_bgr_uint8(image: np.ndarray, source: str | Path = "image") -> np.ndarray:
    """Bring a decoded image to ``H×W×3 uint8 BGR``: grey is repeated, alpha dropped, 16-bit scaled down."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(image * 255.0, 0, 255).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageReadError(Path(source), f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ImageReadError(Path(source), f"unsupported image shape {image.shape}")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``H×W×3 uint8 BGR``, with a clear error for missing or undecodable files."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "it is a folder, not an image file")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ImageReadError(path, "the file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(path, "not a supported image format (or the file is corrupt)")
    return to_bgr_uint8(image, path)


def output_folder_problem(folder: str | Path) -> str | None:
    """Why files cannot be written in ``folder`` (created when missing), or None; nothing is created."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the folder {existing} is not writable"
    return None


def check_output_folder(folder: str | Path) -> None:
    """Raise OutputPathError unless files can be written in ``folder`` (checked before any work starts)."""
    problem = output_folder_problem(folder)
    if problem is not None:
        raise OutputPathError(Path(folder), problem)


def check_output_file(path: str | Path) -> None:
    """Raise OutputPathError unless ``path`` can be written as a file (not a folder, in a writable folder)."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(path, "it is a folder; give a file name")
    problem = output_folder_problem(path.parent)
    if problem is not None:
        raise OutputPathError(path, problem)


def write_image(path: str | Path, image: np.ndarray, *, protect: tuple[str | Path, ...] = ()) -> Path:
    """Write a ``H×W×3 uint8 BGR`` image, creating the parent folder; refuse to overwrite ``protect`` files.

    The file is written next to its destination first and then renamed, so a crash never leaves a
    half-written image behind. Raises OutputPathError (one line for the user) when it cannot be written.
    """
    path = Path(path)
    for protected in protect:
        if Path(protected).exists() and path.exists() and path.resolve() == Path(protected).resolve():
            raise GhostError(f"refusing to overwrite the input file {path}; choose another output path")
    check_output_file(path)
    extension = path.suffix.lower() or ".png"
    ok, encoded = cv2.imencode(extension, image)
    if not ok:
        raise GhostError(f"cannot encode an image as {extension!r} for {path}")
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded.tofile(str(partial))
        partial.replace(path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OutputPathError(path, error.strerror or str(error)) from None
    return path


def bgr_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``H×W×3 uint8 BGR`` → ``1×3×H×W float32 RGB in [-1, 1]`` (pixel/255 in float64, then float32)."""
    rgb = (image / 255.0).astype(np.float32)[:, :, ::-1]
    normalised = (rgb - 0.5) / 0.5
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None]


def tensor_to_uint8_truncated(tensor: torch.Tensor) -> np.ndarray:
    """Generator output ``[-1, 1]`` → uint8 ``H×W×C`` by truncation, channels kept as given.

    A 4-D batch keeps its first 8 images, placed side by side along the width.
    """
    array = tensor.detach().float().cpu().numpy() * 0.5 + 0.5
    if array.ndim == 4:
        array = np.concatenate(list(array[:8].transpose(0, 2, 3, 1)), axis=1)
    else:
        array = array.transpose(1, 2, 0)
    return np.clip(array * 255, 0, 255).astype(np.uint8)


def tensor_to_bgr_rounded(tensor: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """``[1,]3×H×W RGB`` in ``value_range`` → ``H×W×3 uint8 BGR`` with clamping and round-half-to-even."""
    low, high = value_range
    array = tensor.detach().squeeze(0).float().cpu().clamp_(low, high)
    array = ((array - low) / (high - low)).numpy().transpose(1, 2, 0)
    array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    return (array * 255.0).round().astype(np.uint8)


def tensor_to_bgr_uint8(tensor: torch.Tensor) -> np.ndarray:
    """``1×3×H×W RGB in [-1, 1]`` → ``H×W×3 uint8 BGR`` by truncation (the generator-output convention)."""
    return np.ascontiguousarray(tensor_to_uint8_truncated(tensor[:1])[:, :, ::-1])


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (sorted), by extension."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def face_box_problem(box: np.ndarray, image_shape: tuple[int, ...], require_extent: bool = True) -> str | None:
    """Why ``box`` (x1, y1, x2, y2 pixels) cannot be a face of an image of ``image_shape`` (H, W, ...), or None.

    The reasons: ``box_not_finite``; ``box_inverted`` (x2 <= x1 or y2 <= y1, checked when ``require_extent``);
    ``box_far_larger_than_image`` (a side over MAX_FACE_BOX_TO_IMAGE times the long side); ``box_outside_image``.
    """
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        return "box_not_finite"
    x1, y1, x2, y2 = box
    if require_extent and (x2 <= x1 or y2 <= y1):
        return "box_inverted"
    height, width = image_shape[:2]
    if max(x2 - x1, y2 - y1) > MAX_FACE_BOX_TO_IMAGE * max(height, width):
        return "box_far_larger_than_image"
    if x2 < 0 or y2 < 0 or x1 >= width or y1 >= height:
        return "box_outside_image"
    return None


def check_face_box(box: np.ndarray, image_shape: tuple[int, ...], what: str = "face box") -> None:
    """Raise FaceBoxError when :func:`face_box_problem` finds one (before a crop asks for absurd memory)."""
    problem = face_box_problem(box, image_shape)
    if problem is not None:
        raise FaceBoxError(problem, f"unusable {what} {np.asarray(box).tolist()} in a {image_shape[1]}x"
                                    f"{image_shape[0]} image: {problem.replace('_', ' ')}")


def face_points_problem(points: np.ndarray, image_shape: tuple[int, ...]) -> str | None:
    """Why ``N×2`` face points (keypoints, landmarks) cannot belong to an image of ``image_shape``, or None.

    :func:`face_box_problem` of their bounding box with ``points_`` reasons (``points_not_finite``,
    ``points_far_larger_than_image``, ``points_outside_image``); points all in one place are let through
    (the alignment reports those itself).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    box = np.concatenate([points.min(axis=0), points.max(axis=0)]) if len(points) else np.full(4, np.nan)
    problem = face_box_problem(box, image_shape, require_extent=False)
    return None if problem is None else problem.replace("box_", "points_", 1)


def check_face_points(points: np.ndarray, image_shape: tuple[int, ...], what: str = "face points") -> None:
    """Raise FaceBoxError when :func:`face_points_problem` finds one (before a crop around them)."""
    problem = face_points_problem(points, image_shape)
    if problem is not None:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        raise FaceBoxError(problem, f"unusable {what} in a {image_shape[1]}x{image_shape[0]} image (x from "
                                    f"{points[:, 0].min():.6g} to {points[:, 0].max():.6g}, y from "
                                    f"{points[:, 1].min():.6g} to {points[:, 1].max():.6g}): "
                                    f"{problem.replace('_', ' ')}")


def detection_problem(face: Any, image_shape: tuple[int, ...]) -> str | None:
    """Why a detection (``.box`` and ``.keypoints``, image pixels) cannot be a face of the image, or None."""
    return face_box_problem(face.box, image_shape) or face_points_problem(face.keypoints, image_shape)
