"""Every training option in one record: train.py's flags (and config-file keys) are built from these fields.

Each field carries its ``--help`` text and help group in its metadata (see :func:`option`), so a default is
written once, here; utils/training/training_arguments.py turns the fields into flags.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.embeddings import DEFAULT_FACE_EMBEDDINGS, FACE_EMBEDDING_NAMES
from models.registry import CHECKPOINTS, WEIGHTS_DIR_ENV
from network.aeinet import BACKBONES
from utils.device import DEVICE_CHOICES_HELP
from utils.errors import GhostError
from utils.training.losses import LossWeights

SCHEDULER_TYPES = ("step", "one_cycle")

DATA = "data"
MODELS = "models"
LOSSES = "losses"
OPTIMISATION = "optimisers and schedulers"
RUN = "run, logging and checkpoints"
TRAINER = "Lightning Trainer"


def option(group: str, default: Any, help: str, **argument: Any) -> Any:
    """A TrainingConfig field: its default, its ``--help`` text, its help group and extra argparse settings."""
    return field(default=default, metadata={"group": group, "help": help, **argument})


def _weight_path_help(description: str, checkpoint: str) -> str:
    return f"{description} [default: <weights_dir>/{CHECKPOINTS[checkpoint].path}]"


@dataclass
class TrainingConfig:
    """Options of one training run (defaults are the original project's unless the help says otherwise)."""

    dataset_path: str = option(DATA, "dataset", "preprocessed dataset: one folder per identity")
    laion_faces: bool = option(
        DATA, True,
        "folders are identities (LAION/Lagenda preprocessing output); --no-laion_faces: a flat generic dataset",
    )
    same_person: float = option(DATA, 0.2, "probability that the target shows the source's identity")
    same_identity: bool = option(
        DATA, True,
        "same-person targets are random images of the source's folder (needs --laion_faces); "
        "--no-same_identity: the source image itself",
    )
    diff_eq_same: bool = option(DATA, False, "apply the reconstruction loss to every pair")
    batch_size: int = option(DATA, 16, "batch size per device")
    num_workers: int = option(DATA, 4, "DataLoader worker processes")

    G_path: str | None = option(  # noqa: N815 - the original flag name
        MODELS, None, _weight_path_help("pretrained generator (safetensors, with or without _orig_mod.)",
                                        "ghostv2_generator"),
    )
    D_path: str | None = option(  # noqa: N815
        MODELS, None, _weight_path_help("pretrained discriminator (safetensors)", "ghostv2_discriminator"),
    )
    pretrained: bool = option(MODELS, True, "start from --G_path/--D_path (else random initialisation)")
    backbone: str = option(MODELS, "unet", "attribute encoder", choices=BACKBONES)
    num_blocks: int = option(MODELS, 2, "AAD units per residual block")
    align_corners: bool = option(MODELS, True, "bilinear upsampling with align_corners in G")
    face_embeddings: str = option(
        MODELS, DEFAULT_FACE_EMBEDDINGS, "identity model for the source embedding and the identity loss",
        choices=FACE_EMBEDDING_NAMES,
    )
    weights_dir: str | None = option(
        MODELS, None,
        f"folder holding the downloaded weights [default: ${WEIGHTS_DIR_ENV}, else weights/ beside the scripts]",
    )
    compile: bool = option(  # the original always compiled; off here (slow to start, no gain on CPU)
        MODELS, False, "wrap G and D with torch.compile (files are saved without _orig_mod.)",
    )

    weight_adv: float = option(LOSSES, LossWeights.adversarial, "adversarial loss weight")
    weight_attr: float = option(LOSSES, LossWeights.attributes, "attribute loss weight")
    weight_id: float = option(LOSSES, LossWeights.identity, "identity loss weight")
    weight_rec: float = option(LOSSES, LossWeights.reconstruction, "reconstruction loss weight")
    weight_eyes: float = option(LOSSES, LossWeights.eyes, "eye heatmap loss weight")
    eye_detector_loss: bool = option(
        LOSSES, False, "eye loss with the AdaptiveWingLoss FAN (weights/AdaptiveWingLoss/WFLW_4HG.safetensors)",
    )
    initial_loss_adv_accumulated: float = option(LOSSES, 20.0, "start value of the running adversarial loss")
    discr_force: bool = option(
        LOSSES, False, "hold D back while the running adversarial loss is at or above --loss_adv_accumulated_threshold",
    )
    loss_adv_accumulated_threshold: float = option(LOSSES, 4.0, "see --discr_force")

    lr_G: float = option(OPTIMISATION, 4e-4, "generator learning rate")  # noqa: N815
    lr_D: float = option(OPTIMISATION, 4e-4, "discriminator learning rate")  # noqa: N815
    # The original's beta1 default was the integer 0, which recent PyTorch refuses.
    b1_G: float = option(OPTIMISATION, 0.0, "generator Adam beta1")  # noqa: N815
    b2_G: float = option(OPTIMISATION, 0.999, "generator Adam beta2")  # noqa: N815
    b1_D: float = option(OPTIMISATION, 0.0, "discriminator Adam beta1")  # noqa: N815
    b2_D: float = option(OPTIMISATION, 0.999, "discriminator Adam beta2")  # noqa: N815
    wd_G: float = option(OPTIMISATION, 1e-4, "generator weight decay (L2)")  # noqa: N815
    wd_D: float = option(OPTIMISATION, 1e-4, "discriminator weight decay (L2)")  # noqa: N815
    use_scheduler: bool = option(OPTIMISATION, False, "step the learning rates once per batch")
    scheduler_type: str = option(OPTIMISATION, "step", "StepLR or OneCycleLR", choices=SCHEDULER_TYPES)
    scheduler_step: int = option(OPTIMISATION, 25000, "StepLR step size")
    scheduler_gamma: float = option(OPTIMISATION, 0.5, "StepLR gamma")
    scheduler_total_steps_G: int = option(  # noqa: N815
        OPTIMISATION, -1, "generator OneCycleLR total steps (-1: Lightning's estimate)",
    )
    scheduler_total_steps_D: int = option(  # noqa: N815
        OPTIMISATION, -1, "discriminator OneCycleLR total steps (-1: Lightning's estimate)",
    )
    scheduler_last_batches_G: int = option(  # noqa: N815
        OPTIMISATION, -1, "generator OneCycleLR batches already done (-1: fresh schedule)",
    )
    scheduler_last_batches_D: int = option(  # noqa: N815
        OPTIMISATION, -1, "discriminator OneCycleLR batches already done (-1: fresh schedule)",
    )

    run_name: str = option(RUN, "ghostv2", "names the run's folders and logs")
    experiments_dir: str = option(RUN, "experiments", "where run folders are written")
    ckpt_path: str | None = option(
        RUN, None,
        "Lightning .ckpt to resume from (optimiser, scheduler, step); its saved configuration is the starting "
        "point that --config files and flags override",
    )
    max_epochs: int = option(RUN, 2000, "stop after this many epochs")
    max_steps: int = option(RUN, -1, "stop after this many batches (-1: no limit)")
    show_step: int = option(RUN, 2500, "batch image grid every N batches")
    example_step: int = option(RUN, 2500, "example swaps every N batches")
    save_step: int = option(RUN, 25000, "G/D safetensors every N batches")
    save_epoch: int = option(RUN, 1, "Lightning .ckpt every N epochs")
    log_step: int = option(RUN, 100, "console log line every N batches")
    example_images_path: str = option(
        RUN, "examples/images/training", "folder with source_1.png … source_6.png and target_1.png … target_6.png",
    )
    use_wandb: bool = option(RUN, False, "log to Weights & Biases (WANDB_MODE=offline works)")
    wandb_project: str = option(RUN, "GhostV2", "W&B project")
    seed: int | None = option(RUN, None, "seed every random generator")
    val_pairs: str | None = option(
        RUN, None,
        "validation pairs: a folder of aligned faces (each paired with the next) or a CSV source,target; "
        "evaluate.py's identity, pose, expression and eye metrics are logged as val/* every --val_every_n_steps",
    )
    val_every_n_steps: int = option(RUN, 1000, "validation metrics every N generator steps (with --val_pairs)")
    val_face_embeddings: str | None = option(
        RUN, None, "identity model of the validation metrics [default: evaluate.py's, one --face_embeddings is not]",
    )

    device: str | None = option(
        TRAINER, None,
        f"shorthand for --accelerator/--devices: {DEVICE_CHOICES_HELP} (cpu keeps --devices processes, cuda:N "
        "trains on GPU N only) [default: use --accelerator and --devices]",
    )
    accelerator: str = option(TRAINER, "auto", "auto, cpu, gpu, mps, ...")
    devices: int | str = option(TRAINER, "auto", "number of devices, or a list such as 0,1")
    num_nodes: int = option(TRAINER, 1, "machines taking part")
    strategy: str = option(TRAINER, "auto", "auto, ddp, ddp_spawn, ...")
    precision: str | None = option(TRAINER, None, "32-true (default), 16-mixed, bf16-mixed, ...")

    @property
    def trainer_hardware(self) -> tuple[str, int | str]:
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
    def logs_dir(self) -> Path:
        """The run's log folder: TensorBoard events and the resolved configuration (config.yaml)."""
        return Path(self.experiments_dir) / "logs" / self.run_name

    @property
    def images_dir(self) -> Path:
        return Path(self.experiments_dir) / "images"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
