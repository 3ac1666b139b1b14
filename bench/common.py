"""What every benchmark script shares: its flags (weights, kit, device, CPU threads) and printing its figures."""
from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from utils.cli import run_cli


def add_bench_arguments(parser: argparse.ArgumentParser, kit_use: str | None = None, threads: int | None = 2) -> None:
    """``--weights_dir``, ``--device``, ``--threads`` (default ``threads``), and ``--kit`` when ``kit_use`` says why."""
    parser.add_argument("--weights_dir", default=None,
                        help="folder of (stand-in) weights [default: $GHOSTV2_WEIGHTS_DIR, else weights/]")
    if kit_use is not None:
        parser.add_argument("--kit", type=Path, default=None, help=f"conformance kit ({kit_use})")
    parser.add_argument("--device", default="cpu", help="compute device (auto, cpu, cuda, cuda:N, mps)")
    parser.add_argument("--threads", type=int, default=threads, help="torch CPU threads")


def print_figures(figures: Callable[[], Iterable[str]]) -> int:
    """Print each line of ``figures()`` as soon as it is measured; our errors become one line (utils.cli.run_cli)."""

    def body() -> None:
        for line in figures():
            print(line, flush=True)

    return run_cli(body)


def timing_summary(seconds: Sequence[float], batch_size: int, per: str, unit: str, peak_mib: float | None,
                   memory_kind: str) -> str:
    """``"<median> <unit>/<per> (<median per image>, best <min> of <n>), peak <memory_kind> <MiB>"``.

    ``seconds`` are the timed runs of one batch; ``unit`` is ``"s"`` or ``"ms"``.
    """
    scale = 1000.0 if unit == "ms" else 1.0
    median = statistics.median(seconds) * scale
    memory = "n/a" if peak_mib is None else f"{peak_mib:,.0f} MiB"
    return (f"{median:9.2f} {unit}/{per} ({median / batch_size:7.2f} {unit}/image, best {min(seconds) * scale:.2f} "
            f"{unit} of {len(seconds)}), peak {memory_kind} {memory}")
