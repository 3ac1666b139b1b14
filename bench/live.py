"""Live swap speed: end-to-end latency (camera capture to display) and frames/s at two detection sizes, with and
without GFPGAN, through the same loop as live.py (capture thread, queue of 1 that drops the oldest frame).

The camera is a stand-in that delivers a 640x480 picture of the astronaut at --camera_fps like a real one (frames
the swap cannot take are dropped and counted). Runs offline with stand-in weights (python -m tests.standin_weights
DIR) and the conformance kit's tiny NSFW model. Stand-in RetinaFace finds hundreds of "faces": it still runs on
every frame (its cost is real), but its detections are trimmed to the one face the picture shows (bench/video.py's
TrimmedSwapper), which is swapped. Model loading is outside the timed runs.

  python bench/live.py --weights_dir /tmp/standin [--seconds 20] [--device cuda]
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import add_bench_arguments, print_figures  # noqa: E402
from bench.inference import tiny_normal_nsfw_model  # noqa: E402
from bench.video import TrimmedSwapper  # noqa: E402
from tests.conformance.runner import default_kit  # noqa: E402
from tests.video_clips import compose, face_crop  # noqa: E402
from utils.cli import make_parser  # noqa: E402
from utils.inference.model_cache import ModelCache  # noqa: E402
from utils.inference.options import SwapOptions  # noqa: E402
from utils.inference.selection import FaceSelection  # noqa: E402
from utils.inference.stream import StreamOptions  # noqa: E402
from utils.live.camera import FrameListCamera  # noqa: E402
from utils.live.options import LiveOptions  # noqa: E402
from utils.live.run import run_live  # noqa: E402
from utils.live.stream import open_live_stream  # noqa: E402

SOURCE = REPO_ROOT / "examples" / "cameraman.png"


class Display:
    """Stands in for the window: takes each swapped frame (the loop times capture to the end of ``write``)."""

    stop_requested = False

    def __init__(self) -> None:
        self.frames = 0

    def write(self, image, seconds: float) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


def camera_frame(size: tuple[int, int]):
    """A ``width×height`` BGR picture of the astronaut's face (a third of the height) on grey."""
    width, height = size
    face = face_crop(REPO_ROOT / "examples" / "astronaut.png", height // 3)
    return compose(size, [(face, ((width - face.shape[1]) // 2, height // 3))])


def measure(args, options: SwapOptions, models: ModelCache, enhance_every: int) -> str:
    """One configuration: the loop run for ``--seconds`` after one warm-up frame; frames/s, latency, stage times."""
    live = LiveOptions(duration_seconds=args.seconds, max_latency_ms=args.max_latency_ms)
    frame = camera_frame(tuple(args.size))
    swapper = TrimmedSwapper(options, models)

    def open_warm_stream():
        stream = open_live_stream(swapper, [SOURCE], FaceSelection(), StreamOptions(enhance_every=enhance_every))
        stream.swap(frame, 0.0)  # first calls of each network (allocations, kernel choice) are not timed
        swapper.timings.clear()
        return stream

    camera = FrameListCamera([frame], fps=args.camera_fps, repeat=10**9)
    stats = run_live(live, open_warm_stream, camera, outputs=[Display()])
    dropped = 100 * stats.dropped / max(1, stats.frames_captured)
    stages = ", ".join(f"{stage} {1000 * seconds / max(1, stats.frames_swapped):.0f}"
                       for stage, seconds in swapper.timings.items() if stage != "load")
    return (f"{stats.fps:6.2f} frames/s, latency median {stats.latency_ms(50):7.0f} ms, p95 "
            f"{stats.latency_ms(95):7.0f} ms, max {stats.max_latency * 1000:7.0f} ms; {stats.frames_swapped} "
            f"swapped, {dropped:.0f} % of {stats.frames_captured} camera frames dropped\n"
            f"    per swapped frame (ms): {stages}")


def figures(args):
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    yield (f"device {args.device}, {args.threads} threads, torch {torch.__version__}, camera {args.size[0]}x"
           f"{args.size[1]} at {args.camera_fps:g} frames/s, {args.seconds:g} s per row, paste-back "
           f"{args.paste_back_mode}, load average {load:.1f}")
    with tempfile.TemporaryDirectory() as scratch:
        base = SwapOptions(weights_dir=args.weights_dir, device=args.device, detection_threshold=0.5,
                           paste_back_mode=args.paste_back_mode, inpaint_output=False, enhance_output=False,
                           nsfw_model=str(tiny_normal_nsfw_model(args.kit or default_kit(), Path(scratch))))
        models = ModelCache()
        for size in args.detection_sizes:
            for enhance in (False, True):
                options = replace(base, detection_max_size=size, enhance_output=enhance)
                label = f"detection {size:>4} px, GFPGAN {'every frame' if enhance else 'off':<11}"
                yield f"{label}: {measure(args, options, models, 1)}"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("bench/live.py", __doc__)
    add_bench_arguments(parser, kit_use="the tiny NSFW model")
    parser.add_argument("--seconds", type=float, default=20.0, help="camera time per configuration")
    parser.add_argument("--camera_fps", type=float, default=30.0, help="frames/s the stand-in camera delivers")
    parser.add_argument("--size", type=int, nargs=2, default=[640, 480], metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--detection_sizes", type=int, nargs="+", default=[320, 640])
    parser.add_argument("--paste_back_mode", default="ghost", help="paste-back mode")
    parser.add_argument("--max_latency_ms", type=float, default=LiveOptions.max_latency_ms,
                        help="latency budget of the loop (live.py's --max_latency_ms)")
    args = parser.parse_args(argv)
    return print_figures(lambda: figures(args))


if __name__ == "__main__":
    sys.exit(main())
