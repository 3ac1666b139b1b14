"""Build a training set from a folder of Lagenda images: aligned faces and expression variants per identity.

Examples:
  python preprocess_lagenda.py --lagenda_base_dir datasets/Lagenda/lag_benchmark
  python preprocess_lagenda.py --number_of_variants_per_face 10 --align_mode facexlib --final_crop_size 512
"""
from __future__ import annotations

import logging
import sys
from argparse import ArgumentParser
from functools import partial

from utils.cli import configure_logging, make_parser, run_cli

logger = logging.getLogger("ghostv2")


def build_parser() -> ArgumentParser:
    from utils.preprocessing.preprocess_arguments import add_lagenda_arguments

    parser = make_parser("preprocess_lagenda.py", __doc__.strip())
    add_lagenda_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        from utils.preprocessing.datasets import preprocess_lagenda, run_preprocessing
        from utils.preprocessing.preprocess_arguments import options_from_args

        options, paths = options_from_args(args)
        dataset = partial(preprocess_lagenda, args.lagenda_base_dir)
        summary = run_preprocessing(dataset, options, paths, args.device, args.weights_dir)
        for line in summary.lines():
            logger.info(line)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
