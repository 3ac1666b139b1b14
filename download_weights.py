"""Download the GhostV2 checkpoints, or check a weights folder against the manifests.

Examples:
  python download_weights.py --set inference
  python download_weights.py --set all --weights_dir /data/ghostv2_weights
  python download_weights.py --set all --check
"""
from __future__ import annotations

import sys
from pathlib import Path

from utils.cli import configure_logging, make_parser, run_cli
from utils.download import check_weights, download_checkpoints, prefetch_hub_models


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("download_weights.py", __doc__)
    parser.add_argument("--set", dest="download_set", choices=("inference", "all"), default="inference",
                        help="inference: what inference.py needs; all: also training and preprocessing weights")
    parser.add_argument("--weights_dir", type=Path, default=None,
                        help="destination folder [default: $GHOSTV2_WEIGHTS_DIR, else weights/ beside the scripts]")
    parser.add_argument("--no-hub", dest="hub", action="store_false",
                        help="do not pre-fetch the Hugging Face models (NSFW classifier, SDXL inpainting)")
    parser.add_argument("--check", action="store_true",
                        help="download nothing; check the files present against their manifests (exit 1 on a problem)")
    args = parser.parse_args(argv)
    configure_logging()

    def body() -> int:
        if args.check:
            results = check_weights(args.download_set, args.weights_dir)
            for result in results:
                status = "OK     " if result.problem is None else "PROBLEM"
                print(f"{status} {result.path}" + ("" if result.problem is None else f": {result.problem}"))
            return 0 if all(result.problem is None for result in results) else 1
        failures = download_checkpoints(args.download_set, args.weights_dir)
        if args.hub:
            failures += prefetch_hub_models(args.download_set)
        if failures:
            print(f"error: {len(failures)} download(s) failed: {', '.join(failures)}; run the script again to resume",
                  file=sys.stderr)
            return 1
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
