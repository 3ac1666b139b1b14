"""Video swap speed and memory: frames/s, per-frame stage times and their compute budget on a 720p clip, and peak
RSS of a short and a long clip (streaming keeps memory flat: the two peaks must be within 10 %).

Runs offline with stand-in weights (python -m tests.standin_weights DIR) and the conformance kit's tiny NSFW
model; each clip runs in its own process so that each peak RSS is that clip's alone. Stand-in RetinaFace finds
hundreds of "faces": RetinaFace still runs on every frame (its cost is real), but its detections are trimmed to
the ``--faces`` faces the clip shows, and every one of them is swapped, so the figures are what a real clip costs.

For each network stage the bench prints its GFLOP per frame and the fraction of this machine's fp32 matmul peak
(measured in the same run) that it reached; the whole frame is compared with its networks' FLOP limit (their
GFLOP at that peak) and with one photo pair swapped with the models loaded and the same options.

  python bench/video.py --weights_dir /tmp/standin [--seconds 5 20] [--fps 5] [--faces 1] [--device cpu]
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
from bench.flops import gflop, matmul_peak_gflops  # noqa: E402
from bench.inference import peak_rss_mib, tiny_normal_nsfw_model  # noqa: E402
from models.retinaface import DEFAULT_MAX_SIZE, DetectedFace, resize_factor, sort_faces  # noqa: E402
from tests.cli.fakes import KEYPOINT_LAYOUT, patch_boxes  # noqa: E402
from tests.conformance.runner import default_kit  # noqa: E402
from tests.video_clips import compose, face_crop, write_clip  # noqa: E402
from utils.cli import add_bool, make_parser  # noqa: E402
from utils.image import read_image  # noqa: E402
from utils.inference.options import STAGES, SwapOptions  # noqa: E402
from utils.inference.run import swap_media  # noqa: E402
from utils.inference.selection import FaceSelection  # noqa: E402
from utils.inference.swap import FaceSwapper  # noqa: E402
from utils.inference.video import VideoOptions  # noqa: E402
from utils.paste_back import PASTE_BACK_MODES  # noqa: E402

MAX_RSS_SPREAD = 0.10


def make_clip(path: Path, seconds: float, fps: int, width: int, height: int, faces: int = 1) -> Path:
    """A ``width×height`` H.264+AAC clip of ``faces`` astronaut faces gliding across a grey background."""
    side = min(height // 3, width // (2 * faces))
    face = face_crop(REPO_ROOT / "examples" / "astronaut.png", side)
    count = max(1, round(seconds * fps))
    lane = width // faces

    def frame(index: int):
        shift = int((lane - side) * index / count)
        return compose((width, height), [(face, (lane * number + shift, height // 3)) for number in range(faces)])

    return write_clip(path, [frame(index) for index in range(count)], fps=fps)


class TrimmedDetector:
    """RetinaFace run for its cost, its detections replaced by the composed faces (blobs on the grey background)."""

    def __init__(self, detector) -> None:
        self.detector = detector
        self.model = detector.model

    def with_sizing(self, max_size, upscale=True) -> TrimmedDetector:
        return TrimmedDetector(self.detector.with_sizing(max_size, upscale))

    def detect(self, image):
        return self.detect_batch([image])[0]

    def detect_batch(self, images):
        self.detector.detect_batch(images)
        return [sort_faces([DetectedFace(box, (box[:2] + KEYPOINT_LAYOUT * (box[2:] - box[:2])).astype("float32"), 0.99)
                            for box in patch_boxes(image)]) for image in images]


class TrimmedSwapper(FaceSwapper):
    """A swapper whose detector is trimmed to the composed faces (see TrimmedDetector)."""

    @property
    def detector(self):
        return TrimmedDetector(super().detector)


def network_budget(swapper: FaceSwapper, frame_shape: tuple[int, int], upscale: bool) -> dict[str, float]:
    """GFLOP of one call of each per-frame network: RetinaFace on the frame, the others on one face."""
    options, device = swapper.options, swapper.device
    height, width = frame_shape
    factor = resize_factor(height, width, options.detection_max_size, upscale)
    detector_input = torch.zeros(1, 3, round(height * factor), round(width * factor), device=device)
    face = torch.zeros(1, 3, 256, 256, device=device)
    budget = {"detect": gflop(lambda: swapper.detector.model(detector_input)),
              "generate": gflop(lambda: swapper.generator(face, torch.zeros(1, 512, device=device)))}
    if options.uses_landmarks:
        budget["landmarks"] = gflop(lambda: swapper.landmark_detector.model(face))
    large = torch.zeros(1, 3, 512, 512, device=device)
    if options.enhance_output:
        budget["enhance"] = gflop(lambda: swapper.gfpgan(large, return_rgb=False))
    if options.uses_parser:
        budget["parse"] = gflop(lambda: swapper.face_parser.keywords["model"](large))
    return budget


def photo_pair_seconds(swapper: FaceSwapper) -> float:
    """Wall time of the example photo pair (astronaut → cameraman) with the models loaded (second run)."""
    source, target = (read_image(REPO_ROOT / "examples" / name) for name in ("astronaut.png", "cameraman.png"))
    swapper.swap_images(source, target)
    start = time.perf_counter()
    swapper.swap_images(source, target)
    return time.perf_counter() - start


def run_clip(args, scratch: Path) -> dict:
    """Swap one clip in this process; returns frames, seconds, stage times and the peak RSS (MiB)."""
    torch.set_num_threads(args.threads)
    clip = make_clip(scratch / f"clip_{args.child_seconds}s.mp4", args.child_seconds, args.fps, *args.size,
                     faces=args.faces)
    kit = args.kit or default_kit()
    options = SwapOptions(
        weights_dir=args.weights_dir, device=args.device, detection_threshold=args.detection_threshold,
        detection_max_size=args.detection_max_size, paste_back_mode=args.paste_back_mode,
        enhance_output=args.enhance_output, inpaint_output=False, release_weights=args.release_weights,
        nsfw_model=str(tiny_normal_nsfw_model(kit, scratch)),
    )
    swapper = TrimmedSwapper(options)
    swapper.load_models()
    rss_loaded = peak_rss_mib()
    video = VideoOptions(batch_size=args.batch_size)
    start = time.perf_counter()
    report = swap_media(swapper, [REPO_ROOT / "examples" / "cameraman.png"], clip, scratch / "out.mp4",
                        selection=FaceSelection(swap_all_faces=True), video=video)
    seconds = time.perf_counter() - start
    result = {"frames": report.frames, "faces": report.faces_swapped, "seconds": seconds,
              "timings": report.timings, "rss_loaded_mib": rss_loaded, "peak_rss_mib": peak_rss_mib()}
    if args.budget:
        result["gflop"] = network_budget(swapper, (args.size[1], args.size[0]), video.video_detection_upscale)
        result["peak_gflops"] = matmul_peak_gflops(swapper.device)
        result["photo_pair_seconds"] = photo_pair_seconds(FaceSwapper(options, swapper.models))
    return result


def print_clip(seconds: float, result: dict) -> None:
    frames = result["frames"]
    print(f"\n{seconds:g} s clip: {frames} frames, {result['faces']} faces swapped, {result['seconds']:.1f} s, "
          f"{frames / result['seconds']:.2f} frames/s")
    print("  per frame (ms): " + ", ".join(f"{stage} {1000 * result['timings'][stage] / frames:.1f}"
                                           for stage in STAGES if stage in result["timings"]
                                           and stage not in ("load",)))
    print(f"  peak RSS {result['peak_rss_mib']:.0f} MiB (models loaded: {result['rss_loaded_mib']:.0f} MiB)")
    if "gflop" in result:
        print_budget(result)


def print_budget(result: dict) -> None:
    """Each network stage's GFLOP per frame and fraction of the matmul peak; the frame against its FLOP limit."""
    frames, peak = result["frames"], result["peak_gflops"]
    faces_per_frame = result["faces"] / frames
    frame_ms = 1000 * result["seconds"] / frames
    total_gflop = 0.0
    print(f"  fp32 matmul peak {peak:.1f} GFLOP/s; {faces_per_frame:.2f} face(s) per frame")
    for stage, per_call in result["gflop"].items():
        per_frame = per_call * (1 if stage == "detect" else faces_per_frame)
        total_gflop += per_frame
        stage_ms = 1000 * result["timings"].get(stage, 0.0) / frames
        reached = per_frame / (stage_ms / 1000) / peak if stage_ms else float("nan")
        print(f"  {stage:>9}: {per_frame:7.2f} GFLOP/frame, {stage_ms:8.1f} ms/frame, {100 * reached:5.1f} % of peak")
    limit_ms = 1000 * total_gflop / peak
    photo_ms = 1000 * result["photo_pair_seconds"]
    print(f"  whole frame {frame_ms:.0f} ms = {frame_ms / limit_ms:.2f}x its networks' FLOP limit ({limit_ms:.0f} ms "
          f"for {total_gflop:.1f} GFLOP) = {frame_ms / photo_ms:.3f}x one photo pair with models loaded "
          f"({photo_ms:.0f} ms)")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("bench/video.py", __doc__)
    add_bench_arguments(parser, kit_use="the tiny NSFW model")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 20.0], help="clip lengths")
    parser.add_argument("--fps", type=int, default=2, help="clip frame rate (low: stand-in models are slow on CPU)")
    parser.add_argument("--size", type=int, nargs=2, default=[1280, 720], metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--batch_size", type=int, default=None,
                        help="--batch_size of the swap [default: as inference.py, 8 on CUDA, 1 on CPU]")
    parser.add_argument("--faces", type=int, default=1, help="faces the clip shows (all are swapped)")
    parser.add_argument("--detection_max_size", type=int, default=DEFAULT_MAX_SIZE,
                        help="RetinaFace input long side (frames are not scaled up)")
    parser.add_argument("--detection_threshold", type=float, default=0.5,
                        help="0.5 makes the stand-in detector find faces")
    parser.add_argument("--paste_back_mode", choices=PASTE_BACK_MODES, default="ghost", help="paste-back mode")
    add_bool(parser, "enhance_output", False, "GFPGAN (slow on CPU)")
    add_bool(parser, "release_weights", True, "hand back each model's weight pages after its stage")
    add_bool(parser, "budget", True, "print each network's GFLOP, the matmul peak fraction and the photo-pair ratio")
    parser.add_argument("--child_seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.child_seconds is not None:
            print(json.dumps(run_clip(args, Path(scratch))))
            return 0
        print(f"device {args.device}, {args.threads} threads, torch {torch.__version__}, clips {args.size[0]}x"
              f"{args.size[1]} at {args.fps} frames/s, {args.faces} face(s), detection at {args.detection_max_size} px, paste-back "
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
