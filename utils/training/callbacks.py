"""Training side effects: console log lines, image grids, G/D safetensors checkpoints (§7.5 of the README) and
the run's resolved configuration file.

Only the global-zero process writes files or images; every callback is a no-op elsewhere.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from utils.checkpoint import write_state_dict
from utils.image import bgr_to_tensor, read_image, tensor_to_uint8_truncated, write_image
from utils.training.module import GhostV2Module, unwrap

logger = logging.getLogger(__name__)

IMAGE_SIZE = 256
GRID_IMAGES = 8  # images per row of the batch grid
EXAMPLE_PAIRS = 6  # source_1 … source_6 / target_1 … target_6
EYE_DOT_RADIUS = 3
EYE_DOT_COLOUR = (0, 255, 0)  # RGB


def _wandb(trainer: pl.Trainer) -> WandbLogger | None:
    return next((item for item in trainer.loggers if isinstance(item, WandbLogger)), None)


def publish_image(trainer: pl.Trainer, key: str, image_rgb: np.ndarray, caption: str, fallback: Path) -> None:
    """Log an RGB uint8 image to W&B under ``key`` when W&B is on, else write it to ``fallback``."""
    wandb_logger = _wandb(trainer)
    if wandb_logger is not None:
        wandb_logger.log_image(key=key, images=[image_rgb], caption=[caption])
    else:
        write_image(fallback, np.ascontiguousarray(image_rgb[:, :, ::-1]))


class ConsoleLogCallback(pl.Callback):
    """Every ``every`` batches, one log line with the losses, the running adversarial loss and learning rates."""

    def __init__(self, every: int = 100) -> None:
        self.every = max(1, every)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx % self.every or not trainer.is_global_zero or not isinstance(outputs, dict):
            return
        losses = " ".join(f"{name}={float(value):.4f}" for name, value in outputs["losses"].items())
        rates = " ".join(
            f"lr_{name}={optimizer.param_groups[0]['lr']:.3g}" for name, optimizer in zip("GD", trainer.optimizers)
        )
        logger.info(
            "epoch %d batch %d step %d: %s loss_adv_accumulated=%.4f %s", trainer.current_epoch, batch_idx,
            trainer.global_step, losses, outputs["loss_adv_accumulated"], rates,
        )


def _draw_eyes(images_rgb: np.ndarray, eyes: torch.Tensor, count: int) -> np.ndarray:
    """Green dots on the two eye landmarks of each image in a row of ``count`` 256-wide images."""
    painted = images_rgb.copy()
    for index, (left_x, left_y, right_x, right_y) in enumerate(eyes[:count].tolist()):
        offset = index * IMAGE_SIZE
        for x, y in ((left_x, left_y), (right_x, right_y)):
            cv2.circle(painted, (int(x) + offset, int(y)), EYE_DOT_RADIUS, EYE_DOT_COLOUR, -1)
    return painted


class BatchImagesCallback(pl.Callback):
    """Every ``every`` batches: rows of sources, targets and swapped faces of the batch (first 8 of each).

    With the eye loss, two more rows show targets and swapped faces with their detected eye points.
    Logged as W&B ``gen_images``, else written to ``<images_dir>/generated_image.jpg``.
    """

    def __init__(self, images_dir: Path, every: int = 2500) -> None:
        self.images_dir, self.every = Path(images_dir), max(1, every)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx % self.every or not trainer.is_global_zero or not isinstance(outputs, dict):
            return
        rows = [tensor_to_uint8_truncated(outputs[name]) for name in ("source", "target", "swapped")]
        if outputs.get("target_eyes") is not None:
            count = min(GRID_IMAGES, outputs["target"].shape[0])
            rows.append(_draw_eyes(rows[1], outputs["target_eyes"], count))
            rows.append(_draw_eyes(rows[2], outputs["swapped_eyes"], count))
        grid = np.concatenate(rows, axis=0)
        caption = f"{trainer.current_epoch:03}_{batch_idx:06}"
        publish_image(trainer, "gen_images", grid, caption, self.images_dir / "generated_image.jpg")


class ExampleImagesCallback(pl.Callback):
    """Every ``every`` batches: swap fixed example pairs (source_i.png / target_i.png, i = 1…6) with G in eval mode.

    Rows [source, target, swapped]; rows 1-3 form the left column and 4-6 the right one (768×1536 with six
    pairs). Logged as W&B ``our_images``, else written to ``<images_dir>/our_images.jpg``. A folder without
    any pair disables the callback with one warning.
    """

    def __init__(self, examples_dir: str | Path, images_dir: Path, every: int = 2500) -> None:
        self.examples_dir, self.images_dir, self.every = Path(examples_dir), Path(images_dir), max(1, every)
        self.pairs: tuple[torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def _load(path: Path) -> torch.Tensor:
        image = cv2.resize(read_image(path), (IMAGE_SIZE, IMAGE_SIZE))
        return bgr_to_tensor(image)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        indices = [
            index for index in range(1, EXAMPLE_PAIRS + 1)
            if (self.examples_dir / f"source_{index}.png").is_file()
            and (self.examples_dir / f"target_{index}.png").is_file()
        ]
        if not indices:
            if trainer.is_global_zero:
                logger.warning(
                    "no example pairs (source_N.png / target_N.png) in %s; example swaps are not rendered",
                    self.examples_dir,
                )
            return
        sources = torch.cat([self._load(self.examples_dir / f"source_{index}.png") for index in indices])
        targets = torch.cat([self._load(self.examples_dir / f"target_{index}.png") for index in indices])
        self.pairs = (sources, targets)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.pairs is None or batch_idx % self.every or not trainer.is_global_zero:
            return
        assert isinstance(pl_module, GhostV2Module)
        sources, targets = (images.to(pl_module.device) for images in self.pairs)
        swapped = pl_module.swap_examples(sources, targets)
        rows = [
            np.concatenate([tensor_to_uint8_truncated(images[index]) for images in (sources, targets, swapped)], axis=1)
            for index in range(sources.shape[0])
        ]
        half = (len(rows) + 1) // 2
        left = np.concatenate(rows[:half], axis=0)
        right = np.concatenate(rows[half:], axis=0) if len(rows) > half else np.zeros_like(left)
        right = np.pad(right, ((0, left.shape[0] - right.shape[0]), (0, 0), (0, 0)))
        grid = np.concatenate([left, right], axis=1)
        caption = f"{trainer.current_epoch:03}_{batch_idx:06}"
        publish_image(trainer, "our_images", grid, caption, self.images_dir / "our_images.jpg")


class GeneratorCheckpointCallback(pl.Callback):
    """G and D as safetensors that inference loads directly (plain keys).

    At the end of every epoch (named ``<epoch + 1>_000000``) and every ``every`` batches within an epoch
    (``<epoch>_<batch:06>``): ``<saved_dir>/{G,D}_latest.safetensors`` and
    ``<current_dir>/{G,D}_<epoch>_<batch>.safetensors``.
    """

    def __init__(self, saved_dir: Path, current_dir: Path, every: int = 25000) -> None:
        self.saved_dir, self.current_dir, self.every = Path(saved_dir), Path(current_dir), max(1, every)

    def save(self, pl_module: pl.LightningModule, epoch: int, batch_idx: int) -> None:
        """Write G and D (plain keys, no ``_orig_mod.``) once each, then copy them to the ``*_latest`` names."""
        assert isinstance(pl_module, GhostV2Module)
        self.saved_dir.mkdir(parents=True, exist_ok=True)
        for letter, module in (("G", pl_module.generator), ("D", pl_module.discriminator)):
            numbered = self.current_dir / f"{letter}_{epoch}_{batch_idx:06}.safetensors"
            write_state_dict(unwrap(module).state_dict(), numbered)
            latest = self.saved_dir / f"{letter}_latest.safetensors"
            partial = latest.with_name(f".{latest.name}.partial")
            shutil.copyfile(numbered, partial)
            os.replace(partial, latest)
        logger.info("saved G and D to %s and %s (epoch %d, batch %d)", self.saved_dir, self.current_dir, epoch, batch_idx)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx > 0 and batch_idx % self.every == 0 and trainer.is_global_zero:
            self.save(pl_module, trainer.current_epoch, batch_idx)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.save(pl_module, trainer.current_epoch + 1, 0)


class ConfigFileCallback(pl.Callback):
    """Writes the run's resolved configuration ``text`` (YAML that ``--config`` reads back) to ``path`` at setup."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = Path(path), text

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(self.text, encoding="utf-8")
        os.replace(partial, self.path)
        logger.info("resolved configuration written to %s", self.path)
