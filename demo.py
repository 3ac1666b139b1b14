"""Render the demo grid: every source photo swapped into every target photo, models loaded once.

The original demo read five sources and five targets from examples/results/training/; we ship two
public-domain photos (examples/README.md), so by default the grid is 3×3 cells of 256 pixels: a legend
corner, the aligned targets on top, the aligned sources on the left, the results inside.

Examples:
  python demo.py
  python demo.py --sources a.jpg b.jpg c.jpg --targets d.jpg e.jpg --output_file_path grid.png --no-inpaint_output
"""
from __future__ import annotations

import logging
import sys

from models.registry import REPO_ROOT
from utils.cli import configure_logging, make_parser, run_cli
from utils.inference.demo_grid import write_demo_grid
from utils.inference.swap import FaceSwapper
from utils.inference.inference_arguments import add_swap_arguments, swap_options_from_arguments

logger = logging.getLogger("ghostv2")
EXAMPLES = REPO_ROOT / "examples"
EXAMPLE_PHOTOS = [str(EXAMPLES / "astronaut.png"), str(EXAMPLES / "cameraman.png")]
RESULTS = EXAMPLES / "results/demo"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("demo.py", __doc__)
    parser.add_argument("--sources", nargs="+", default=EXAMPLE_PHOTOS, help="photos giving the identities (rows)")
    parser.add_argument("--targets", nargs="+", default=EXAMPLE_PHOTOS,
                        help="photos whose faces are replaced (columns)")
    parser.add_argument("--corner_image", default=None, help="picture for the top-left cell [default: a drawn legend]")
    parser.add_argument("--output_file_path", default=str(RESULTS / "source_target_grid.png"), help="the grid image")
    add_swap_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> None:
        swapper = FaceSwapper(swap_options_from_arguments(args))
        path = write_demo_grid(swapper, args.sources, args.targets, args.output_file_path, args.corner_image)
        logger.info("wrote %s", path)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
