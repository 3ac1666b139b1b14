"""Time the face-swap pipeline per stage on one pair, then a second pair with the models already loaded.

Runs offline with stand-in weights (python -m tests.standin_weights DIR) and the conformance kit's tiny
NSFW and SDXL models, so it measures the pipeline's own cost on this machine, not image quality.

  python bench/inference.py --weights_dir /tmp/standin [--device cpu] [--paste_back_mode ghost]
  GHOSTV2_WEIGHTS_DIR=/tmp/standin python bench/inference.py
"""
from __future__ import annotations

import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import add_bench_arguments  # noqa: E402
from tests.conformance.runner import default_kit  # noqa: E402
from utils.cli import add_bool, make_parser  # noqa: E402
from utils.image import read_image, write_image  # noqa: E402
from utils.inference.options import EMBEDDING_PATH_FIELDS, STAGES, SwapOptions  # noqa: E402
from utils.inference.swap import FaceSwapper  # noqa: E402
from utils.paste_back import PASTE_BACK_MODES  # noqa: E402

# Why a stage can be missing from a pair's timings.
SKIPPED_BECAUSE = {
    "load": "models already loaded",
    "landmarks": "only for the ghost paste-back",
    "enhance": "--no-enhance_output",
    "inpaint": "off, not after this paste-back, or an empty face mask (stand-in landmarks can collapse)",
}


def tiny_normal_nsfw_model(kit: Path, folder: Path) -> Path:
    """A copy of the kit's tiny NSFW ViT relabelled so that it never flags an image."""
    destination = folder / "tiny_nsfw_normal"
    shutil.copytree(kit / "faces" / "tiny_nsfw_vit", destination)
    config_path = destination / "config.json"
    config = json.loads(config_path.read_text())
    config["id2label"], config["label2id"] = {"0": "normal", "1": "normal"}, {"normal": 0}
    config_path.write_text(json.dumps(config))
    return destination


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(title: str, timings: dict[str, float], wall: float) -> None:
    """Every stage's seconds (or why it did not run), then the pair's wall time and the peak RSS so far."""
    print(f"\n{title}: {wall:.2f} s wall")
    for stage in STAGES:
        if stage in timings:
            print(f"  {stage:<10} {timings[stage]:8.2f} s")
        else:
            print(f"  {stage:<10}        - ({SKIPPED_BECAUSE.get(stage, 'not run')})")
    print(f"  peak RSS   {peak_rss_mib():8.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("bench/inference.py", __doc__)
    add_bench_arguments(parser, kit_use="tiny NSFW and SDXL models")
    parser.add_argument("--paste_back_mode", choices=PASTE_BACK_MODES, default="ghost", help="paste-back mode")
    parser.add_argument("--face_embeddings", choices=tuple(EMBEDDING_PATH_FIELDS), default="cvl_vit",
                        help="embedding model")
    parser.add_argument("--detection_threshold", type=float, default=0.5,
                        help="0.5 makes the stand-in detector find faces")
    add_bool(parser, "enhance_output", True, "GFPGAN")
    add_bool(parser, "inpaint_output", True, "tiny SDXL inpainting")
    add_bool(parser, "release_weights", True, "hand back each model's weight pages after its stage "
                                              "(--no-release_weights: the earlier behaviour, all kept resident)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    kit = args.kit or default_kit()
    examples = REPO_ROOT / "examples"
    source, target = examples / "astronaut.png", examples / "cameraman.png"
    with tempfile.TemporaryDirectory() as scratch:
        options = SwapOptions(
            weights_dir=args.weights_dir, device=args.device, detection_threshold=args.detection_threshold,
            paste_back_mode=args.paste_back_mode, face_embeddings=args.face_embeddings,
            enhance_output=args.enhance_output, inpaint_output=args.inpaint_output, inpainting_seed=0,
            release_weights=args.release_weights,
            nsfw_model=str(tiny_normal_nsfw_model(kit, Path(scratch))),
            inpainting_model=str(kit / "geometry" / "tiny_sdxl_inpaint"),
        )
        swapper = FaceSwapper(options)
        print(f"device {swapper.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
        print(f"pair: {source.name} ({read_image(source).shape[1::-1]}) -> {target.name} "
              f"({read_image(target).shape[1::-1]}), paste-back {options.paste_back_mode}, "
              f"enhance {options.enhance_output}, inpaint {options.inpaint_output}, "
              f"release weights {options.release_weights}")
        start = time.perf_counter()
        swapper.load_models()
        load_time = time.perf_counter() - start
        first = swapper.swap_files(source, target, Path(scratch) / "first.png")
        report("first pair (loads every model the options need)", {"load": load_time, **first.timings},
               time.perf_counter() - start)
        # A new pair (the photos mirrored, so nothing is served from the detection cache), models loaded.
        mirrored = []
        for path in (source, target):
            mirrored.append(write_image(Path(scratch) / f"mirrored_{path.name}", read_image(path)[:, ::-1]))
        start = time.perf_counter()
        second = swapper.swap_files(*mirrored, Path(scratch) / "second.png")
        report("second pair (models loaded)", second.timings, time.perf_counter() - start)
        print(f"models in memory: {', '.join(swapper.models.loaded())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
