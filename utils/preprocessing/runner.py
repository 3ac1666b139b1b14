"""Running the per-image pipeline over a dataset: restartable done-markers, worker shares, the summary."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2

from utils.errors import GhostError
from utils.preprocessing.options import PreprocessOptions
from utils.preprocessing.pipeline import ImageProcessor, SourceImage, Summary

logger = logging.getLogger(__name__)

DONE_FOLDER = ".done"


def partition(items: Sequence[Any], num_workers_total: int, worker_index: int) -> list[Any]:
    """The share of worker ``worker_index``: every ``num_workers_total``-th item of the sorted input."""
    return [item for index, item in enumerate(items) if index % num_workers_total == worker_index]


def done_marker(options: PreprocessOptions, image: SourceImage) -> Path:
    return options.output_dir_resized / image.output_subdir / DONE_FOLDER / f"{image.name}.done"


def write_marker(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def run(images: Iterable[SourceImage], processor: ImageProcessor, total: int | None = None) -> Summary:
    """Process every image not yet marked done; a failing image is logged and skipped unless stop_if_error."""
    from tqdm import tqdm

    options = processor.options
    summary = Summary()
    for image in tqdm(images, total=total, desc="images", unit="img"):
        marker = done_marker(options, image)
        if marker.exists():
            summary.images_already_done += 1
            continue
        summary.images_read += 1
        image_summary = Summary()
        try:
            processor.process(image, image_summary)
        except (GhostError, ValueError, cv2.error) as error:
            if options.stop_if_error:
                raise
            logger.warning("skipping %s: %s", image.key, error)
            summary.images_failed += 1
            summary.rejected["unreadable_or_failed"] += 1
            write_marker(marker, f"failed: {error}\n")
            continue
        summary.add(image_summary)
        write_marker(marker, f"faces kept: {image_summary.faces_kept}\n")
    return summary


def describe_run(options: PreprocessOptions) -> str:
    return (f"worker {options.worker_index + 1}/{options.num_workers_total}, "
            f"{options.number_of_variants_per_face if options.retargeting else 0} variants per face, "
            f"align {options.align_mode} {options.final_crop_size}px")


# --- command lines -------------------------------------------------------------------------------------------
