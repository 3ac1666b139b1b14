"""``python -m tests.conformance KIT_DIR [--family F]``: one line per manifest/vector, then a summary."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tests.conformance.families import noise_limited_reason
from tests.conformance.runner import KIT_ENV, default_kit, discover, run_one


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    kit = args.kit_option or args.kit or default_kit()
    if not kit.is_dir():
        print(f"error: conformance kit folder {kit} does not exist", file=sys.stderr)
        return 2
    passed = failed = missing = skipped = 0
    families = args.family or [None]
    for family in families:
        for family_name, kind, path in discover(kit, family):
            if args.name and path.stem not in args.name:
                continue
            outcome = run_one(family_name, kind, path)
            print(outcome.line(), flush=True)
            if args.verbose and outcome.failures:
                for failure in outcome.failures:
                    print("    " + failure.replace("\n", "\n    "))
            if outcome.status == "PASS":
                passed += 1
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
    print(f"{passed} passed, {failed + missing} failed")
    return 0 if failed == 0 and missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
