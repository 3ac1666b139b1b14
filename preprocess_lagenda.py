"""Build a training set from a folder of Lagenda images: aligned faces and expression variants per identity.

Examples:
  python preprocess_lagenda.py --lagenda_base_dir datasets/Lagenda/lag_benchmark
  python preprocess_lagenda.py --number_of_variants_per_face 10 --align_mode facexlib --final_crop_size 512
"""
from __future__ import annotations

import logging
import sys
from argparse import ArgumentParser

from utils.cli import configure_logging, make_parser, run_cli

logger = logging.getLogger("ghostv2")
BASE = "datasets/Lagenda"
OUTPUTS = (f"{BASE}/lag_benchmark_face_cropped_512x512_unaligned", f"{BASE}/lag_benchmark_face_cropped_256x256_2",
           f"{BASE}/lag_benchmark_retargeted_data")


def build_parser() -> ArgumentParser:
    from utils.preprocessing import add_preprocess_arguments

    parser = make_parser("preprocess_lagenda.py", __doc__.strip())
    parser.add_argument("--lagenda_base_dir", default=f"{BASE}/lag_benchmark", help="folder of input images")
    add_preprocess_arguments(parser, OUTPUTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        from utils.preprocessing import preprocess_lagenda, run_from_args

        summary = run_from_args(args, lambda options, models: preprocess_lagenda(args.lagenda_base_dir, options, models))
        for line in summary.lines():
            logger.info(line)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
