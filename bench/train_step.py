"""Benchmark one GhostV2 training step: seconds per optimisation step (G step + D step) and peak memory.

``python -m bench.train_step [--steps 2] [--cpu_batch_size 2] [--cuda_batch_size 16] [--face_embeddings cvl_vit]``

The step is the real one: GhostV2Module.training_step under a Lightning Trainer (manual optimisation, Adam for
G and D), on random 256×256 images, with PyTorch's random initialisation of G, D and the identity model (speed
does not depend on weight values) and no logging or checkpoint writing. The first step is not timed (it
allocates Adam's moments and selects kernels). CPU: float32 at batch 2, peak = rise of the process's resident
memory during the run (and the process peak). CUDA, when available: batch 16 with 16-mixed precision, peak =
torch.cuda.max_memory_allocated.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: put the repository first on the path, or bench/ would shadow the `network` package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from bench.common import timing_summary
from bench.network import MIB, cpu_peak_tracker
from models.embeddings import DEFAULT_FACE_EMBEDDINGS, FACE_EMBEDDING_NAMES, FaceEmbedder
from models.registry import build_module
from network.aeinet import AEINet
from network.discriminator import MultiscaleDiscriminator
from utils.cli import add_bool, make_parser, run_cli
from utils.training.config import TrainingConfig
from utils.training.module import GhostV2Module

IMAGE_SIZE = 256
_STATUS = Path("/proc/self/status")


class RandomPairs(Dataset):
    """Items shaped like the training dataset's: two sources, a target in [-1, 1] RGB and a same_person flag."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(index)
        images = torch.rand(3, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 2 - 1
        return images[0], images[0].clone(), images[1], torch.tensor(index % 2, dtype=torch.int64)


class StepTimer(pl.Callback):
    """Wall seconds of every training batch (synchronised with the GPU on CUDA)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.rss_mib: list[float] = []  # resident memory after each batch (flat over steps: nothing accumulates)
        self._start = 0.0

    @staticmethod
    def _synchronise(module: pl.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._synchronise(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._synchronise(pl_module)
        self.seconds.append(time.perf_counter() - self._start)
        rss = status_mib("VmRSS:")
        if rss is not None:
            self.rss_mib.append(rss)


@dataclass
class StepTiming:
    """Seconds per timed step and the peak memory of a run."""

    accelerator: str
    precision: str
    batch_size: int
    seconds: list[float]
    peak_mib: float | None
    memory_kind: str
    memory_note: str = ""

    def line(self) -> str:
        return (f"{self.accelerator:4s} {self.precision:10s} batch {self.batch_size:3d}: "
                + timing_summary(self.seconds, self.batch_size, "step", "s", self.peak_mib, self.memory_kind)
                + self.memory_note)


def status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status (``"VmHWM:"`` peak, ``"VmRSS:"`` now) in MiB; None off Linux."""
    if not _STATUS.exists():
        return None
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return None


def build_training_module(config: TrainingConfig) -> GhostV2Module:
    """G, D, the identity model (and the eye FAN with the eye loss) with random weights, in the training module."""
    torch.manual_seed(0)
    generator = AEINet(backbone=config.backbone, num_blocks=config.num_blocks)
    embedder = FaceEmbedder(config.face_embeddings, build_module(config.face_embeddings))
    eye_detector = build_module("adaptive_wing_fan") if config.eye_detector_loss else None
    return GhostV2Module(config, generator, MultiscaleDiscriminator(), embedder, eye_detector)


def time_steps(
    accelerator: str, precision: str, batch_size: int, steps: int, face_embeddings: str, eye_loss: bool
) -> StepTiming:
    """Run 1 + ``steps`` training steps; the first is a warm-up."""
    config = TrainingConfig(
        batch_size=batch_size, face_embeddings=face_embeddings, eye_detector_loss=eye_loss,
        weight_eyes=1200.0 if eye_loss else 0.0, pretrained=False,
    )
    module = build_training_module(config)
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator=accelerator, devices=1, precision=precision, max_steps=steps + 1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
    )
    loader = DataLoader(RandomPairs(batch_size * (steps + 1)), batch_size=batch_size, drop_last=True)
    cuda = accelerator == "gpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with cpu_peak_tracker() as cpu_peak:
        trainer.fit(module, train_dataloaders=loader)
    timed = timer.seconds[1:]
    if cuda:
        return StepTiming("cuda", precision, batch_size, timed, torch.cuda.max_memory_allocated() / MIB, "CUDA allocated")
    process_peak = status_mib("VmHWM:")
    note = "" if process_peak is None else f" (process peak RSS {process_peak:,.0f} MiB)"
    if len(timer.rss_mib) > 1:
        note += f"; RSS after each step {', '.join(f'{rss:,.0f}' for rss in timer.rss_mib)} MiB"
    return StepTiming("cpu", precision, batch_size, timed, cpu_peak["peak_mib"], "RSS rise", note)


def run_benchmark(
    steps: int, cpu_batch_size: int, cuda_batch_size: int, face_embeddings: str, eye_loss: bool, use_cuda: bool,
    threads: int | None,
) -> Iterator[str]:
    """The report lines, yielded as each measurement finishes."""
    if threads:
        torch.set_num_threads(threads)
    yield (
        f"training step (G + D) at {IMAGE_SIZE}x{IMAGE_SIZE}, identity model {face_embeddings}, eye loss "
        f"{'on' if eye_loss else 'off'}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    yield time_steps("cpu", "32-true", cpu_batch_size, steps, face_embeddings, eye_loss).line()
    if use_cuda and torch.cuda.is_available():
        yield f"CUDA device: {torch.cuda.get_device_name()}"
        yield time_steps("gpu", "16-mixed", cuda_batch_size, steps, face_embeddings, eye_loss).line()


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m bench.train_step", __doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="timed steps after the warm-up step (median reported)")
    parser.add_argument("--cpu_batch_size", type=int, default=2, help="batch size of the CPU run")
    parser.add_argument("--cuda_batch_size", type=int, default=16, help="batch size of the CUDA run (16-mixed)")
    parser.add_argument("--face_embeddings", choices=FACE_EMBEDDING_NAMES, default=DEFAULT_FACE_EMBEDDINGS,
                        help="identity model")
    add_bool(parser, "eye_detector_loss", False, "include the eye loss (AdaptiveWingLoss FAN)")
    add_bool(parser, "cuda", True, "also time on CUDA when a GPU is available")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch [default: torch's choice]")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.cpu_batch_size < 1 or args.cuda_batch_size < 1:
        parser.error("--steps and the batch sizes must be positive")

    def body() -> None:
        # Lightning's banner lines ("GPU available", ...) and its own deprecation notices would interleave
        # with the report.
        logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        lines = run_benchmark(args.steps, args.cpu_batch_size, args.cuda_batch_size, args.face_embeddings,
                              args.eye_detector_loss, args.cuda, args.threads)
        for line in lines:
            print(line, flush=True)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
