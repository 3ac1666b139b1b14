"""Planning one-output-per-input batch jobs (align.py, convert.py): which files to do, where they go, what to skip.

Both tools mirror the source folder's structure under an output folder, skip outputs that already exist
unless asked to overwrite, and must never write over one of their inputs.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils.errors import GhostError, OutputPathError
from utils.image import check_output_folder, list_images, read_image, write_image

logger = logging.getLogger(__name__)

SAME_AS_SOURCE = "same_as_source"


@dataclass(frozen=True)
class BatchItem:
    """One input file and the output file it produces."""

    source: Path
    output: Path


@dataclass
class BatchPlan:
    """The files to process and those left out (with the reason), decided before any work starts."""

    items: list[BatchItem] = field(default_factory=list)
    skipped_existing: list[BatchItem] = field(default_factory=list)
    refused: list[tuple[BatchItem, str]] = field(default_factory=list)


@dataclass
class BatchReport:
    """What a batch run did: counts for the final log line and the exit code."""

    written: list[Path] = field(default_factory=list)
    skipped_existing: int = 0
    no_face: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the user."""
        parts = [f"{len(self.written)} written", f"{self.skipped_existing} already present (use --overwrite to redo)"]
        if self.no_face:
            parts.append(f"{len(self.no_face)} without a face")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


def collect_sources(
    source_image: str | Path | None, source_folder: str | Path | None
) -> tuple[list[Path], Path | None]:
    """The input files and the folder their relative paths are taken from (None for a single image).

    A single image wins over a folder (the original tool silently ignored ``--source_image`` while its
    folder default was set).
    """
    if source_image:
        path = Path(source_image)
        if path.is_dir():
            raise GhostError(f"source image {path} is a folder; pass it with --source_folder")
        if not path.is_file():
            raise GhostError(f"source image {path} does not exist")
        return [path], None
    if not source_folder:
        raise GhostError("give --source_image or --source_folder")
    folder = Path(source_folder)
    if folder.is_file():
        raise GhostError(f"source folder {folder} is a file; pass it with --source_image")
    if not folder.is_dir():
        raise GhostError(f"source folder {folder} does not exist")
    return list_images(folder, recursive=True), folder


def output_path_for(source: Path, source_root: Path | None, output_folder: Path, extension: str) -> Path:
    """``output_folder/<path relative to source_root>/<stem><extension>`` (``same_as_source`` keeps the suffix)."""
    relative = source.relative_to(source_root) if source_root is not None else Path(source.name)
    suffix = source.suffix if extension == SAME_AS_SOURCE else extension
    return output_folder / relative.parent / (relative.stem + suffix)


def plan_batch(
    sources: list[Path], source_root: Path | None, output_folder: str | Path, extension: str, overwrite: bool
) -> BatchPlan:
    """Map every source to its output, leaving out existing outputs (unless ``overwrite``) and unsafe ones.

    An output is refused when it is one of the inputs (e.g. converting a folder into itself) or when an
    earlier input of the batch already maps to it (``a.png`` and ``a.jpg`` both becoming ``a.jpg``).
    """
    output_folder = Path(output_folder)
    inputs = {source.resolve() for source in sources}
    plan = BatchPlan()
    claimed: dict[Path, Path] = {}
    for source in sources:
        item = BatchItem(source, output_path_for(source, source_root, output_folder, extension))
        resolved = item.output.resolve()
        if resolved in inputs:
            plan.refused.append((item, "the output would overwrite an input file"))
        elif resolved in claimed:
            plan.refused.append((item, f"{claimed[resolved]} already maps to the same output"))
        elif item.output.exists() and not overwrite:
            claimed[resolved] = source
            plan.skipped_existing.append(item)
        else:
            claimed[resolved] = source
            plan.items.append(item)
    for item, reason in plan.refused:
        logger.warning("skipping %s -> %s: %s", item.source, item.output, reason)
    return plan


def run_batch(
    source_image: str | Path | None,
    source_folder: str | Path | None,
    output_folder: str | Path,
    output_extension: str,
    allowed_extensions: Sequence[str],
    overwrite: bool,
    action: str,
    transform: Callable[[Path, np.ndarray], np.ndarray | None],
) -> BatchReport:
    """Read every planned input, pass it through ``transform`` and write what it returns.

    ``transform(source_path, image)`` gets ``H×W×3 uint8 BGR`` and returns the image to write, or None when
    the input has no face (reported, nothing written). An input that fails in any way (unreadable, a model
    out of memory) is reported and skipped; an output that cannot be written stops the batch (OutputPathError).
    """
    if output_extension not in allowed_extensions:
        raise GhostError(
            f"unsupported output extension {output_extension!r}; choose one of {', '.join(allowed_extensions)}"
        )
    sources, source_root = collect_sources(source_image, source_folder)
    check_output_folder(output_folder)
    plan = plan_batch(sources, source_root, output_folder, output_extension, overwrite)
    report = BatchReport(skipped_existing=len(plan.skipped_existing))
    report.failed.extend((item.source, reason) for item, reason in plan.refused)
    logger.info("%s: %d image(s) to do, %d already present", action, len(plan.items), len(plan.skipped_existing))
    for item in tqdm(plan.items, desc=action, unit="image", disable=not plan.items):
        try:
            result = transform(item.source, read_image(item.source))
            if result is None:
                report.no_face.append(item.source)
                continue
            report.written.append(write_image(item.output, result, protect=(item.source,)))
        except OutputPathError:
            raise
        except Exception as error:  # noqa: BLE001 - one input never ends the batch
            reason = str(error) if isinstance(error, GhostError) else f"{type(error).__name__}: {error}"
            logger.warning("skipping %s: %s", item.source, reason)
            report.failed.append((item.source, reason))
    return report
