"""Benchmark loading registered checkpoints: seconds and memory per model, as loaded today and as before.

``python -m bench.loading --weights_dir DIR [--models retinaface cvl_vit ...] [--repeats 2] [--device cpu]``

Each load runs in a fresh process, so its memory figures are its own. ``meta`` is ``load_model`` (the
module built on the meta device, the file's memory-mapped tensors assigned, nothing initialised or copied);
``init+copy`` is how the original loads (random initialisation, then a strict copy of the file's tensors).
``touch`` is reading every weight once afterwards: memory-mapped weights are paged in on first use, so a
fair comparison adds it. The files are in the page cache after the first run (as in a second start of the
same program); peak RSS counts the file pages a process maps, as the kernel does.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: put the repository first on the path so `models` and `utils` import.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import multiprocessing
import statistics
import time
from collections.abc import Iterator, Sequence

import torch

from bench.common import add_bench_arguments, print_figures
from bench.network import MIB, _resident_bytes
from bench.train_step import status_mib
from models import registry
from utils.checkpoint import load_into_module, read_state_dict
from utils.cli import make_parser

DEFAULT_SWAP_MODELS = ("retinaface", "cvl_vit", "ghostv2_generator", "face_alignment", "gfpgan_v1_4")
METHODS = ("meta", "init+copy")


def _load_init_copy(name: str, weights_dir: str | None, device: str) -> torch.nn.Module:
    """The original's way: build with random initialisation, then copy the file's tensors in."""
    spec = registry.CHECKPOINTS[name]
    path = registry.checkpoint_path(name, weights_dir)
    module = registry.build_module(name)
    state_dict = registry.convert_state_dict(name, read_state_dict(path))
    load_into_module(module, state_dict, expected=name, path=path, optional_suffixes=spec.optional_key_suffixes)
    return module.to(device).eval()


def _measure(name: str, method: str, weights_dir: str | None, device: str, threads: int) -> tuple[float, ...]:
    """(load s, touch s, RSS rise MiB after load, peak RSS rise MiB) of one load, in this (fresh) process."""
    torch.set_num_threads(threads)
    registry.resolve(registry.CHECKPOINTS[name].builder)  # import the family before the baseline
    baseline = _resident_bytes()
    baseline_peak = status_mib("VmHWM:") or 0.0
    start = time.perf_counter()
    if method == "meta":
        module = registry.load_model(name, device=device, weights_dir=weights_dir)
    else:
        module = _load_init_copy(name, weights_dir, device)
    loaded = time.perf_counter()
    with torch.no_grad():
        for tensor in module.state_dict().values():
            tensor.float().sum().item()
    touched = time.perf_counter()
    rise = (_resident_bytes() - baseline) / MIB
    peak = (status_mib("VmHWM:") or 0.0) - baseline_peak
    return loaded - start, touched - loaded, rise, peak


def run_benchmark(
    models: Sequence[str], repeats: int, weights_dir: str | None, device: str, threads: int
) -> Iterator[str]:
    """One line per model and method (medians of ``repeats`` fresh processes, methods alternating)."""
    yield f"torch {torch.__version__}, device {device}, {threads} CPU threads, medians of {repeats} fresh processes"
    context = multiprocessing.get_context("spawn")
    totals = {method: [0.0, 0.0] for method in METHODS}
    with context.Pool(1, maxtasksperchild=1) as pool:
        for name in models:
            runs: dict[str, list[tuple[float, ...]]] = {method: [] for method in METHODS}
            for _ in range(repeats):
                for method in METHODS:
                    runs[method].append(pool.apply(_measure, (name, method, weights_dir, device, threads)))
            for method in METHODS:
                load, touch, rise, peak = (statistics.median(values) for values in zip(*runs[method]))
                totals[method][0] += load
                totals[method][1] += load + touch
                yield (f"{name:28s} {method:9s} load {load:6.2f} s  +touch {touch:5.2f} s   "
                       f"RSS +{rise:6.0f} MiB  peak +{peak:6.0f} MiB")
    for method, (load, with_touch) in totals.items():
        yield f"{'all of them':28s} {method:9s} load {load:6.2f} s  (with touch {with_touch:.2f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m bench.loading", __doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(registry.CHECKPOINTS), default=list(DEFAULT_SWAP_MODELS),
                        help="checkpoints to load [default: the networks of the default swap]")
    add_bench_arguments(parser)
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per model and method")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be positive")

    return print_figures(lambda: run_benchmark(args.models, args.repeats, args.weights_dir, args.device, args.threads))


if __name__ == "__main__":
    sys.exit(main())
