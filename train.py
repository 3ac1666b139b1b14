"""Train the GhostV2 face-swap generator (AEI-Net) against a multiscale discriminator with PyTorch Lightning.

Options come from YAML files (--config, the flag names as keys; several are merged in order), then from the
flags, which override the files; every flag is defined in utils/training/training_arguments.py from the
TrainingConfig fields. Each run saves its resolved configuration in <experiments_dir>/logs/<run_name>/config.yaml
and in its Lightning checkpoints; --ckpt_path resumes with the saved configuration unless flags override it.

Examples:
  python train.py --config configs/ghostv2_phase1.yaml --dataset_path dataset/laion_faces
  python train.py --config configs/ghostv2_phase2.yaml --dataset_path dataset/laion_faces
  python train.py --config configs/ghostv2_phase1.yaml --batch_size 16 --print_config   # show, do not train
  python train.py --dataset_path dataset/laion_faces --eye_detector_loss --weight_eyes 1200 --weight_id 70 \\
      --precision 16-mixed --use_wandb
  python train.py --ckpt_path experiments/current_models_my_run/last.ckpt        # resume exactly
  python train.py --config configs/smoke_cpu.yaml --dataset_path dataset/small  # one short CPU epoch
  python train.py --config configs/ghostv2_phase1.yaml --config configs/ddp_gpus.yaml   # every GPU, DDP
"""
from __future__ import annotations

import logging
import sys

from utils.cli import configure_logging, run_cli
from utils.training.training_arguments import build_parser, make_parser, parse_training_config

logger = logging.getLogger("ghostv2")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(make_parser("train.py", __doc__))
    arguments = sys.argv[1:] if argv is None else argv

    def body() -> int:
        config, verbose = parse_training_config(parser, arguments)
        configure_logging(verbose)
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
