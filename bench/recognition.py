"""Benchmark the recognition models: parameter counts and forward time per batch size.

``python -m bench.recognition [--models cvl_vit facenet ...] [--batch_sizes 1 16] [--repeats 3] [--device cpu]``

Each embedding model is timed through the embedding API (FaceEmbedder: resize of a 256×256 aligned face,
model, normalisation), the DFA aligner through its forward with output_size 256, all under no_grad in
float32. Weights are PyTorch's random initialisation: speed does not depend on their values.
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

import torch

from models.embeddings import FACE_EMBEDDING_NAMES, FaceEmbedder
from models.registry import build_module
from bench.common import print_figures
from utils.cli import make_parser
from utils.device import resolve_device

ALIGNER = "cvlface_aligner"
MODEL_CHOICES = (*FACE_EMBEDDING_NAMES, ALIGNER)
FACE_SIZE = 256


def build_forward(name: str, device: torch.device) -> tuple[torch.nn.Module, Callable[[torch.Tensor], object]]:
    """The module of ``name`` on ``device`` and the call to time (embedding path or aligner forward)."""
    torch.manual_seed(0)
    model = build_module(name).eval()
    if name == ALIGNER:
        aligner = model.to(device)
        return aligner, lambda faces: aligner(faces, output_size=FACE_SIZE)
    embedder = FaceEmbedder(name, model).to(device)
    return embedder, embedder


def parameter_line(name: str, module: torch.nn.Module) -> str:
    learnable = sum(parameter.numel() for parameter in module.parameters())
    stored = sum(tensor.numel() for tensor in module.state_dict().values())
    return f"{name:16s} {learnable:>13,} learnable parameters ({stored:,} values in the checkpoint)"


def time_forward(
    forward: Callable[[torch.Tensor], object], device: torch.device, batch_size: int, repeats: int
) -> list[float]:
    """Seconds of ``repeats`` no-grad forwards on a random batch of 256×256 faces (after one warm-up)."""
    faces = torch.rand(batch_size, 3, FACE_SIZE, FACE_SIZE, device=device) * 2 - 1

    def once() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            forward(faces)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    once()  # first calls select kernels and allocate workspaces
    return [once() for _ in range(repeats)]


def run_benchmark(
    models: Sequence[str], batch_sizes: Sequence[int], repeats: int, device_name: str, threads: int | None
) -> Iterator[str]:
    """The report lines, yielded as each measurement finishes."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    yield f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, float32, input 256x256"
    for name in models:
        module, forward = build_forward(name, device)
        yield parameter_line(name, module)
        for batch_size in batch_sizes:
            seconds = time_forward(forward, device, batch_size, repeats)
            median = statistics.median(seconds)
            yield (
                f"{'':16s} batch {batch_size:3d}: {median * 1000:9.1f} ms/forward "
                f"({median / batch_size * 1000:7.1f} ms/face, best {min(seconds) * 1000:.1f} ms of {len(seconds)})"
            )
        del module, forward


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m bench.recognition", __doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODEL_CHOICES, default=list(MODEL_CHOICES),
                        help="models to time [default: all six embedders and the DFA aligner]")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 16], help="batch sizes to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per batch size (median reported)")
    parser.add_argument("--device", default="cpu", help="compute device (cpu, cuda, cuda:N, mps, auto)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch [default: torch's choice]")
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.batch_sizes) < 1:
        parser.error("--repeats and --batch_sizes must be positive")

    return print_figures(lambda: run_benchmark(args.models, args.batch_sizes, args.repeats, args.device, args.threads))


if __name__ == "__main__":
    sys.exit(main())
