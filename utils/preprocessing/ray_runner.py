"""Preprocessing on a Ray cluster (``--ray_address``): the same files, byte for byte, as one process.

Ray Data runs the pipeline as a stream::

    items (Lagenda files, or LAION shards)
      -> CPU tasks: skip done images, read, decode, size filter, shrink to 1280 (prepare_photo)
      -> model actors (PreprocessStage): RetinaFace, FAN, LivePortrait, GFPGAN, the aligners, loaded once
         per actor; each image is processed and written, then marked done, exactly as runner.process_one does
      -> the driver: per-image summaries added up; a LAION shard gets shard.complete once all of its images
         are back (ShardProgress), so a restarted run does not open it again.

Every image draws its randomness from ``--seed`` and its own key (pipeline.image_rng, GFPGAN's seeded noise),
and every image runs alone through the models, so neither the order nor the process changes a pixel. Ray
retries a task or an actor call whose worker died (on another node when the node is gone); the image it was
on is redone from scratch (files are written atomically, the done-marker last), so a retry writes the same
bytes. The reading is our own (laion_shards.iter_samples, utils.image.read_image) rather than Ray Data's
``read_webdataset``/``read_images``: it names samples by their ``SAMPLE_ID``, reads a damaged shard up to the
damage and decodes exactly as the single process does, which the byte-for-byte promise needs.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import DatasetError, GhostError
from utils.preprocessing.options import PreprocessOptions
from utils.preprocessing.pipeline import SourceImage, Summary, prepare_photo
from utils.preprocessing.runner import done_marker, record_failure, record_success, write_marker
from utils.ray_cluster import RayOptions, actor_plan, check_files_on_nodes, portable, ray_session, user_error

logger = logging.getLogger(__name__)

NO_PHOTO = np.zeros((0, 0, 3), np.uint8)  # the photo column of an image that needs no model
# Images per model call: one, so that a dead actor costs one image and the pool balances image by image.
IMAGES_PER_ACTOR_CALL = 1
LAGENDA_FILES_PER_TASK = 8
# Host memory a model actor reserves, so that Ray places no more actors on a node than its memory holds: on CPU,
# every preprocessing model's weights (2.0 GiB of RSS measured, all flags on) and one image's intermediates; on a
# GPU the weights live in GPU memory. Being a resource request the reading tasks do not make, it also keeps Ray
# Data from fusing the reading into the actors (where decoding would hold the GPU).
CPU_ACTOR_MEMORY = 3 * 1024**3
GPU_ACTOR_HOST_MEMORY = 1024**3


@dataclass(frozen=True)
class ModelSettings:
    """How an actor loads and runs the models: ``--device``, ``--weights_dir``, the per-model path flags, threads.

    ``torch_threads``: torch's CPU thread count. oneDNN splits a convolution differently for another count,
    which changes the last bits of its sums (and then, now and then, a pixel); the actors use the count of
    the machine that starts the run, so their files are that machine's single-process files.
    """

    device: str
    weights_dir: str | None
    paths: dict[str, str | None]
    torch_threads: int

    def required(self, options: PreprocessOptions) -> list[tuple[str, str]]:
        """``(description, path)`` of every weight file the options need, as the loaders will look for them."""
        from models.registry import CHECKPOINTS, checkpoint_path
        from utils.preprocessing.model_loading import required_checkpoints

        return [(CHECKPOINTS[name].description, str(self.paths.get(name) or checkpoint_path(name, self.weights_dir)))
                for name in required_checkpoints(options)]


# --- CPU tasks: reading, decoding, filtering ------------------------------------------------------------------


IMAGE_ROW = -1  # the shard_size of an image's row; a shard's last row gives its number of image rows


def prepared_row(image: SourceImage, options: PreprocessOptions, shard: str = "") -> dict[str, Any]:
    """One image's row for the model actors: ``photo`` (prepared ``H×W×3 uint8 BGR``) when models must see it.

    Images already marked done, unreadable ones and those below the size filter are finished here (marker
    and counts, as in the single process); their row only carries their summary.
    """
    summary = Summary()
    photo = NO_PHOTO
    if done_marker(options, image).exists():
        summary.images_already_done += 1
    else:
        summary.images_read += 1
        image_summary = Summary()
        try:
            prepared = prepare_photo(image.load(), options, image_summary)
        except Exception as error:  # noqa: BLE001 - one image never ends the run (unless --stop_if_error)
            try:
                record_failure(image, error, options, summary)
            except GhostError as stop:  # --stop_if_error, or an output that cannot be written
                raise portable(stop) from None
        else:
            if prepared is None:
                record_success(image, image_summary, options, summary)
            else:
                photo = prepared
    return {"key": image.key, "subdir": image.output_subdir, "name": image.name, "shard": shard,
            "shard_size": IMAGE_ROW, "photo": photo, "summary": summary.to_json()}


def read_lagenda_files(batch: dict[str, np.ndarray], options: PreprocessOptions) -> dict[str, Any]:
    """CPU task: the rows of a batch of Lagenda file paths."""
    from utils.preprocessing.datasets import lagenda_image

    rows = [prepared_row(lagenda_image(Path(path)), options) for path in batch["path"]]
    return {column: [row[column] for row in rows] for column in rows[0]}


def read_laion_shard(item: dict[str, Any], options: PreprocessOptions) -> Iterator[dict[str, Any]]:
    """CPU task: the rows of one shard, streamed, then the shard's own row: its number of image rows, and an
    ``unreadable_shard`` failure when the shard is damaged part-way (the rest of it is skipped, not the run)."""
    from utils.preprocessing.datasets import shard_images, shard_subdir
    from utils.preprocessing.laion_shards import Shard

    shard = Shard(item["split"], item["name"], Path(item["tar_path"]), None)
    subdir = shard_subdir(shard)
    summary, count = Summary(), 0
    try:
        for image in shard_images(shard):
            count += 1
            yield prepared_row(image, options, subdir)
    except DatasetError as error:
        if options.stop_if_error:
            raise portable(error) from None
        logger.warning("skipping the rest of shard %s: %s", subdir, error)
        summary.failures["unreadable_shard"] += 1
    yield {"key": f"{subdir}/", "subdir": subdir, "name": "", "shard": subdir, "shard_size": count,
           "photo": NO_PHOTO, "summary": summary.to_json()}


# --- the model actors ------------------------------------------------------------------------------------------


class PreprocessStage:
    """A model actor: loads the networks the options need once, then processes a batch of prepared photos.

    ``__call__`` takes and returns a Ray Data batch (``dict`` of columns); rows without a photo pass through.
    """

    def __init__(self, options: PreprocessOptions, models: ModelSettings) -> None:
        import torch

        from utils.device import resolve_device
        from utils.preprocessing.model_loading import load_models
        from utils.preprocessing.pipeline import ImageProcessor
        from utils.ray_cluster import node_label

        torch.set_num_threads(models.torch_threads)
        try:
            loaded = load_models(options, resolve_device(models.device), models.weights_dir, models.paths)
        except GhostError as error:
            raise GhostError(f"node {node_label()}: {error}") from None
        self.processor = ImageProcessor(loaded, options, photos_prepared=True)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from utils.preprocessing.runner import process_one

        summaries = []
        for key, subdir, name, photo, text in zip(batch["key"], batch["subdir"], batch["name"], batch["photo"],
                                                  batch["summary"]):
            summary = Summary.from_json(text)
            if photo.size:
                # Ray hands out read-only views of its object store; the pipeline gets its own copy.
                image = SourceImage(str(key), str(subdir), str(name), lambda photo=np.array(photo): photo)
                try:
                    process_one(image, self.processor, summary)
                except GhostError as error:  # --stop_if_error, or an output that cannot be written
                    raise portable(error) from None
            summaries.append(summary.to_json())
        return {**{column: values for column, values in batch.items() if column != "photo"}, "summary": summaries}


# --- the driver ------------------------------------------------------------------------------------------------


class ShardProgress:
    """Writes a LAION shard's ``shard.complete`` as soon as the actors have returned all of its images."""

    def __init__(self, options: PreprocessOptions, shards: dict[str, Any]) -> None:
        self.options, self.shards = options, shards  # shard subdir -> Shard
        self.returned: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        self.damaged: set[str] = set()

    def add(self, shard: str, shard_size: int, summary: Summary) -> None:
        if not shard:
            return
        if shard_size == IMAGE_ROW:
            self.returned[shard] = self.returned.get(shard, 0) + 1
        else:
            self.sizes[shard] = shard_size
            if summary.failures["unreadable_shard"]:
                self.damaged.add(shard)
        if self.returned.get(shard, 0) == self.sizes.get(shard) and shard not in self.damaged:
            from utils.preprocessing.datasets import shard_complete_marker

            write_marker(shard_complete_marker(self.options, self.shards[shard]), "complete\n")


