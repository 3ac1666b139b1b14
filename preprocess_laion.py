"""Build a training set from LAION-Face img2dataset shards: aligned faces and expression variants per identity.

Examples:
  python preprocess_laion.py --laion_face_base_dir datasets/LAION-Face --laion_face_part_indices 0 1
  python preprocess_laion.py --laion_face_part_indices 3 --num_workers_total 4 --worker_index 0 --seed 1
"""
from __future__ import annotations

import logging
import sys
from argparse import ArgumentParser
from functools import partial

from utils.cli import configure_logging, make_parser, run_cli

logger = logging.getLogger("ghostv2")


def build_parser() -> ArgumentParser:
    from utils.preprocessing.preprocess_arguments import add_laion_arguments

    parser = make_parser("preprocess_laion.py", __doc__.strip())
    add_laion_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        from utils.preprocessing.datasets import preprocess_laion, run_preprocessing
        from utils.preprocessing.preprocess_arguments import options_from_args

        options, paths = options_from_args(args)
        dataset = partial(preprocess_laion, args.laion_face_base_dir, args.laion_face_part_indices)
        summary = run_preprocessing(dataset, options, paths, args.device, args.weights_dir)
        for line in summary.lines():
            logger.info(line)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
