"""Compute budgets for the benchmarks: a network's GFLOP per call and this machine's fp32 matmul peak.

A frame can go no faster than its networks' floating-point work at the machine's peak rate (the "FLOP limit");
comparing a stage's wall time with its FLOP count shows how much of that peak it reaches.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

PEAK_MATMUL_SIZE = 2048


def gflop(call: Callable[[], object]) -> float:
    """Floating-point operations of one ``call()`` (torch's FLOP counter: convolutions, matmuls), in GFLOP."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops() / 1e9


def matmul_peak_gflops(device: torch.device, repeats: int = 5) -> float:
    """The best fp32 GFLOP/s of a ``2048²`` matrix product on ``device`` with torch's current thread count."""
    size = PEAK_MATMUL_SIZE
    first = torch.randn(size, size, device=device)
    second = torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats + 1):  # the first run warms up the kernels
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(first, second)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9