def run_stages(ray: Any, rows: Any, options: PreprocessOptions, models: ModelSettings, cluster: RayOptions,
               stage: type = PreprocessStage, shards: ShardProgress | None = None) -> Summary:
    """Run the model actors over ``rows`` (a ray.data.Dataset of prepared rows) and add up the summaries.

    ``stage`` is the actor class (tests pass subclasses that fail on purpose); ``shards`` follows the LAION
    shards' completion.
    """
    actors, gpus = actor_plan(ray.cluster_resources(), cluster, models.torch_threads)
    check_files_on_nodes(ray, models.required(options), gpus > 0,
                         "every node needs the weights at the same path (bash download_all_models.sh there, "
                         "or copy --weights_dir)")
    logger.info("%d model actor(s), %g GPU each", actors, gpus)
    results = rows.map_batches(stage, fn_constructor_args=(options, models), batch_size=IMAGES_PER_ACTOR_CALL,
                               compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=gpus, num_cpus=1,
                               memory=GPU_ACTOR_HOST_MEMORY if gpus else CPU_ACTOR_MEMORY)
    summary = Summary()
    try:
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            for shard, shard_size, text in zip(batch["shard"], batch["shard_size"], batch["summary"]):
                row_summary = Summary.from_json(str(text))
                summary.add(row_summary)
                if shards is not None:
                    shards.add(str(shard), int(shard_size), row_summary)
    except Exception as error:  # noqa: BLE001 - a failed Ray run: report our own error when it carries one
        found = user_error(error)
        if found is None:
            raise GhostError(f"the Ray run failed: {str(error).strip().splitlines()[-1]}") from error
        raise found from None
    return summary


