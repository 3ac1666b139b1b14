"""Two-process DDP training on CPU (gloo) through train.py: 2 steps at batch 1 per process, files from rank 0 only."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.conftest import standin_flags, write_identity_dataset

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_two_process_ddp_trains_and_writes_one_set_of_checkpoints(
    tmp_path: Path, standin_weights: Path, example_images: dict[str, Path]
) -> None:
    # 2 identities × 2 images: each of the 2 processes sees 2 batches of 1, so 2 steps close the epoch.
    dataset = write_identity_dataset(tmp_path / "dataset", example_images, identities=2)
    experiments = tmp_path / "experiments"
    completed = subprocess.run(
        [sys.executable, "train.py", *standin_flags(standin_weights, dataset, experiments, tmp_path / "no_examples"),
         "--run_name", "ddp", "--batch_size", "1", "--max_steps", "2", "--devices", "2", "--strategy", "ddp"],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "distributed_backend=gloo" in completed.stdout + completed.stderr
    assert completed.stderr.count("saved G and D to") == 1  # the checkpoint callback ran on rank 0 only
    assert completed.stderr.count("done; G/D safetensors") == 1
    step_lines = [line for line in completed.stderr.splitlines() if " step " in line and "lossG=" in line]
    assert [line.split(" step ")[1].split(":")[0] for line in step_lines] == ["1", "2"]  # rank 0 logs, once per step

    written = sorted(str(path.relative_to(experiments)) for path in experiments.rglob("*") if path.is_file())
    models = [name for name in written if not name.startswith(("logs/", "images/"))]
    assert models == sorted([
        "saved_models_ddp/G_latest.safetensors", "saved_models_ddp/D_latest.safetensors",
        "current_models_ddp/G_1_000000.safetensors", "current_models_ddp/D_1_000000.safetensors",
        "current_models_ddp/epoch=0-step=2.ckpt", "current_models_ddp/last.ckpt",
    ])
    assert [name for name in written if name.startswith("images/")] == ["images/generated_image.jpg"]
    assert "logs/ddp/config.yaml" in written  # the resolved configuration
    checkpoint = torch.load(experiments / "current_models_ddp" / "last.ckpt", map_location="cpu", mmap=True,
                            weights_only=False)
    assert checkpoint["global_step"] == 2
