"""Video swap speed and memory: frames/s and per-frame stage times on a 720p clip, and peak RSS of a short and a
long clip (streaming keeps memory flat: the two peaks must be within 10 %).

Runs offline with stand-in weights (python -m tests.standin_weights DIR) and the conformance kit's tiny NSFW
model; each clip runs in its own process so that each peak RSS is that clip's alone. Stand-in RetinaFace finds
hundreds of "faces"; one per frame is swapped (--target_face_index 0).

  python bench/video.py --weights_dir /tmp/standin [--seconds 5 20] [--fps 5] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import add_bench_arguments  # noqa: E402
from bench.inference import peak_rss_mib, tiny_normal_nsfw_model  # noqa: E402
from tests.conformance.runner import default_kit  # noqa: E402
from tests.video_clips import compose, face_crop, write_clip  # noqa: E402
from utils.cli import add_bool, make_parser  # noqa: E402
from utils.inference.options import STAGES, SwapOptions  # noqa: E402
from utils.inference.run import swap_media  # noqa: E402
from utils.inference.swap import FaceSwapper  # noqa: E402
from utils.inference.video import VideoOptions  # noqa: E402
from utils.paste_back import PASTE_BACK_MODES  # noqa: E402

MAX_RSS_SPREAD = 0.10


def make_clip(path: Path, seconds: float, fps: int, width: int, height: int) -> Path:
    """A ``width×height`` H.264+AAC clip of the astronaut's face gliding across a grey background."""
    face = face_crop(REPO_ROOT / "examples" / "astronaut.png", height // 3)
    count = max(1, round(seconds * fps))
    frames = (compose((width, height), [(face, (int((width - face.shape[1]) * index / count), height // 3))])
              for index in range(count))
    return write_clip(path, list(frames), fps=fps)


def run_clip(args, scratch: Path) -> dict:
    """Swap one clip in this process; returns frames, seconds, stage times and the peak RSS (MiB)."""
    torch.set_num_threads(args.threads)
    clip = make_clip(scratch / f"clip_{args.child_seconds}s.mp4", args.child_seconds, args.fps, *args.size)
    kit = args.kit or default_kit()
    options = SwapOptions(
        weights_dir=args.weights_dir, device=args.device, detection_threshold=args.detection_threshold,
        detection_max_size=args.detection_max_size, paste_back_mode=args.paste_back_mode,
        enhance_output=args.enhance_output, inpaint_output=False, release_weights=args.release_weights,
        nsfw_model=str(tiny_normal_nsfw_model(kit, scratch)),
    )
    swapper = FaceSwapper(options)
    swapper.load_models()
    rss_loaded = peak_rss_mib()
    start = time.perf_counter()
    report = swap_media(swapper, [REPO_ROOT / "examples" / "cameraman.png"], clip, scratch / "out.mp4",
                        video=VideoOptions(batch_size=args.batch_size))
    return {"frames": report.frames, "faces": report.faces_swapped, "seconds": time.perf_counter() - start,
            "timings": report.timings, "rss_loaded_mib": rss_loaded, "peak_rss_mib": peak_rss_mib()}


def print_clip(seconds: float, result: dict) -> None:
    frames = result["frames"]
    print(f"\n{seconds:g} s clip: {frames} frames, {result['faces']} faces swapped, {result['seconds']:.1f} s, "
          f"{frames / result['seconds']:.2f} frames/s")
    print("  per frame (ms): " + ", ".join(f"{stage} {1000 * result['timings'][stage] / frames:.1f}"
                                           for stage in STAGES if stage in result["timings"]
                                           and stage not in ("load",)))
    print(f"  peak RSS {result['peak_rss_mib']:.0f} MiB (models loaded: {result['rss_loaded_mib']:.0f} MiB)")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("bench/video.py", __doc__)
    add_bench_arguments(parser, kit_use="the tiny NSFW model")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 20.0], help="clip lengths")
    parser.add_argument("--fps", type=int, default=2, help="clip frame rate (low: stand-in models are slow on CPU)")
    parser.add_argument("--size", type=int, nargs=2, default=[1280, 720], metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--batch_size", type=int, default=None,
                        help="--batch_size of the swap [default: as inference.py, 8 on CUDA, 1 on CPU]")
    parser.add_argument("--detection_max_size", type=int, default=640, help="RetinaFace input long side")
    parser.add_argument("--detection_threshold", type=float, default=0.5,
                        help="0.5 makes the stand-in detector find faces")
    parser.add_argument("--paste_back_mode", choices=PASTE_BACK_MODES, default="ghost", help="paste-back mode")
    add_bool(parser, "enhance_output", False, "GFPGAN (slow on CPU)")
    add_bool(parser, "release_weights", True, "hand back each model's weight pages after its stage")
    parser.add_argument("--child_seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.child_seconds is not None:
            print(json.dumps(run_clip(args, Path(scratch))))
            return 0
        print(f"device {args.device}, {args.threads} threads, torch {torch.__version__}, clips {args.size[0]}x"
              f"{args.size[1]} at {args.fps} frames/s, detection at {args.detection_max_size} px, paste-back "
              f"{args.paste_back_mode}, enhance {args.enhance_output}, batch {args.batch_size}, release weights "
              f"{args.release_weights}")
    peaks = {}
    for seconds in args.seconds:
        child = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--child_seconds",
                 str(seconds)]
        completed = subprocess.run(child, capture_output=True, text=True, env={**os.environ}, check=False)
        if completed.returncode != 0:
            print(completed.stderr, file=sys.stderr)
            return completed.returncode
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        print_clip(seconds, result)
        peaks[seconds] = result["peak_rss_mib"]
    if len(peaks) > 1:
        spread = max(peaks.values()) / min(peaks.values()) - 1
        verdict = "flat" if spread <= MAX_RSS_SPREAD else "NOT flat"
        print(f"\npeak RSS spread across clip lengths: {100 * spread:.1f} % ({verdict}, limit "
              f"{100 * MAX_RSS_SPREAD:.0f} %)")
        return 0 if spread <= MAX_RSS_SPREAD else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
