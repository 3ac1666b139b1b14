"""demo.py end to end in a real process: the grid's layout, its header row and column, and untouched inputs.

Smallest settings the CLI allows: two sources × one target (a 3 × 2 grid, so rows and columns cannot be
mixed up), 256-pixel photos, FaceNet embeddings, basic paste-back, no GFPGAN, no inpainting. The stand-in
detector finds faces at the threshold of tests/cli/conftest.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.cli.conftest import STANDIN_THRESHOLD, snapshot
from utils.inference.demo_grid import CELL, aligned_best_face, legend_cell
from utils.image import read_image
from utils.inference.options import SwapOptions
from utils.inference.swap import FaceSwapper

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> dict[str, Path]:
    """The two example photos at 256 pixels (the cameraman stays a grey PNG)."""
    folder = tmp_path_factory.mktemp("demo_photos")
    paths = {}
    for name in ("astronaut", "cameraman"):
        image = cv2.imread(str(example_images[name]), cv2.IMREAD_UNCHANGED)
        paths[name] = folder / f"{name}.png"
        cv2.imwrite(str(paths[name]), cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA))
    return paths


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path], standin_weights: Path,
             normal_nsfw_model: Path) -> tuple[subprocess.CompletedProcess, Path, dict, dict]:
    """Run demo.py once: sources = astronaut, cameraman; target = cameraman."""
    before = snapshot(photos["astronaut"].parent)
    output = tmp_path_factory.mktemp("demo") / "grid" / "grid.png"
    # Same thread count as this process, so its detections match the ones the tests recompute here.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT),
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    completed = subprocess.run(
        [sys.executable, "demo.py", "--weights_dir", str(standin_weights), "--device", "cpu",
         "--detection_threshold", str(STANDIN_THRESHOLD), "--nsfw_model", str(normal_nsfw_model),
         "--face_embeddings", "facenet", "--paste_back_mode", "basic", "--no-enhance_output", "--no-inpaint_output",
         "--sources", str(photos["astronaut"]), str(photos["cameraman"]), "--targets", str(photos["cameraman"]),
         "--output_file_path", str(output)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    return completed, output, before, snapshot(photos["astronaut"].parent)


def cell(grid: np.ndarray, row: int, column: int) -> np.ndarray:
    return grid[row * CELL:(row + 1) * CELL, column * CELL:(column + 1) * CELL]


def test_grid_has_one_cell_per_pair_plus_headers(demo_run) -> None:
    completed, output, _, _ = demo_run
    assert completed.returncode == 0, completed.stderr
    grid = cv2.imread(str(output))
    assert grid.shape == ((2 + 1) * CELL, (1 + 1) * CELL, 3)
    for row in range(3):
        for column in range(2):
            assert cell(grid, row, column).std() > 1.0, f"cell ({row}, {column}) is blank"


def test_headers_are_the_legend_and_the_aligned_photos(
    demo_run, photos: dict[str, Path], standin_weights: Path
) -> None:
    completed, output, _, _ = demo_run
    assert completed.returncode == 0, completed.stderr
    grid = cv2.imread(str(output))
    np.testing.assert_array_equal(cell(grid, 0, 0), legend_cell())
    # The cameraman is both the target (row 0) and the second source (column 0): same picture, same crop.
    np.testing.assert_array_equal(cell(grid, 0, 1), cell(grid, 2, 0))
    swapper = FaceSwapper(SwapOptions(weights_dir=str(standin_weights), device="cpu",
                                      detection_threshold=STANDIN_THRESHOLD))
    for (row, column), name in {(0, 1): "cameraman", (1, 0): "astronaut"}.items():
        expected = aligned_best_face(swapper, read_image(photos[name]), name)
        difference = np.abs(cell(grid, row, column).astype(int) - expected.astype(int))
        assert difference.mean() < 1.0, f"header cell ({row}, {column}) is not the aligned {name}"
    # The results are swaps, not copies of the target's header.
    for row in (1, 2):
        assert not np.array_equal(cell(grid, row, 1), cell(grid, 0, 1))


def test_inputs_are_untouched(demo_run) -> None:
    completed, _, before, after = demo_run
    assert completed.returncode == 0, completed.stderr
    assert after == before
