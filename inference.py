"""Swap faces from source images into a target image or video, or into every file of a folder.

Examples:
  python inference.py --source_file_path me.jpg --target_file_path film.jpg --output_file_path out.jpg
  python inference.py --source_file_path me.jpg --target_file_path clip.mp4 --output_file_path out.mp4
  two people: --source_file_path a.jpg b.jpg --target_faces_paths face_a_in_clip.jpg face_b_in_clip.jpg
  a folder tree of images and videos: --target_folder shots/ --output_folder swapped/
  GhostV1 generator: add --G_path weights/GhostV1/G_unet_2blocks.safetensors --face_embeddings arcface
         --align_mode insightface_v1

Every flag is defined in utils/inference/inference_arguments.py (defaults in utils/inference/options.py,
selection.py and video.py).
"""
from __future__ import annotations

import logging
import sys

from models.registry import REPO_ROOT
from utils.cli import configure_logging, make_parser, run_cli
from utils.errors import GhostError
from utils.inference.inference_arguments import (
    add_inference_arguments,
    selection_from_arguments,
    swap_options_from_arguments,
    video_options_from_arguments,
)
from utils.inference.run import progress_bar, swap_folder, swap_media
from utils.inference.swap import FaceSwapper

EXAMPLES = REPO_ROOT / "examples"
RESULTS = EXAMPLES / "results/inference"
logger = logging.getLogger("ghostv2")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("inference.py", __doc__)
    add_inference_arguments(parser, str(EXAMPLES), str(RESULTS))
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        swapper = FaceSwapper(swap_options_from_arguments(args))
        selection, video = selection_from_arguments(args), video_options_from_arguments(args)
        if args.target_folder:
            if not args.output_folder:
                raise GhostError("--target_folder needs --output_folder")
            report = swap_folder(swapper, args.source_file_path, args.target_folder, args.output_folder, selection,
                                 video, args.overwrite)
            logger.info("%s", report.summary())
            return 1 if report.failed else 0
        with progress_bar("swap") as progress:
            report = swap_media(swapper, args.source_file_path, args.target_file_path, args.output_file_path,
                                selection, video, progress)
        logger.info("%s", report.summary())
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
