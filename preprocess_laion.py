"""Build a training set from LAION-Face img2dataset shards: aligned faces and expression variants per identity.

Examples:
  python preprocess_laion.py --laion_face_base_dir datasets/LAION-Face --laion_face_part_indices 0 1
  python preprocess_laion.py --laion_face_part_indices 3 --num_workers_total 4 --worker_index 0 --seed 1
"""
from __future__ import annotations

import logging
import sys
from argparse import ArgumentParser

from utils.cli import configure_logging, make_parser, run_cli

logger = logging.getLogger("ghostv2")
BASE = "datasets/LAION-Face"
OUTPUTS = (f"{BASE}/laion_face_cropped_512x512_unaligned", f"{BASE}/laion_face_cropped_256x256",
           f"{BASE}/laion_face_retargeted_data")


def build_parser() -> ArgumentParser:
    from utils.preprocessing import add_preprocess_arguments

    parser = make_parser("preprocess_laion.py", __doc__.strip())
    parser.add_argument("--laion_face_base_dir", default=BASE, help="folder holding laion_face_data/split_NNNNN/")
    parser.add_argument("--laion_face_part_indices", type=int, nargs="+", default=[0], help="split numbers to process")
    add_preprocess_arguments(parser, OUTPUTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        from utils.preprocessing import preprocess_laion, run_from_args

        summary = run_from_args(args, lambda options, models: preprocess_laion(
            args.laion_face_base_dir, args.laion_face_part_indices, options, models))
        for line in summary.lines():
            logger.info(line)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
