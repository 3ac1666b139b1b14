"""Train the GhostV2 face-swap generator (AEI-Net) against a multiscale discriminator with PyTorch Lightning.

Examples:
  python train.py --dataset_path dataset/laion_faces --run_name my_run
  python train.py --dataset_path dataset/laion_faces --eye_detector_loss --weight_eyes 1200 --weight_id 70 \\
      --precision 16-mixed --use_wandb
  python train.py --dataset_path dataset/laion_faces --run_name my_run \\
      --ckpt_path experiments/current_models_my_run/last.ckpt        # resume exactly
  python train.py --dataset_path ... --accelerator cpu --devices 2 --strategy ddp   # two-process DDP
"""
from __future__ import annotations

import argparse
import logging
import sys

from models.embeddings import DEFAULT_FACE_EMBEDDINGS, FACE_EMBEDDING_NAMES
from network.aeinet import BACKBONES
from utils.cli import DEVICE_CHOICES_HELP, add_bool, add_weight_path, configure_logging, make_parser, run_cli
from utils.training.config import SCHEDULER_TYPES, TrainingConfig

logger = logging.getLogger("ghostv2")
DEFAULTS = TrainingConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("train.py", __doc__)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_path", default=DEFAULTS.dataset_path, help="preprocessed dataset: one folder per identity")
    add_bool(data, "laion_faces", DEFAULTS.laion_faces,
             "folders are identities (LAION/Lagenda preprocessing output); --no-laion_faces: a flat generic dataset")
    data.add_argument("--same_person", type=float, default=DEFAULTS.same_person,
                      help="probability that the target shows the source's identity")
    add_bool(data, "same_identity", DEFAULTS.same_identity,
             "same-person targets are random images of the source's folder (needs --laion_faces); "
             "--no-same_identity: the source image itself")
    add_bool(data, "diff_eq_same", DEFAULTS.diff_eq_same, "apply the reconstruction loss to every pair")
    data.add_argument("--batch_size", type=int, default=DEFAULTS.batch_size, help="batch size per device")
    data.add_argument("--num_workers", type=int, default=DEFAULTS.num_workers, help="DataLoader worker processes")

    models = parser.add_argument_group("models")
    add_weight_path(models, "G_path", "ghostv2_generator", "pretrained generator (safetensors, with or without _orig_mod.)")
    add_weight_path(models, "D_path", "ghostv2_discriminator", "pretrained discriminator (safetensors)")
    add_bool(models, "pretrained", DEFAULTS.pretrained, "start from --G_path/--D_path (else random initialisation)")
    models.add_argument("--backbone", choices=BACKBONES, default=DEFAULTS.backbone, help="attribute encoder")
    models.add_argument("--num_blocks", type=int, default=DEFAULTS.num_blocks, help="AAD units per residual block")
    add_bool(models, "align_corners", DEFAULTS.align_corners, "bilinear upsampling with align_corners in G")
    models.add_argument("--face_embeddings", choices=FACE_EMBEDDING_NAMES, default=DEFAULT_FACE_EMBEDDINGS,
                        help="identity model for the source embedding and the identity loss")
    models.add_argument(
        "--weights_dir", default=None,
        help="folder holding the downloaded weights [default: $GHOSTV2_WEIGHTS_DIR, else weights/ beside the scripts]",
    )
    add_bool(models, "compile", DEFAULTS.compile, "wrap G and D with torch.compile (files are saved without _orig_mod.)")

    losses = parser.add_argument_group("losses")
    losses.add_argument("--weight_adv", type=float, default=DEFAULTS.weight_adv, help="adversarial loss weight")
    losses.add_argument("--weight_attr", type=float, default=DEFAULTS.weight_attr, help="attribute loss weight")
    losses.add_argument("--weight_id", type=float, default=DEFAULTS.weight_id, help="identity loss weight")
    losses.add_argument("--weight_rec", type=float, default=DEFAULTS.weight_rec, help="reconstruction loss weight")
    losses.add_argument("--weight_eyes", type=float, default=DEFAULTS.weight_eyes, help="eye heatmap loss weight")
    add_bool(losses, "eye_detector_loss", DEFAULTS.eye_detector_loss,
             "eye loss with the AdaptiveWingLoss FAN (weights/AdaptiveWingLoss/WFLW_4HG.safetensors)")
    losses.add_argument("--initial_loss_adv_accumulated", type=float, default=DEFAULTS.initial_loss_adv_accumulated,
                        help="start value of the running adversarial loss")
    add_bool(losses, "discr_force", DEFAULTS.discr_force,
             "hold D back while the running adversarial loss is at or above --loss_adv_accumulated_threshold")
    losses.add_argument("--loss_adv_accumulated_threshold", type=float,
                        default=DEFAULTS.loss_adv_accumulated_threshold, help="see --discr_force")

    optimisation = parser.add_argument_group("optimisers and schedulers")
    for name, help_text in (
        ("lr_G", "generator learning rate"), ("lr_D", "discriminator learning rate"),
        ("b1_G", "generator Adam beta1"), ("b2_G", "generator Adam beta2"),
        ("b1_D", "discriminator Adam beta1"), ("b2_D", "discriminator Adam beta2"),
        ("wd_G", "generator weight decay (L2)"), ("wd_D", "discriminator weight decay (L2)"),
    ):
        optimisation.add_argument(f"--{name}", type=float, default=getattr(DEFAULTS, name), help=help_text)
    add_bool(optimisation, "use_scheduler", DEFAULTS.use_scheduler, "step the learning rates once per batch")
    optimisation.add_argument("--scheduler_type", choices=SCHEDULER_TYPES, default=DEFAULTS.scheduler_type,
                              help="StepLR or OneCycleLR")
    optimisation.add_argument("--scheduler_step", type=int, default=DEFAULTS.scheduler_step, help="StepLR step size")
    optimisation.add_argument("--scheduler_gamma", type=float, default=DEFAULTS.scheduler_gamma, help="StepLR gamma")
    for name in ("scheduler_total_steps_G", "scheduler_total_steps_D"):
        optimisation.add_argument(f"--{name}", type=int, default=-1,
                                  help="OneCycleLR total steps (-1: Lightning's estimate)")
    for name in ("scheduler_last_batches_G", "scheduler_last_batches_D"):
        optimisation.add_argument(f"--{name}", type=int, default=-1,
                                  help="OneCycleLR batches already done (-1: fresh schedule)")

    run = parser.add_argument_group("run, logging and checkpoints")
    run.add_argument("--run_name", default=DEFAULTS.run_name, help="names the run's folders and logs")
    run.add_argument("--experiments_dir", default=DEFAULTS.experiments_dir, help="where run folders are written")
    run.add_argument("--ckpt_path", default=None, help="Lightning .ckpt to resume from (optimiser, scheduler, step)")
    run.add_argument("--max_epochs", type=int, default=DEFAULTS.max_epochs, help="stop after this many epochs")
    run.add_argument("--max_steps", type=int, default=DEFAULTS.max_steps, help="stop after this many batches (-1: no limit)")
    run.add_argument("--show_step", type=int, default=DEFAULTS.show_step, help="batch image grid every N batches")
    run.add_argument("--example_step", type=int, default=DEFAULTS.example_step, help="example swaps every N batches")
    run.add_argument("--save_step", type=int, default=DEFAULTS.save_step, help="G/D safetensors every N batches")
    run.add_argument("--save_epoch", type=int, default=DEFAULTS.save_epoch, help="Lightning .ckpt every N epochs")
    run.add_argument("--log_step", type=int, default=DEFAULTS.log_step, help="console log line every N batches")
    run.add_argument("--example_images_path", default=DEFAULTS.example_images_path,
                     help="folder with source_1.png … source_6.png and target_1.png … target_6.png")
    add_bool(run, "use_wandb", DEFAULTS.use_wandb, "log to Weights & Biases (WANDB_MODE=offline works)")
    run.add_argument("--wandb_project", default=DEFAULTS.wandb_project, help="W&B project")
    run.add_argument("--seed", type=int, default=None, help="seed every random generator")

    hardware = parser.add_argument_group("Lightning Trainer")
    hardware.add_argument("--device", default=None,
                          help=f"shorthand for --accelerator/--devices: {DEVICE_CHOICES_HELP} (cpu keeps --devices "
                          "processes, cuda:N trains on GPU N only) [default: use --accelerator and --devices]")
    hardware.add_argument("--accelerator", default=DEFAULTS.accelerator, help="auto, cpu, gpu, mps, ...")
    hardware.add_argument("--devices", default=DEFAULTS.devices, help="number of devices, or a list such as 0,1")
    hardware.add_argument("--num_nodes", type=int, default=DEFAULTS.num_nodes, help="machines taking part")
    hardware.add_argument("--strategy", default=DEFAULTS.strategy, help="auto, ddp, ddp_spawn, ...")
    hardware.add_argument("--precision", default=None, help="32-true (default), 16-mixed, bf16-mixed, ...")
    parser.add_argument("--verbose", action="store_true", help="log more")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    options = vars(args)
    options.pop("verbose")
    config = TrainingConfig(**options)

    def body() -> int:
        # Imported here so that --help and option errors do not wait for Lightning and the models to import.
        from utils.training.run import train

        module = train(config)
        if module.global_rank == 0:
            logger.info("done; G/D safetensors in %s, Lightning checkpoints in %s",
                        config.saved_models_dir, config.current_models_dir)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
