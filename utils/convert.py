"""Re-encoding images as .jpg or .png, one file or a folder tree (the library side of convert.py)."""
from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from utils.batch_files import BatchReport, collect_sources, plan_batch
from utils.errors import GhostError
from utils.image import read_image, write_image

logger = logging.getLogger(__name__)

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
    if output_extension not in CONVERT_EXTENSIONS:
        raise GhostError(
            f"unsupported output extension {output_extension!r}; choose one of {', '.join(CONVERT_EXTENSIONS)}"
        )
    sources, source_root = collect_sources(source_image, source_folder)
    plan = plan_batch(sources, source_root, output_folder, output_extension, overwrite)
    report = BatchReport(skipped_existing=len(plan.skipped_existing))
    report.failed.extend((item.source, reason) for item, reason in plan.refused)
    logger.info("converting %d image(s), %d already present", len(plan.items), len(plan.skipped_existing))
    for item in tqdm(plan.items, desc="convert", unit="image", disable=not plan.items):
        try:
            image = read_image(item.source)
            report.written.append(write_image(item.output, image, protect=(item.source,)))
        except GhostError as error:
            logger.warning("%s", error)
            report.failed.append((item.source, str(error)))
    return report
