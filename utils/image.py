"""The one place where images change representation.

Conventions at module boundaries:
* arrays read from or written to files: ``H×W×3 uint8 BGR`` (OpenCV order);
* tensors given to networks: ``float32 N×3×H×W RGB in [-1, 1]`` unless a docstring says otherwise.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from utils.errors import GhostError, ImageReadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


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


def write_image(path: str | Path, image: np.ndarray, *, protect: tuple[str | Path, ...] = ()) -> Path:
    """Write a ``H×W×3 uint8 BGR`` image, creating the parent folder; refuse to overwrite ``protect`` files.

    The file is written next to its destination first and then renamed, so a crash never leaves a
    half-written image behind.
    """
    path = Path(path)
    for protected in protect:
        if Path(protected).exists() and path.exists() and path.resolve() == Path(protected).resolve():
            raise GhostError(f"refusing to overwrite the input file {path}; choose another output path")
    extension = path.suffix.lower() or ".png"
    ok, encoded = cv2.imencode(extension, image)
    if not ok:
        raise GhostError(f"cannot encode an image as {extension!r} for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    encoded.tofile(str(partial))
    partial.replace(path)
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
