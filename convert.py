"""Re-encode images as .jpg or .png: one file, or a whole folder tree (sub-folders are mirrored).

Examples:
  python convert.py --source_image photo.png --output_folder converted
  python convert.py --source_folder my_pngs --output_folder my_jpgs --output_extension .jpg
"""
from __future__ import annotations

import logging
import sys

from models.registry import REPO_ROOT
from utils.cli import add_bool, configure_logging, make_parser, run_cli
from utils.preprocessing.convert import CONVERT_EXTENSIONS, convert_images

logger = logging.getLogger("ghostv2")
DEFAULT_SOURCE_FOLDER = REPO_ROOT / "examples/images/training_facexlib_png"
DEFAULT_OUTPUT_FOLDER = REPO_ROOT / "examples/images/training_facexlib_jpg"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("convert.py", __doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--source_image", default=None, help="convert this one image")
    source.add_argument("--source_folder", default=None,
                        help=f"convert every image under this folder, recursively [default: {DEFAULT_SOURCE_FOLDER}]")
    parser.add_argument("--output_folder", default=str(DEFAULT_OUTPUT_FOLDER), help="where the converted files go")
    parser.add_argument("--output_extension", choices=CONVERT_EXTENSIONS, default=".jpg", help="output format")
    add_bool(parser, "overwrite", False, "re-convert files whose output already exists")
    parser.add_argument("--verbose", action="store_true", help="log more")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        report = convert_images(
            args.output_folder,
            source_image=args.source_image,
            source_folder=None if args.source_image else (args.source_folder or DEFAULT_SOURCE_FOLDER),
            output_extension=args.output_extension,
            overwrite=args.overwrite,
        )
        logger.info("%s", report.summary())
        return 1 if report.failed else 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
