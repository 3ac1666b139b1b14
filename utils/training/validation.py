"""Validation during training: evaluate.py's identity, pose, expression and eye metrics on fixed pairs.

Every ``every_n_steps`` generator steps, G (in eval mode) swaps a fixed set of aligned faces and the means of
``val/id_similarity``, ``val/id_retrieval``, ``val/pose_error``, ``val/expression_error`` and ``val/eye_error``
are logged at that step (TensorBoard or W&B, and ``trainer.callback_metrics``, so EarlyStopping can watch
identity). The
metrics are utils/evaluation's, on the aligned faces as the training sees them; the identity model is one the
generator is not trained with (as in evaluate.py). A metric whose weights are missing is skipped with one warning.

The pairs: a folder of aligned face pictures (each paired with the next one, the last with the first), or a
CSV with columns ``source,target`` (paths relative to the CSV).
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import cv2
import pytorch_lightning as pl
import torch

from utils.errors import GhostError
from utils.evaluation.measures import FaceMeasures
from utils.evaluation.options import default_eval_embeddings
from utils.evaluation.scoring import EVAL_CROP_SIZE, FrameScorer
from utils.image import bgr_to_tensor, list_images, read_image
from utils.inference.model_cache import ModelCache

logger = logging.getLogger(__name__)

VALIDATION_METRICS = ("id_similarity", "id_retrieval", "pose_error", "expression_error", "eye_error")
LOG_PREFIX = "val/"
SWAP_BATCH = 8


def read_validation_pairs(location: str | Path) -> list[tuple[Path, Path]]:
    """The (source, target) picture paths of a validation folder or CSV (see the module docstring)."""
    location = Path(location)
    if location.is_dir():
        pictures = list_images(location, recursive=False)
        if len(pictures) < 2:
            raise GhostError(f"--val_pairs {location} needs at least two pictures (found {len(pictures)})")
        return [(picture, pictures[(index + 1) % len(pictures)]) for index, picture in enumerate(pictures)]
    if not location.is_file():
        raise GhostError(f"--val_pairs {location} does not exist")
    with location.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"source", "target"} <= set(reader.fieldnames):
            raise GhostError(f"--val_pairs {location} needs a header with the columns source and target")
        pairs = [(location.parent / row["source"], location.parent / row["target"]) for row in reader]
    if not pairs:
        raise GhostError(f"--val_pairs {location} has no rows")
    return pairs


def _load_face(path: Path) -> torch.Tensor:
    """An aligned face picture as ``[1, 3, 256, 256]`` RGB in [-1, 1] (resized like the example swaps)."""
    return bgr_to_tensor(cv2.resize(read_image(path), (EVAL_CROP_SIZE, EVAL_CROP_SIZE)))


class ValidationMetricsCallback(pl.Callback):
    """Logs the evaluation metrics of G on fixed validation pairs every ``every_n_steps`` generator steps.

    ``conditioning`` is the generator's own identity model (--face_embeddings); the metrics use
    ``eval_face_embeddings``, by default evaluate.py's choice of another one. Models load at the first
    validation, into ``models`` (default a new cache). Runs on the global-zero process.
    """

    def __init__(self, pairs: str | Path, every_n_steps: int, conditioning: str,
                 weights_dir: str | Path | None = None, eval_face_embeddings: str | None = None,
                 models: ModelCache | None = None) -> None:
        if every_n_steps < 1:
            raise GhostError(f"--val_every_n_steps must be 1 or more (got {every_n_steps})")
        self.pair_paths = read_validation_pairs(pairs)
        self.every_n_steps = every_n_steps
        self.eval_face_embeddings = eval_face_embeddings or default_eval_embeddings([conditioning])
        self.weights_dir = weights_dir
        self.models = models or ModelCache()
        self.scorer: FrameScorer | None = None
        self.faces: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.last_logged: dict[str, float] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        sources = list(dict.fromkeys(source for source, _ in self.pair_paths))
        rows = torch.tensor([sources.index(source) for source, _ in self.pair_paths])
        self.faces = (torch.cat([_load_face(path) for path in sources]), rows,
                      torch.cat([_load_face(target) for _, target in self.pair_paths]))

    def _scorer(self, pl_module: pl.LightningModule) -> FrameScorer:
        if self.scorer is None:
            eye_detector = getattr(pl_module, "eye_detector", None)
            if eye_detector is not None:  # the eye loss's FAN is already loaded: the same model, shared
                self.models.put(("adaptive_wing_fan", None, self.weights_dir), eye_detector)
            measures = FaceMeasures(self.eval_face_embeddings, pl_module.device, self.weights_dir, models=self.models)
            self.scorer = FrameScorer(measures, VALIDATION_METRICS)
        return self.scorer

    @torch.no_grad()
    def evaluate(self, pl_module: pl.LightningModule) -> dict[str, float]:
        """Swap the validation pairs with G (eval mode) and return ``{val/metric: mean}``."""
        sources, rows, targets = self.faces
        device = pl_module.device
        swapped = torch.cat([
            pl_module.swap_examples(sources[rows[start:start + SWAP_BATCH]].to(device),
                                    targets[start:start + SWAP_BATCH].to(device)).float().cpu()
            for start in range(0, targets.shape[0], SWAP_BATCH)
        ])
        values = self._scorer(pl_module).score_aligned(sources, rows, targets, swapped)
        return {f"{LOG_PREFIX}{name}": float(value.mean()) for name, value in values.items()}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step == 0 or step % self.every_n_steps or self.faces is None or not trainer.is_global_zero:
            return
        values = self.evaluate(pl_module)
        self.last_logged = values
        # Straight to the loggers at this very step (self.log from a batch-end hook lands a step late), and into
        # callback_metrics for EarlyStopping / ModelCheckpoint monitors.
        for run_logger in trainer.loggers:
            run_logger.log_metrics(values, step=step)
        trainer.callback_metrics.update({name: torch.tensor(value) for name, value in values.items()})
        logger.info("step %d validation: %s", step, " ".join(f"{name}={value:.4g}" for name, value in values.items()))
