"""The two dataset walkers: a flat Lagenda folder, and LAION-Face img2dataset shards."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from utils.errors import DatasetError, ImageReadError
from utils.image import list_images, read_image, to_bgr_uint8
from utils.preprocessing.laion_shards import Shard, iter_samples, list_shards, successful_rows
from utils.preprocessing.model_loading import PreprocessModels
from utils.preprocessing.options import PreprocessOptions
from utils.preprocessing.pipeline import ImageProcessor
from utils.preprocessing.runner import (
    DONE_FOLDER,
    SourceImage,
    Summary,
    describe_run,
    partition,
    run,
    write_marker,
)

logger = logging.getLogger(__name__)


def decode_image(data: bytes, source: str) -> np.ndarray:
    """Decode encoded image bytes to ``H×W×3 uint8 BGR``; a corrupt payload raises ImageReadError."""
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if decoded is None:
        raise ImageReadError(Path(source), "not a decodable image (corrupt or truncated)")
    return to_bgr_uint8(decoded, source)


ModelLoader = Callable[[], PreprocessModels]


def lagenda_files(lagenda_base_dir: str | Path, options: PreprocessOptions) -> list[Path]:
    """This worker's share of the image files of a flat folder, sorted (DatasetError for a wrong folder)."""
    folder = Path(lagenda_base_dir)
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DatasetError(f"Lagenda folder {folder} {state} (check --lagenda_base_dir)")
    files = list_images(folder, recursive=False)
    mine = partition(files, options.num_workers_total, options.worker_index)
    logger.info("%d images in %s, %d for %s", len(files), folder, len(mine), describe_run(options))
    return mine


def lagenda_image(path: Path) -> SourceImage:
    """A Lagenda photo: its key is the file name, its identity folders ``<stem>_<face>`` at the output root."""
    return SourceImage(path.name, "", path.stem, lambda: read_image(path))


def preprocess_lagenda(lagenda_base_dir: str | Path, options: PreprocessOptions, load: ModelLoader) -> Summary:
    """Process every image file of a folder (flat, sorted; this worker's share); the id is the file stem.

    The models come from ``load()``, called once the folder has been listed (a wrong folder costs no loading).
    """
    mine = lagenda_files(lagenda_base_dir, options)
    return run((lagenda_image(path) for path in mine), ImageProcessor(load(), options), total=len(mine))


def laion_shards(laion_face_base_dir: str | Path, part_indices: Sequence[int],
                 options: PreprocessOptions) -> list[Shard]:
    """This worker's share of the sorted shards of the requested splits (DatasetError for a missing split)."""
    shards = list_shards(laion_face_base_dir, part_indices)
    mine = partition(shards, options.num_workers_total, options.worker_index)
    logger.info("%d shards, %d for %s", len(shards), len(mine), describe_run(options))
    return mine


def shard_subdir(shard: Shard) -> str:
    """The shard's folder under the output roots: ``split_NNNNN/<shard name>``."""
    return f"{shard.split}/{shard.name}"


def shard_complete_marker(options: PreprocessOptions, shard: Shard) -> Path:
    """Written once every image of the shard is done; a restarted run skips the shard without opening it."""
    return options.output_dir_resized / shard_subdir(shard) / DONE_FOLDER / "shard.complete"


def shard_images(shard: Shard) -> Iterator[SourceImage]:
    """The shard's photos in tar order; raises DatasetError where the shard cannot be read any further."""
    subdir = shard_subdir(shard)
    for sample in iter_samples(shard):
        yield SourceImage(f"{subdir}/{sample.sample_id}", subdir, sample.sample_id,
                          lambda sample=sample: decode_image(sample.data, f"{shard.tar_path}:{sample.member}"))


def preprocess_laion(laion_face_base_dir: str | Path, part_indices: Sequence[int], options: PreprocessOptions,
                     load: ModelLoader) -> Summary:
    """Process the shards of the requested splits (this worker's share of the sorted shard list).

    The models come from ``load()``, called once the splits have been listed.
    """
    mine = laion_shards(laion_face_base_dir, part_indices, options)
    processor = ImageProcessor(load(), options)
    summary = Summary()
    for shard in mine:
        complete = shard_complete_marker(options, shard)
        if complete.exists():
            logger.info("shard %s already done", shard_subdir(shard))
            continue
        logger.info("shard %s", shard_subdir(shard))
        try:
            run(shard_images(shard), processor, total=successful_rows(shard), summary=summary)
        except DatasetError as error:  # the shard itself is damaged: skip the rest of it, not the run
            if options.stop_if_error:
                raise
            logger.warning("skipping the rest of shard %s: %s", shard_subdir(shard), error)
            summary.failures["unreadable_shard"] += 1
            continue
        write_marker(complete, "complete\n")
    return summary


def run_preprocessing(dataset: Callable[[PreprocessOptions, ModelLoader], Summary], options: PreprocessOptions,
                      paths: dict[str, str | None], device: str, weights_dir: str | Path | None) -> Summary:
    """Check the output folders, then run ``dataset``, which loads the models the (checked) options need.

    ``paths`` maps registry checkpoint names to explicit files (None: the registry's file under ``weights_dir``).
    """
    from utils.device import resolve_device
    from utils.image import check_output_folder
    from utils.preprocessing.model_loading import load_models

    for folder in options.output_folders():  # before minutes of model loading, and before writing anything
        check_output_folder(folder)
    return dataset(options, lambda: load_models(options, resolve_device(device), weights_dir, paths))
