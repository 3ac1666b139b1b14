"""Re-encoding images as .jpg or .png, one file or a folder tree (the library side of convert.py)."""
from __future__ import annotations

from pathlib import Path

from utils.batch_files import BatchReport, run_batch

CONVERT_EXTENSIONS = (".jpg", ".png")


def convert_images(
    output_folder: str | Path,
    source_image: str | Path | None = None,
    source_folder: str | Path | None = None,
    output_extension: str = ".jpg",
    overwrite: bool = False,
) -> BatchReport:
    """Decode every image and write it again with ``output_extension`` under ``output_folder``.

    Pixels are unchanged (``H×W×3 uint8 BGR`` in and out; grey/alpha/16-bit inputs are brought to that
    first); JPEG uses OpenCV's default quality. A folder's sub-folders are mirrored. Inputs are never
    written to. Files that cannot be decoded are reported and skipped.
    """
    return run_batch(source_image, source_folder, output_folder, output_extension, CONVERT_EXTENSIONS, overwrite,
                     "convert", lambda _source, image: image)
