"""``python -m tests.conformance KIT_DIR [--family F] [--runtime onnxruntime]``: one line per check, then a summary.

With ``--runtime onnxruntime`` the vectors of every exported network run through their ONNX Runtime twins (exported
from the kit's stand-in weights into ``--onnx_dir``, a temporary folder by default), with an extra runtime column.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from tests.conformance.families import noise_limited_reason
from tests.conformance.runner import KIT_ENV, default_kit, discover, run_one
from utils.cli import add_option_arguments, options_from_arguments
from utils.errors import GhostError
from utils.ort.options import RUNTIME_CHOICES, RUNTIME_HELP, RuntimeOptions
from utils.ort.session import check_provider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance",
        description="Check our modules against a conformance kit: manifests (exact keys, shapes, dtypes) "
        "and vectors (outputs within the tolerance each vector's json gives).",
    )
    parser.add_argument("kit", nargs="?", type=Path, default=None,
                        help=f"kit folder with one sub-folder per family (default: ${KIT_ENV} or ../shared/conformance)")
    parser.add_argument("--kit", dest="kit_option", type=Path, default=None, help="same as the positional KIT_DIR")
    parser.add_argument("--family", action="append", default=None,
                        help="check only this family (repeatable): network, recognition, faces, geometry, liveportrait")
    parser.add_argument("--name", action="append", default=None, help="check only manifests/vectors with this stem")
    parser.add_argument("--verbose", action="store_true", help="print every failing tensor and tracebacks")
    runtime_group = parser.add_argument_group("runtime (network vectors through ONNX Runtime twins)")
    add_option_arguments(runtime_group, RuntimeOptions, RUNTIME_HELP, RUNTIME_CHOICES)
    runtime_group.add_argument("--onnx_dir", type=Path, default=None,
                               help="folder for the stand-in checkpoints and their ONNX exports; files with the same "
                               "weights are reused [default: a temporary folder, removed at the end]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    kit = args.kit_option or args.kit or default_kit()
    if not kit.is_dir():
        print(f"error: conformance kit folder {kit} does not exist", file=sys.stderr)
        return 2
    try:
        runtime = options_from_arguments(RuntimeOptions, args)
        if runtime.runtime != "torch":
            check_provider(runtime)
    except GhostError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if runtime.runtime == "torch":
        return _run(args, kit, None, None)
    if args.onnx_dir is not None:
        return _run(args, kit, runtime, args.onnx_dir)
    with tempfile.TemporaryDirectory(prefix="ghostv2_onnx_") as folder:
        return _run(args, kit, runtime, Path(folder))


def _run(args: argparse.Namespace, kit: Path, runtime: RuntimeOptions | None, onnx_dir: Path | None) -> int:
    passed = failed = missing = skipped = measured = 0
    families = args.family or [None]
    for family in families:
        for family_name, kind, path in discover(kit, family):
            if args.name and path.stem not in args.name:
                continue
            outcome = run_one(family_name, kind, path, runtime, onnx_dir)
            if outcome is None:  # not a network vector: nothing to run on this runtime
                continue
            print(outcome.line(), flush=True)
            if args.verbose and outcome.failures:
                for failure in outcome.failures:
                    print("    " + failure.replace("\n", "\n    "))
            if outcome.status == "PASS":
                passed += 1
            elif outcome.status == "MEASURED":
                measured += 1
            elif outcome.status == "SKIP":
                skipped += 1
            elif outcome.status == "MISSING":
                missing += 1
            else:
                failed += 1
                reason = noise_limited_reason(family_name, path.stem, outcome.failures)
                if reason:
                    print(f"    known limit (README, Conformance status): {reason}")
    print(f"{missing} missing, {skipped} skipped (reference bugs, their _fixed twins are checked)")
    if measured:
        print(f"{measured} measured on {runtime.label()} (error per vector; the fp32 tolerance is not applied)")
    print(f"{passed} passed, {failed + missing} failed")
    return 0 if failed == 0 and missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
