"""Swap the face of a source image into a target image.

Examples:
  python inference.py --source_file_path me.jpg --target_file_path film.jpg --output_file_path out.jpg
  python inference.py --source_file_path me.jpg --target_file_path film.jpg --output_file_path out.jpg
         --paste_back_mode facexlib_with_parser --no-inpaint_output
  GhostV1 generator: add --G_path weights/GhostV1/G_unet_2blocks.safetensors --face_embeddings arcface
         --align_mode insightface_v1

Every flag is defined in utils/inference/inference_arguments.py (defaults in utils/inference/options.py).
"""
from __future__ import annotations

import sys

from models.registry import REPO_ROOT
from utils.cli import configure_logging, make_parser, run_cli
from utils.inference.inference_arguments import add_inference_arguments, swap_options_from_arguments
from utils.inference.swap import FaceSwapper

EXAMPLES = REPO_ROOT / "examples"
RESULTS = EXAMPLES / "results/inference"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("inference.py", __doc__)
    add_inference_arguments(parser, str(EXAMPLES), str(RESULTS))
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> None:
        swapper = FaceSwapper(swap_options_from_arguments(args))
        swapper.swap_files(args.source_file_path, args.target_file_path, args.output_file_path)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
