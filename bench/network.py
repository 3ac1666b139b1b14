"""Benchmark the AEI-Net generator: forward time and peak memory per batch size, and parameter counts.

``python -m bench.network [--batch_sizes 1 16] [--repeats 1] [--backbone unet] [--num_blocks 2]``

CPU runs in float32; where CUDA is available the generator is also timed on the GPU in float32 and with
float16 autocast, and the fp16 output's largest deviation from the fp32 one is printed. Weights are PyTorch's random initialisation (speed does not depend on their values).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: put the repository first on the path, or this file would shadow the `network` package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.common import timing_summary
from network.aeinet import BACKBONES, AEINet
from network.discriminator import MultiscaleDiscriminator
from utils.cli import add_bool, make_parser, run_cli
from utils.device import autocast

IMAGE_SIZE = 256
MIB = 2**20
_STATM = Path("/proc/self/statm")


@dataclass
class ForwardTiming:
    """Seconds per forward pass (one entry per repeat) and the peak memory one pass needed."""

    device: str
    precision: str
    batch_size: int
    seconds: list[float]
    peak_memory_mib: float | None
    memory_kind: str

    def line(self) -> str:
        return (f"{self.device:5s} {self.precision:5s} batch {self.batch_size:3d}: "
                + timing_summary(self.seconds, self.batch_size, "forward", "ms", self.peak_memory_mib, self.memory_kind))


def _resident_bytes() -> int:
    return int(_STATM.read_text().split()[1]) * 4096


@contextmanager
def cpu_peak_tracker(interval: float = 0.002) -> Iterator[dict[str, float | None]]:
    """Track the rise of the process's resident memory above its level at entry (Linux /proc; else None)."""
    result: dict[str, float | None] = {"peak_mib": None}
    if not _STATM.exists():
        yield result
        return
    baseline = peak = _resident_bytes()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _resident_bytes())
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        peak = max(peak, _resident_bytes())
        result["peak_mib"] = (peak - baseline) / MIB


def time_forward(
    generator: AEINet, device: torch.device, batch_size: int, fp16: bool, repeats: int
) -> ForwardTiming:
    """Time ``repeats`` no-grad forwards of a random batch (after one untimed warm-up at this size on CUDA)."""
    target = torch.rand(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE, device=device) * 2 - 1
    identity = F.normalize(torch.randn(batch_size, generator.c_id, device=device), dim=1)
    cuda = device.type == "cuda"

    def forward() -> None:
        with torch.no_grad(), autocast(device, fp16):
            generator(target, identity)
        if cuda:
            torch.cuda.synchronize(device)

    if cuda:
        forward()  # cuDNN picks its algorithms on the first call
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
    seconds = []
    with cpu_peak_tracker() as cpu_peak:
        for _ in range(repeats):
            start = time.perf_counter()
            forward()
            seconds.append(time.perf_counter() - start)
    if cuda:
        peak, kind = (torch.cuda.max_memory_allocated(device) - baseline) / MIB, "CUDA allocated above weights"
    else:
        peak, kind = cpu_peak["peak_mib"], "RSS rise"
    return ForwardTiming(device.type, "fp16" if fp16 else "fp32", batch_size, seconds, peak, kind)


def _first_tensor(output: object) -> torch.Tensor:
    while isinstance(output, (tuple, list)):
        output = output[0]
    return output


def fp16_deviation(call: Callable[[], object]) -> float:
    """max |fp16 autocast output − float32 output| / max |float32 output| of ``call`` (a CUDA forward)."""
    with torch.no_grad():
        reference = _first_tensor(call()).float()
        with autocast(torch.device("cuda"), True):
            half = _first_tensor(call()).float()
    return float((half - reference).abs().max() / reference.abs().max().clamp_min(1e-12))


def count_parameters(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def parameter_report(generator: AEINet) -> list[str]:
    """Parameter counts of the generator (encoder / AAD generator) and of the training discriminator."""
    with torch.device("meta"):
        discriminator = MultiscaleDiscriminator()
    return [
        f"AEI-Net backbone={generator.backbone}, num_blocks={generator.num_blocks}: "
        f"{count_parameters(generator):,} parameters (attribute encoder {count_parameters(generator.encoder):,}, "
        f"AAD generator {count_parameters(generator.generator):,})",
        f"multiscale discriminator: {count_parameters(discriminator):,} parameters",
    ]


def run_benchmark(
    backbone: str, num_blocks: int, batch_sizes: Sequence[int], repeats: int, use_cuda: bool, threads: int | None
) -> Iterator[str]:
    """The report lines of the benchmark, yielded as each measurement finishes."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    generator = AEINet(backbone=backbone, num_blocks=num_blocks).eval()
    yield from parameter_report(generator)
    yield f"forward at {IMAGE_SIZE}x{IMAGE_SIZE}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    runs = [(torch.device("cpu"), False)]
    if use_cuda and torch.cuda.is_available():
        runs += [(torch.device("cuda"), False), (torch.device("cuda"), True)]
        yield f"CUDA device: {torch.cuda.get_device_name()}"
    for device, fp16 in runs:
        generator.to(device)
        if device.type == "cpu":
            time_forward(generator, device, 1, fp16, 1)  # warm-up: first-call allocations and kernel selection
        for batch_size in batch_sizes:
            yield time_forward(generator, device, batch_size, fp16, repeats).line()
        if fp16:
            target = torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE, device=device) * 2 - 1
            identity = F.normalize(torch.randn(1, generator.c_id, device=device), dim=1)
            deviation = fp16_deviation(lambda: generator(target, identity))
            yield f"cuda  fp16 swapped face vs fp32: max deviation {deviation:.1e} of the fp32 output's max"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m bench.network", __doc__.split("\n\n")[0])
    parser.add_argument("--backbone", choices=BACKBONES, default="unet", help="attribute encoder backbone")
    parser.add_argument("--num_blocks", type=int, default=2, help="AAD units per residual block")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 16], help="batch sizes to time")
    parser.add_argument("--repeats", type=int, default=1, help="timed forwards per batch size (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch [default: torch's choice]")
    add_bool(parser, "cuda", True, "also time on CUDA (fp32 and fp16 autocast) when a GPU is available")
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.batch_sizes) < 1:
        parser.error("--repeats and --batch_sizes must be positive")

    def body() -> None:
        lines = run_benchmark(args.backbone, args.num_blocks, args.batch_sizes, args.repeats, args.cuda, args.threads)
        for line in lines:
            print(line, flush=True)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