def run_on_ray(dataset: Any, options: PreprocessOptions, models: ModelSettings, cluster: RayOptions) -> Summary:
    """Check the options and output folders (before Ray starts), then run ``dataset(options, models, cluster)``."""
    from utils.image import check_output_folder

    cluster.check()
    for folder in options.output_folders():
        check_output_folder(folder)
    return dataset(options, models, cluster)


def preprocess_lagenda_on_ray(lagenda_base_dir: str | Path, options: PreprocessOptions, models: ModelSettings,
                              cluster: RayOptions, stage: type = PreprocessStage) -> Summary:
    """Ray version of datasets.preprocess_lagenda: the same files, the same summary."""
    from utils.preprocessing.datasets import lagenda_files

    paths = [str(path) for path in lagenda_files(lagenda_base_dir, options)]
    if not paths:
        return Summary()
    with ray_session(cluster.ray_address) as ray:
        tasks = max(1, -(-len(paths) // LAGENDA_FILES_PER_TASK))
        rows = (ray.data.from_items([{"path": path} for path in paths], override_num_blocks=tasks)
                .map_batches(read_lagenda_files, fn_args=(options,), batch_size=LAGENDA_FILES_PER_TASK))
        return run_stages(ray, rows, options, models, cluster, stage)


def preprocess_laion_on_ray(laion_face_base_dir: str | Path, part_indices: list[int], options: PreprocessOptions,
                            models: ModelSettings, cluster: RayOptions, stage: type = PreprocessStage) -> Summary:
    """Ray version of datasets.preprocess_laion: one read task per shard; finished shards are not opened."""
    from utils.preprocessing.datasets import laion_shards, shard_complete_marker, shard_subdir

    pending = []
    for shard in laion_shards(laion_face_base_dir, part_indices, options):
        if shard_complete_marker(options, shard).exists():
            logger.info("shard %s already done", shard_subdir(shard))
        else:
            pending.append(shard)
    if not pending:
        return Summary()
    with ray_session(cluster.ray_address) as ray:
        items = [{"split": shard.split, "name": shard.name, "tar_path": str(shard.tar_path)} for shard in pending]
        rows = ray.data.from_items(items, override_num_blocks=len(items)).flat_map(read_laion_shard,
                                                                                   fn_args=(options,))
        progress = ShardProgress(options, {shard_subdir(shard): shard for shard in pending})
        return run_stages(ray, rows, options, models, cluster, stage, progress)
