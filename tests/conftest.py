"""Shared fixtures: the conformance kit, stand-in weights, example images."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.conformance.runner import default_kit

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"

# Two cores in CI: keep torch from oversubscribing them when several processes run.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def kit_dir() -> Path:
    """The conformance kit folder; skipped where absent, except under CI=true where it must exist."""
    kit = default_kit()
    if not kit.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"conformance kit {kit} is missing")
        pytest.skip(f"conformance kit {kit} not found")
    return kit


@pytest.fixture(scope="session")
def standin_weights(tmp_path_factory: pytest.TempPathFactory, kit_dir: Path) -> Path:
    """A weights folder with every registered checkpoint as a stand-in file (built once per session)."""
    from tests.standin_weights import write_standins

    cached = os.environ.get("GHOSTV2_STANDIN_CACHE")
    folder = Path(cached) if cached else tmp_path_factory.mktemp("standin_weights")
    write_standins(folder, "all", kit_dir)
    return folder


@pytest.fixture(scope="session")
def example_images() -> dict[str, Path]:
    """The example photos shipped in examples/ (name -> path)."""
    return {path.stem: path for path in sorted(EXAMPLES.glob("*.*")) if path.suffix.lower() in (".jpg", ".png")}
