"""--use_wandb with WANDB_MODE=offline: the run's logger records options, losses and images without a network."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pytorch_lightning.loggers import WandbLogger

from utils.training.callbacks import publish_image
from utils.training.config import TrainingConfig
from utils.training.run import build_logger


def test_offline_wandb_run_records_options_losses_and_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = TrainingConfig(use_wandb=True, experiments_dir=str(tmp_path / "experiments"), run_name="offline")
    logger = build_logger(config)
    assert isinstance(logger, WandbLogger)
    try:
        logger.log_hyperparams(config.as_dict())
        logger.log_metrics({"lossG": 1.5, "lossD": 0.5}, step=0)
        image = np.zeros((256, 3 * 256, 3), np.uint8)
        fallback = tmp_path / "images" / "generated_image.jpg"
        publish_image(SimpleNamespace(loggers=[logger]), "gen_images", image, "000_000000", fallback)
        assert not fallback.exists()  # with W&B on, images go to the run, not to the images folder
    finally:
        logger.experiment.finish()
    runs = list((tmp_path / "experiments" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")), sorted(path.name for path in runs[0].iterdir())
    assert list(runs[0].rglob("gen_images*.png"))
