"""One training run: check the options and dataset, load the models, build the Lightning Trainer, fit."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger

from models.embeddings import FACE_EMBEDDING_NAMES, load_face_embedder
from models.registry import load_model
from network.aeinet import BACKBONES, AEINet
from network.discriminator import MultiscaleDiscriminator
from utils.errors import GhostError
from utils.training.callbacks import (
    BatchImagesCallback,
    ConfigFileCallback,
    ConsoleLogCallback,
    ExampleImagesCallback,
    GeneratorCheckpointCallback,
)
from utils.training.config import SCHEDULER_TYPES, TrainingConfig
from utils.training.data import FaceSwapDataModule
from utils.training.module import GhostV2Module
from utils.training.training_arguments import config_to_yaml
from utils.training.validation import ValidationMetricsCallback, read_validation_pairs

logger = logging.getLogger(__name__)

CONFIG_FILE_NAME = "config.yaml"

# G's parameters are switched off during D's step and D's during G's, so DDP must expect unused parameters.
_DDP_STRATEGIES = {"ddp": "ddp_find_unused_parameters_true", "ddp_spawn": "ddp_spawn_find_unused_parameters_true"}


def check_config(config: TrainingConfig) -> None:
    """Reject inconsistent options with one clear message (before anything heavy is loaded).

    The dataset options are checked with the dataset itself (FaceSwapDataModule.check, also before any model).
    """
    config.trainer_hardware  # raises on an unknown --device
    if config.backbone not in BACKBONES:
        raise GhostError(f"--backbone must be one of {', '.join(BACKBONES)}; got {config.backbone!r}")
    if config.face_embeddings not in FACE_EMBEDDING_NAMES:
        raise GhostError(f"--face_embeddings must be one of {', '.join(FACE_EMBEDDING_NAMES)}; got {config.face_embeddings!r}")
    if config.scheduler_type not in SCHEDULER_TYPES:
        raise GhostError(f"--scheduler_type must be one of {', '.join(SCHEDULER_TYPES)}; got {config.scheduler_type!r}")
    if config.batch_size < 1:
        raise GhostError(f"--batch_size must be positive; got {config.batch_size}")
    if config.ckpt_path and not Path(config.ckpt_path).is_file():
        raise GhostError(f"--ckpt_path {config.ckpt_path} does not exist")
    if config.val_pairs:
        read_validation_pairs(config.val_pairs)  # raises for a missing or unusable folder / CSV
        if config.val_every_n_steps < 1:
            raise GhostError(f"--val_every_n_steps must be 1 or more; got {config.val_every_n_steps}")
        if config.val_face_embeddings is not None and config.val_face_embeddings not in FACE_EMBEDDING_NAMES:
            raise GhostError(f"--val_face_embeddings must be one of {', '.join(FACE_EMBEDDING_NAMES)}; "
                             f"got {config.val_face_embeddings!r}")


def build_models(config: TrainingConfig) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module, torch.nn.Module | None]:
    """G, D (pretrained from --G_path/--D_path unless --no-pretrained), the identity model and the eye FAN."""
    generator_settings = {"backbone": config.backbone, "num_blocks": config.num_blocks, "align_corners": config.align_corners}
    if config.pretrained:
        # load_model strips a "_orig_mod." prefix and loads strictly: a mismatching file is an error, not ignored.
        generator = load_model("ghostv2_generator", path=config.G_path, weights_dir=config.weights_dir, **generator_settings)
        discriminator = load_model("ghostv2_discriminator", path=config.D_path, weights_dir=config.weights_dir)
        logger.info("starting from pretrained G and D")
    else:
        generator = AEINet(**generator_settings)
        discriminator = MultiscaleDiscriminator()
    face_embedder = load_face_embedder(config.face_embeddings, weights_dir=config.weights_dir)
    eye_detector = None
    if config.eye_detector_loss:
        eye_detector = load_model("adaptive_wing_fan", weights_dir=config.weights_dir)
    if config.compile:
        generator, discriminator = torch.compile(generator), torch.compile(discriminator)
    return generator.train(), discriminator.train(), face_embedder, eye_detector


def _devices(value: int | str) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def build_logger(config: TrainingConfig) -> Logger:
    """W&B (project --wandb_project; WANDB_MODE=offline works) with --use_wandb, else TensorBoard in the run folder."""
    if config.use_wandb:
        return WandbLogger(project=config.wandb_project, name=config.run_name, save_dir=config.experiments_dir)
    return TensorBoardLogger(save_dir=config.experiments_dir, name="logs", version=config.run_name)


def build_trainer(config: TrainingConfig, extra_callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """The Lightning Trainer with the run's loggers, callbacks (then ``extra_callbacks``) and hardware flags."""
    callbacks: list[pl.Callback] = [
        ConfigFileCallback(config.logs_dir / CONFIG_FILE_NAME, config_to_yaml(config)),
        ConsoleLogCallback(config.log_step),
        BatchImagesCallback(config.images_dir, config.show_step),
        ExampleImagesCallback(config.example_images_path, config.images_dir, config.example_step),
        GeneratorCheckpointCallback(config.saved_models_dir, config.current_models_dir, config.save_step),
        ModelCheckpoint(
            dirpath=config.current_models_dir, every_n_epochs=config.save_epoch, save_top_k=-1, save_last="link",
        ),
    ]
    if config.val_pairs:
        callbacks.append(ValidationMetricsCallback(config.val_pairs, config.val_every_n_steps, config.face_embeddings,
                                                   config.weights_dir, config.val_face_embeddings))
    callbacks += extra_callbacks
    accelerator, devices = config.trainer_hardware
    return pl.Trainer(
        accelerator=accelerator,
        devices=_devices(devices),
        num_nodes=config.num_nodes,
        strategy=_DDP_STRATEGIES.get(config.strategy, config.strategy),
        precision=config.precision,
        max_epochs=config.max_epochs,
        max_steps=config.max_steps,
        logger=build_logger(config),
        callbacks=callbacks,
        log_every_n_steps=1,
        default_root_dir=config.experiments_dir,
        num_sanity_val_steps=0,
    )


def train(config: TrainingConfig, extra_callbacks: Sequence[pl.Callback] = ()) -> GhostV2Module:
    """Train (or resume with --ckpt_path) GhostV2; returns the trained module (attached to its Trainer).

    ``extra_callbacks`` run after the built-in ones (tests and benchmarks use them to observe the run).

    Files land under --experiments_dir: saved_models_<run>/ (G/D latest), current_models_<run>/ (numbered G/D
    safetensors and Lightning .ckpt files, whose ``hyper_parameters`` hold the resolved configuration), images/,
    logs/<run>/ (TensorBoard events and config.yaml, the resolved configuration).
    """
    check_config(config)
    datamodule = FaceSwapDataModule(
        config.dataset_path, config.batch_size, config.same_person, config.same_identity, config.laion_faces,
        config.num_workers, pin_memory=torch.cuda.is_available(),
    )
    datamodule.check()
    if config.seed is not None:
        pl.seed_everything(config.seed, workers=True)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.benchmark = True
    generator, discriminator, face_embedder, eye_detector = build_models(config)
    module = GhostV2Module(config, generator, discriminator, face_embedder, eye_detector)
    trainer = build_trainer(config, extra_callbacks)
    trainer.fit(module, datamodule=datamodule, ckpt_path=config.ckpt_path)
    return module
