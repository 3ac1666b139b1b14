"""Running the per-image pipeline over a dataset: restartable done-markers, worker shares, the summary."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from utils.errors import AlignmentError, FaceBoxError, GhostError, ImageReadError, OutputPathError
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
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text)
        partial.replace(path)
    except OSError as error:
        raise OutputPathError(path, error.strerror or str(error)) from None


def failure_reason(error: Exception) -> str:
    """The summary key of an image that raised: its kind of failure, else the exception's class name."""
    if isinstance(error, FaceBoxError):
        return error.reason
    if isinstance(error, ImageReadError):
        return "unreadable_image"
    if isinstance(error, AlignmentError):
        return "alignment_failed"
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return "out_of_memory"
    return type(error).__name__


def describe_failure(error: Exception) -> str:
    return str(error) if isinstance(error, GhostError) else f"{type(error).__name__}: {error}"


def record_failure(image: SourceImage, error: Exception, options: PreprocessOptions, summary: Summary) -> None:
    """Count, log and mark done an image that raised (or stop the run with one GhostError under ``stop_if_error``)."""
    reason, message = failure_reason(error), describe_failure(error)
    if options.stop_if_error:
        raise GhostError(f"stopped at {image.key} (--stop_if_error): {message}") from error
    logger.warning("skipping %s (%s): %s", image.key, reason, message)
    logger.debug("traceback of %s", image.key, exc_info=(type(error), error, error.__traceback__))
    summary.failures[reason] += 1
    write_marker(done_marker(options, image), f"failed ({reason}): {message}\n")


def record_success(image: SourceImage, image_summary: Summary, options: PreprocessOptions, summary: Summary) -> None:
    """Add a finished image's counts to ``summary`` and write its done-marker (after all of its files)."""
    summary.add(image_summary)
    write_marker(done_marker(options, image), f"faces kept: {image_summary.faces_kept}\n")


def process_one(image: SourceImage, processor: ImageProcessor, summary: Summary) -> None:
    """Process one image that is not marked done yet, then mark it done (a failure too, with its reason).

    Any exception of the image (a corrupt file, an absurd detection, a model running out of memory) skips
    that image, like the original, unless ``stop_if_error``; then the run stops with one GhostError. An
    interrupt, and outputs that cannot be written (OutputPathError), stop the run: they are not the image's fault.
    """
    image_summary = Summary()
    try:
        processor.process(image, image_summary)
    except OutputPathError:
        processor.discard_outputs()
        raise
    except Exception as error:  # noqa: BLE001 - one image never ends the run (unless --stop_if_error)
        processor.discard_outputs()  # no half-written image: its faces are all there or none
        record_failure(image, error, processor.options, summary)
        return
    record_success(image, image_summary, processor.options, summary)


def run(images: Iterable[SourceImage], processor: ImageProcessor, total: int | None = None,
        summary: Summary | None = None) -> Summary:
    """Process every image not yet marked done (:func:`process_one`), counting into ``summary`` (new by default)."""
    from tqdm import tqdm

    summary = Summary() if summary is None else summary
    for image in tqdm(images, total=total, desc="images", unit="img"):
        if done_marker(processor.options, image).exists():
            summary.images_already_done += 1
            continue
        summary.images_read += 1
        process_one(image, processor, summary)
    return summary


def describe_run(options: PreprocessOptions) -> str:
    return (f"worker {options.worker_index + 1}/{options.num_workers_total}, "
            f"{options.number_of_variants_per_face if options.retargeting else 0} variants per face, "
            f"align {options.align_mode} {options.final_crop_size}px")
