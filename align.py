"""Crop aligned faces: the highest-score face of one image, or of every image under a folder (mirrored tree).

Examples:
  python align.py --source_image examples/astronaut.png --aligned_folder aligned
  python align.py --source_folder photos --aligned_folder aligned --align_mode facexlib --final_crop_size 512
"""
from __future__ import annotations

import logging
import sys

from models.registry import REPO_ROOT
from utils.align import ALIGN_MODES
from utils.cli import (
    add_device_arguments,
    add_option_arguments,
    add_weight_path,
    configure_logging,
    make_parser,
    options_from_arguments,
    run_cli,
)
from utils.preprocessing.batch_align import (
    ALIGN_OUTPUT_EXTENSIONS,
    AlignOptions,
    run_alignment,
)

logger = logging.getLogger("ghostv2")
DEFAULT_SOURCE_FOLDER = REPO_ROOT / "examples/images/base"
DEFAULT_ALIGNED_FOLDER = REPO_ROOT / "examples/images/training_facexlib"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("align.py", __doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--source_image", default=None, help="align the face of this one image")
    source.add_argument("--source_folder", default=None,
                        help=f"align every image under this folder, recursively [default: {DEFAULT_SOURCE_FOLDER}]")
    parser.add_argument("--aligned_folder", default=str(DEFAULT_ALIGNED_FOLDER), help="where the crops go")
    add_option_arguments(parser, AlignOptions, {
        "output_extension": "output format", "align_mode": "alignment template",
        "final_crop_size": "side of the square crop in pixels", "detection_threshold": "RetinaFace score threshold",
        "overwrite": "redo files whose output already exists",
    }, choices={"output_extension": ALIGN_OUTPUT_EXTENSIONS, "align_mode": ALIGN_MODES})
    add_device_arguments(parser)
    add_weight_path(parser, "retina_face_model_path", "retinaface", "RetinaFace weights")
    add_weight_path(parser, "cvlface_aligner_model_path", "cvlface_aligner", "CVLFace aligner weights (cvlface mode)")
    parser.add_argument("--verbose", action="store_true", help="log more")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    options = options_from_arguments(
        AlignOptions, args, source_folder=None if args.source_image else (args.source_folder or DEFAULT_SOURCE_FOLDER))

    def body() -> int:
        report = run_alignment(options)
        logger.info("%s", report.summary())
        return 1 if report.failed else 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
