"""Build a training set from LAION-Face img2dataset shards: aligned faces and expression variants per identity.

Examples:
  python preprocess_laion.py --laion_face_base_dir datasets/LAION-Face --laion_face_part_indices 0 1
  python preprocess_laion.py --laion_face_part_indices 3 --num_workers_total 4 --worker_index 0 --seed 1
  python preprocess_laion.py --laion_face_part_indices 0 1 2 --ray_address auto   # after `ray start --head`
"""
from __future__ import annotations

import sys
from functools import partial

from utils.cli import make_parser
from utils.preprocessing.datasets import preprocess_laion
from utils.preprocessing.preprocess_arguments import add_laion_arguments, run_preprocess_cli
from utils.preprocessing.ray_runner import preprocess_laion_on_ray


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("preprocess_laion.py", __doc__.strip())
    add_laion_arguments(parser)
    return run_preprocess_cli(
        parser, argv, lambda args: partial(preprocess_laion, args.laion_face_base_dir, args.laion_face_part_indices),
        lambda args: partial(preprocess_laion_on_ray, args.laion_face_base_dir, args.laion_face_part_indices))


if __name__ == "__main__":
    sys.exit(main())
