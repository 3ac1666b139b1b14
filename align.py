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
from utils.batch_align import ALIGN_OUTPUT_EXTENSIONS, AlignOptions, run_alignment
from utils.cli import add_bool, add_device_arguments, add_weight_path, configure_logging, make_parser, run_cli

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
    parser.add_argument("--output_extension", choices=ALIGN_OUTPUT_EXTENSIONS, default="same_as_source",
                        help="output format")
    parser.add_argument("--align_mode", choices=ALIGN_MODES, default="insightface_v2", help="alignment template")
    parser.add_argument("--final_crop_size", type=int, default=256, help="side of the square crop in pixels")
    parser.add_argument("--detection_threshold", type=float, default=0.97, help="RetinaFace score threshold")
    add_bool(parser, "overwrite", False, "redo files whose output already exists")
    add_device_arguments(parser)
    add_weight_path(parser, "retina_face_model_path", "retinaface", "RetinaFace weights")
    add_weight_path(parser, "cvlface_aligner_model_path", "cvlface_aligner", "CVLFace aligner weights (cvlface mode)")
    parser.add_argument("--verbose", action="store_true", help="log more")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    options = AlignOptions(
        aligned_folder=args.aligned_folder,
        source_image=args.source_image,
        source_folder=None if args.source_image else (args.source_folder or DEFAULT_SOURCE_FOLDER),
        output_extension=args.output_extension,
        align_mode=args.align_mode,
        final_crop_size=args.final_crop_size,
        detection_threshold=args.detection_threshold,
        overwrite=args.overwrite,
        device=args.device,
        weights_dir=args.weights_dir,
        retina_face_model_path=args.retina_face_model_path,
        cvlface_aligner_model_path=args.cvlface_aligner_model_path,
    )

    def body() -> int:
        report = run_alignment(options)
        logger.info("%s", report.summary())
        return 1 if report.failed else 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
