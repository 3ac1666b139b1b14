"""Benchmark torch eager against ONNX Runtime, network by network, in one run and on the same inputs.

``python bench/onnx.py --weights_dir DIR [--threads 2] [--repeats 3] [--only retinaface generator ...]``

Each network is loaded from the registry (stand-in weights from ``python -m tests.standin_weights DIR`` are fine:
speed does not depend on the values), wrapped by ``utils.ort.wrap_network`` (the ONNX file beside the checkpoint is
exported on first use, outside the timing), and timed on the CPU with ``--threads`` threads on both runtimes: median
wall milliseconds and CPU milliseconds per thread (the uncontended estimate on a shared machine), the ratio
ONNX Runtime / torch, and the largest difference between the two outputs.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import statistics
from collections.abc import Iterator

import torch

from bench.common import add_bench_arguments, print_figures
from bench.faces import time_call
from models.registry import checkpoint_path, load_model
from utils.cli import make_parser
from utils.ort import RuntimeOptions, wrap_network
from utils.ort.networks import example_inputs

# bench name -> (registry network, input shapes replacing the export example's, where the pipeline differs)
NETWORKS = {
    "retinaface_640": ("retinaface", [(1, 3, 480, 640)]),
    "retinaface_1280": ("retinaface", [(1, 3, 960, 1280)]),
    "fan": ("face_alignment", None),
    "cvl_vit": ("cvl_vit", None),
    "generator": ("ghostv2_generator", None),
    "gfpgan": ("gfpgan_v1_4", None),
    "bisenet": ("bisenet", None),
}


def _flat(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    return [tensor for item in value for tensor in _flat(item)] if isinstance(value, (tuple, list)) else []


def figures(weights_dir: str | None, threads: int, repeats: int, only: list[str]) -> Iterator[str]:
    torch.set_num_threads(threads)
    device = torch.device("cpu")
    options = RuntimeOptions("onnxruntime", threads=threads)
    yield f"torch {torch.__version__} eager vs onnxruntime (CPU provider), {threads} threads, median of {repeats}"
    yield f"{'network':16s} {'torch ms':>10s} {'ort ms':>10s} {'ratio':>6s}   {'cpu/thread ms':>21s}  max |diff|"
    for bench_name in only:
        name, shapes = NETWORKS[bench_name]
        module = load_model(name, weights_dir=weights_dir)
        inputs = example_inputs(name)
        if shapes is not None:
            inputs = tuple(torch.rand(*shape) * 2 - 1 for shape in shapes)
        twin = wrap_network(name, module, checkpoint_path(name, weights_dir), inputs, options, device)
        call_kwargs = {"randomize_noise": False} if name.startswith("gfpgan") else {}
        torch_times = time_call(lambda: module(*inputs, **call_kwargs), device, repeats)
        ort_times = time_call(lambda: twin(*inputs, **call_kwargs), device, repeats)
        with torch.no_grad():
            difference = max(float((ours - theirs).abs().max()) for ours, theirs in
                              zip(_flat(twin(*inputs, **call_kwargs)), _flat(module(*inputs, **call_kwargs))))
        wall = [statistics.median(run[0] for run in times) * 1000 for times in (torch_times, ort_times)]
        cpu = [statistics.median(run[1] for run in times) * 1000 for times in (torch_times, ort_times)]
        yield (f"{bench_name:16s} {wall[0]:10.1f} {wall[1]:10.1f} {wall[1] / wall[0]:5.2f}x   "
               f"{cpu[0]:9.1f} vs {cpu[1]:9.1f}  {difference:.2g}")
        del module, twin


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("bench/onnx.py", __doc__)
    add_bench_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per network and runtime (after a warm-up)")
    parser.add_argument("--only", nargs="+", choices=tuple(NETWORKS), default=list(NETWORKS),
                        help="networks to time")
    args = parser.parse_args(argv)
    return print_figures(lambda: figures(args.weights_dir, args.threads, args.repeats, args.only))


if __name__ == "__main__":
    sys.exit(main())
