"""Build a training set from a folder of Lagenda images: aligned faces and expression variants per identity.

Examples:
  python preprocess_lagenda.py --lagenda_base_dir datasets/Lagenda/lag_benchmark
  python preprocess_lagenda.py --number_of_variants_per_face 10 --align_mode facexlib --final_crop_size 512
  python preprocess_lagenda.py --ray_address auto --ray_gpus_per_actor 0.5   # on a cluster started with `ray start`
"""
from __future__ import annotations

import sys
from functools import partial

from utils.cli import make_parser
from utils.preprocessing.datasets import preprocess_lagenda
from utils.preprocessing.preprocess_arguments import add_lagenda_arguments, run_preprocess_cli
from utils.preprocessing.ray_runner import preprocess_lagenda_on_ray


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("preprocess_lagenda.py", __doc__.strip())
    add_lagenda_arguments(parser)
    return run_preprocess_cli(parser, argv, lambda args: partial(preprocess_lagenda, args.lagenda_base_dir),
                              lambda args: partial(preprocess_lagenda_on_ray, args.lagenda_base_dir))


if __name__ == "__main__":
    sys.exit(main())
