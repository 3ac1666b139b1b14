"""Every training option in one record: train.py's flags map one-to-one onto these fields."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from utils.errors import GhostError
from utils.training.losses import LossWeights

SCHEDULER_TYPES = ("step", "one_cycle")


@dataclass
class TrainingConfig:
    """Options of one training run (defaults are the original project's unless a comment says otherwise)."""

    # Data
    dataset_path: str = "dataset"
    laion_faces: bool = True
    same_person: float = 0.2
    same_identity: bool = True
    diff_eq_same: bool = False
    batch_size: int = 16
    num_workers: int = 4
    # Models
    G_path: str | None = None  # noqa: N815 - the original flag name
    D_path: str | None = None  # noqa: N815
    pretrained: bool = True
    backbone: str = "unet"
    num_blocks: int = 2
    align_corners: bool = True
    face_embeddings: str = "cvl_vit"
    weights_dir: str | None = None
    compile: bool = False  # the original always compiled; off by default here (slow to start, no CPU gain)
    # Losses
    weight_adv: float = 1.0
    weight_attr: float = 10.0
    weight_id: float = 20.0
    weight_rec: float = 10.0
    weight_eyes: float = 0.0
    eye_detector_loss: bool = False
    initial_loss_adv_accumulated: float = 20.0
    discr_force: bool = False
    loss_adv_accumulated_threshold: float = 4.0
    # Optimisers and schedulers
    lr_G: float = 4e-4  # noqa: N815
    lr_D: float = 4e-4  # noqa: N815
    b1_G: float = 0.0  # noqa: N815 - the original default was the integer 0, which recent PyTorch refuses
    b2_G: float = 0.999  # noqa: N815
    b1_D: float = 0.0  # noqa: N815
    b2_D: float = 0.999  # noqa: N815
    wd_G: float = 1e-4  # noqa: N815
    wd_D: float = 1e-4  # noqa: N815
    use_scheduler: bool = False
    scheduler_type: str = "step"
    scheduler_step: int = 25000
    scheduler_gamma: float = 0.5
    scheduler_total_steps_G: int = -1  # noqa: N815 - -1: Lightning's estimate of the stepping batches
    scheduler_total_steps_D: int = -1  # noqa: N815
    scheduler_last_batches_G: int = -1  # noqa: N815 - -1: a fresh schedule
    scheduler_last_batches_D: int = -1  # noqa: N815
    # Run, logging, checkpoints
    run_name: str = "ghostv2"
    experiments_dir: str = "experiments"
    ckpt_path: str | None = None
    max_epochs: int = 2000
    max_steps: int = -1
    show_step: int = 2500
    example_step: int = 2500
    save_step: int = 25000
    save_epoch: int = 1
    log_step: int = 100
    example_images_path: str = "examples/images/training"
    use_wandb: bool = False
    wandb_project: str = "GhostV2"
    seed: int | None = None
    # Lightning Trainer
    device: str | None = None
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None

    @property
    def trainer_hardware(self) -> tuple[str, str]:
        """Lightning's ``(accelerator, devices)``; ``device`` (the project-wide --device) overrides both when given.

        ``cpu`` keeps ``--devices`` (several CPU processes for DDP), ``cuda`` uses ``--devices`` GPUs, ``cuda:N``
        GPU N only, ``mps`` the Apple GPU.
        """
        if self.device is None or self.device == "auto":
            return self.accelerator, self.devices
        if self.device == "cpu":
            return "cpu", self.devices if self.devices != "auto" else "1"
        if self.device == "mps":
            return "mps", "1"
        if self.device == "cuda":
            return "gpu", self.devices
        if self.device.startswith("cuda:") and self.device[5:].isdigit():
            return "gpu", f"{self.device[5:]},"
        raise GhostError(f"unknown --device {self.device!r}; use auto, cpu, cuda, cuda:N or mps")

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(self.weight_adv, self.weight_attr, self.weight_id, self.weight_rec, self.weight_eyes)

    @property
    def saved_models_dir(self) -> Path:
        """Holds G_latest / D_latest (overwritten at every save)."""
        return Path(self.experiments_dir) / f"saved_models_{self.run_name}"

    @property
    def current_models_dir(self) -> Path:
        """Holds the numbered G/D safetensors and the Lightning .ckpt files."""
        return Path(self.experiments_dir) / f"current_models_{self.run_name}"

    @property
    def images_dir(self) -> Path:
        return Path(self.experiments_dir) / "images"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
