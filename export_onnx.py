"""Export the inference networks to ONNX files beside their checkpoints, for ``--runtime onnxruntime``.

Each file (``X.safetensors`` -> ``X.onnx``, ``X.fp16.onnx`` with --fp16) records the checkpoint's SHA-256 and the
exporter's settings; ONNX Runtime refuses a file exported from another checkpoint or by another exporter version.
A missing file is also exported on first use by --runtime onnxruntime; this script does it ahead of time.

Examples:
  python export_onnx.py                                   # every network whose checkpoint is in weights/
  python export_onnx.py --models retinaface gfpgan_v1_4 --fp16 --weights_dir /data/ghost_weights
  python export_onnx.py --models ghostv2_generator --force  # after replacing the checkpoint
"""
from __future__ import annotations

import sys

from utils.cli import add_bool, configure_logging, make_parser, run_cli
from utils.ort.networks import EXPORTABLE


def build_parser():
    parser = make_parser("export_onnx.py", __doc__)
    parser.add_argument("--weights_dir", default=None,
                        help="folder holding the downloaded weights [default: $GHOSTV2_WEIGHTS_DIR, else weights/ "
                        "beside the scripts]; the ONNX files are written beside the checkpoints")
    parser.add_argument("--models", nargs="+", choices=EXPORTABLE, default=None, metavar="NAME",
                        help="networks to export (registry names: " + ", ".join(EXPORTABLE) + ") [default: every "
                        "one whose checkpoint is present]")
    add_bool(parser, "fp16", False, "also write half-precision copies (.fp16.onnx) for GPU execution providers")
    add_bool(parser, "force", False, "export again even when an up-to-date file is there")
    add_bool(parser, "verbose", False, "log every library message")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def run() -> int:
        from utils.ort.registry_export import export_registry_networks

        results = export_registry_networks(args.weights_dir, args.models, fp16=args.fp16, force=args.force)
        for result in results:
            where = ", ".join(str(path) for path in result.paths) or result.reason
            print(f"{result.name}: {result.status} ({where})")
        return 0

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
