"""Benchmark the faces family: RetinaFace detection at two long sides, FAN, GFPGAN and BiSeNet forwards.

``python -m bench.faces [--repeats 3] [--device cpu] [--threads N] [--only detect fan gfpgan bisenet]``

Detection is the full ``FaceDetector.detect`` call on a 4000x3000 BGR photo-sized image (resize to the
long side, network, decoding, threshold 0.97, NMS); the others time one no-grad float32 forward at the
size the pipeline uses. On CUDA every forward (and the bare RetinaFace network at 1280) is also timed
under float16 autocast, with its largest deviation from the float32 output relative to the float32
output's largest magnitude (with random weights: an indication; real weights decide). Weights are
PyTorch's random initialisation: network speed does not depend on their values. Untrained detector heads
would, however, pass thousands of junk priors to NMS, which real weights never do on a photo; the
benchmark therefore sets the face-class logits of the detector heads to "background" so that the detect
time is that of a photo with few faces.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: put the repository first on the path so `models` and `utils` import.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import statistics
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from bench.network import fp16_deviation
from models.registry import build_module
from models.retinaface import FaceDetector
from bench.common import print_figures
from utils.cli import make_parser
from utils.device import autocast, resolve_device

PARTS = ("detect", "fan", "gfpgan", "bisenet")
DETECTION_LONG_SIDES = (640, 1280)
PHOTO_HW = (3000, 4000)


def time_call(call: Callable[[], object], device: torch.device, repeats: int) -> list[tuple[float, float]]:
    """(wall seconds, process CPU seconds per thread) of ``repeats`` calls, after one warm-up call.

    On a shared machine the wall time is inflated by other jobs; CPU time per thread estimates the
    uncontended time (as the conformance kit's READMEs report it).
    """

    def once() -> tuple[float, float]:
        start, cpu_start = time.perf_counter(), time.process_time()
        with torch.no_grad():
            call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, (time.process_time() - cpu_start) / torch.get_num_threads()

    once()
    return [once() for _ in range(repeats)]


def _line(label: str, timings: Sequence[tuple[float, float]]) -> str:
    wall = statistics.median(wall for wall, _ in timings)
    cpu = statistics.median(cpu for _, cpu in timings)
    return f"{label:44s} wall median {wall:7.3f} s   cpu/thread {cpu:7.3f} s   (n={len(timings)})"


def _network(name: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_module(name).to(device).eval()


def _quiet_detector_heads(network: torch.nn.Module) -> torch.nn.Module:
    """Make every prior "background" (logits +10 / -10) so NMS sees what a real photo gives it."""
    with torch.no_grad():
        for head in network.ClassHead:
            head.conv1x1.weight.zero_()
            head.conv1x1.bias.copy_(torch.tensor([10.0, -10.0]).repeat(head.conv1x1.out_channels // 2))
    return network


def run_benchmark(parts: Sequence[str], repeats: int, device_name: str, threads: int | None) -> Iterator[str]:
    """The report lines, yielded as each measurement finishes."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    yield f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, float32"
    if "detect" in parts:
        detector = FaceDetector(_quiet_detector_heads(_network("retinaface", device)), device, threshold=0.97)
        photo = np.random.default_rng(0).integers(0, 256, (*PHOTO_HW, 3), dtype=np.uint8)
        for long_side in DETECTION_LONG_SIDES:
            detector.max_size = long_side
            label = f"RetinaFace detect {PHOTO_HW[1]}x{PHOTO_HW[0]} -> long side {long_side}"
            yield _line(label, time_call(lambda: detector.detect(photo), device, repeats))
        del detector
    forwards = {
        "fan": [("FAN-4 forward 1x3x256x256", "face_alignment", 256)],
        "gfpgan": [("GFPGANv1Clean forward 1x3x512x512", "gfpgan_v1_4", 512)],
        "bisenet": [("BiSeNet forward 1x3x256x256 (inference)", "bisenet", 256),
                    ("BiSeNet forward 1x3x512x512", "bisenet", 512)],
    }
    if device.type == "cuda" and "detect" in parts:
        forwards["detect"] = [("RetinaFace forward 1x3x1280x1280", "retinaface", 1280)]
    for part in parts:
        for label, name, size in forwards.get(part, []):
            network = _network(name, device)
            x = torch.rand(1, 3, size, size, device=device)
            yield _line(label, time_call(lambda: network(x), device, repeats))
            if device.type == "cuda":
                with autocast(device, True):
                    timings = time_call(lambda: network(x), device, repeats)
                deviation = fp16_deviation(lambda: network(x))
                yield f"{_line(label + ' fp16', timings)}   fp16 vs fp32 {deviation:.1e} of max"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m bench.faces", __doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (after one warm-up)")
    parser.add_argument("--device", default="cpu", help="compute device (auto, cpu, cuda, cuda:N, mps)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [default: torch's choice]")
    args = parser.parse_args(argv)

    return print_figures(lambda: run_benchmark(args.only, args.repeats, args.device, args.threads))


if __name__ == "__main__":
    sys.exit(main())
