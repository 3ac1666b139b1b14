"""Write stand-in weight files for every registered checkpoint, so every CLI runs end to end offline.

``python -m tests.standin_weights OUT_DIR [--set inference|all] [--kit KIT_DIR]``

Each file has exactly the keys, shapes and dtypes of its manifest, filled by the kit's ``fill.py``
(plus the fixed graph constants a family README names), at the same relative path as the real
download — CLIs load them exactly as they load the real weights.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from models.registry import CheckpointSpec, read_manifest, specs_for_set
from tests.conformance.runner import default_kit, load_fill
from utils.checkpoint import write_state_dict

logger = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64, "bool": torch.bool}


def standin_state_dict(spec: CheckpointSpec, kit_dir: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """Fill the manifest's layout with the kit's recipe (keys as the released file carries them)."""
    fill = load_fill(kit_dir)
    manifest = read_manifest(spec.manifest)
    state_dict = {}
    for key, (shape, dtype) in manifest["keys"].items():
        like = torch.empty(shape, dtype=DTYPES[dtype], device="meta")
        state_dict[key] = fill.fill_tensor(key, like, seed)
    # Graph constants (e.g. the LivePortrait landmark network's ONNX scalars) must hold real values.
    for key, constant in manifest.get("onnx_constants", {}).items():
        value = torch.tensor(constant["value_in_conformance_standin"], dtype=state_dict[key].dtype)
        state_dict[key] = value.reshape(state_dict[key].shape)
    return {spec.standin_prefix + key: value for key, value in state_dict.items()}


def write_standins(out_dir: Path, download_set: str = "all", kit_dir: Path | None = None, seed: int = 0) -> list[Path]:
    """Write every checkpoint of ``download_set`` under ``out_dir``; skip files already there."""
    kit_dir = Path(kit_dir) if kit_dir else default_kit()
    written = []
    for spec in specs_for_set(download_set):
        path = Path(out_dir) / spec.path
        if not path.exists():
            logger.info("writing stand-in %s", path)
            write_state_dict(standin_state_dict(spec, kit_dir, seed), path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.standin_weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="weights folder to create (same layout as weights/)")
    parser.add_argument("--set", dest="download_set", choices=("inference", "all"), default="all",
                        help="which download script's files to write (default: all)")
    parser.add_argument("--kit", type=Path, default=None, help="conformance kit folder (default: ../shared/conformance)")
    parser.add_argument("--seed", type=int, default=0, help="fill seed (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kit = args.kit or default_kit()
    if not (kit / "fill.py").is_file():
        print(f"error: {kit / 'fill.py'} not found; pass --kit", file=sys.stderr)
        return 2
    paths = write_standins(args.out_dir, args.download_set, kit, args.seed)
    print(f"{len(paths)} stand-in checkpoints in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
