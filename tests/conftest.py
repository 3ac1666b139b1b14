"""Shared fixtures: the conformance kit, stand-in weights, example images, the kit's tiny NSFW and SDXL models."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.conformance.runner import default_kit

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
KIT_NSFW_MODEL = "faces/tiny_nsfw_vit"
KIT_SDXL_PIPELINE = "geometry/tiny_sdxl_inpaint"

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


def relabelled_nsfw_model(kit_dir: Path, destination: Path, label: str) -> Path:
    """A copy of the kit's tiny NSFW ViT whose two classes both read ``label`` (so its verdict is known)."""
    shutil.copytree(kit_dir / KIT_NSFW_MODEL, destination)
    config_path = destination / "config.json"
    config = json.loads(config_path.read_text())
    config["id2label"] = {"0": label, "1": label}
    config["label2id"] = {label: 0}
    config_path.write_text(json.dumps(config, indent=2))
    return destination


@pytest.fixture(scope="session")
def normal_nsfw_model(kit_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny NSFW model that calls every image "normal"."""
    return relabelled_nsfw_model(kit_dir, tmp_path_factory.mktemp("nsfw") / "normal", "normal")


@pytest.fixture(scope="session")
def nsfw_nsfw_model(kit_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny NSFW model that calls every image "nsfw"."""
    return relabelled_nsfw_model(kit_dir, tmp_path_factory.mktemp("nsfw") / "nsfw", "nsfw")


@pytest.fixture(scope="session")
def tiny_sdxl_pipeline(kit_dir: Path) -> Path:
    """The kit's tiny SDXL inpainting pipeline folder (read-only)."""
    return kit_dir / KIT_SDXL_PIPELINE
