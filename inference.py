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
from utils.image import check_output_file
from utils.inference.inference_arguments import DEBUG_FILES, add_inference_arguments, swap_options_from_arguments
from utils.inference.swap import FaceSwapper

EXAMPLES = REPO_ROOT / "examples"
RESULTS = EXAMPLES / "results/inference"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("inference.py", __doc__)
    add_inference_arguments(parser, str(EXAMPLES), str(RESULTS))
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> None:
        options = swap_options_from_arguments(args)
        debug = [getattr(options, f"debug_{name}_path") for name in DEBUG_FILES] if options.debug else []
        for path in (args.output_file_path, *debug):  # before any model loads: a bad path costs and writes nothing
            check_output_file(path)
        swapper = FaceSwapper(options)
        swapper.swap_files(args.source_file_path, args.target_file_path, args.output_file_path)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
