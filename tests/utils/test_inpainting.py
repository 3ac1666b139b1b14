"""utils.inpainting: loading (cache first, clear offline errors) and the edge-inpainting call (tiny SDXL pipeline)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from models.registry import HUB_MODELS
from utils import inpainting
from utils.errors import GhostError

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_pipeline(kit_dir: Path):
    pipeline = inpainting.load_inpainting_pipeline(kit_dir / "geometry" / "tiny_sdxl_inpaint", device="cpu", fp16=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_edge_inpainting_changes_only_the_band(tiny_pipeline) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(61, 70, 3), dtype=np.uint8)  # not multiples of 8: padded to 64×72
    face_mask = np.zeros((61, 70), dtype=np.uint8)
    face_mask[18:44, 22:50] = 255
    result = inpainting.inpaint_face_edges(
        tiny_pipeline, image, face_mask, generator=torch.Generator("cpu").manual_seed(0),
        settings=inpainting.InpaintingSettings(num_inference_steps=5, padding_mask_crop=8),
    )
    assert result.image.shape == image.shape and result.image.dtype == np.uint8
    assert result.padding_wh == (2, 3)
    assert result.blurred_mask.shape == (64, 72)
    assert result.pipeline_output_mode == "RGB"
    untouched = result.blurred_mask[:61, :70] == 0
    assert untouched.any() and (~untouched).any()
    np.testing.assert_array_equal(result.image[untouched], image[untouched])
    assert (result.image[~untouched] != image[~untouched]).any()


class _FakePipeline:
    def __init__(self) -> None:
        self.vae = SimpleNamespace(tiling=False)
        self.vae.enable_tiling = lambda: setattr(self.vae, "tiling", True)
        self.device = None

    def to(self, device):
        self.device = device
        return self


def _patch_loader(monkeypatch, outcomes: list) -> list[tuple[str, dict]]:
    """Replace AutoPipelineForInpainting.from_pretrained: each call pops an outcome (exception or pipeline)."""
    import diffusers

    calls: list[tuple[str, dict]] = []

    def from_pretrained(reference, **options):
        calls.append((reference, options))
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(diffusers.AutoPipelineForInpainting, "from_pretrained", staticmethod(from_pretrained))
    return calls


def test_hub_model_is_taken_from_the_cache_first(monkeypatch) -> None:
    fake = _FakePipeline()
    calls = _patch_loader(monkeypatch, [fake])
    pipeline = inpainting.load_inpainting_pipeline(device="cpu")
    assert pipeline is fake and fake.vae.tiling and fake.device == torch.device("cpu")
    assert [reference for reference, _ in calls] == [HUB_MODELS["sdxl_inpainting"].model_id]
    assert calls[0][1]["local_files_only"] is True
    assert calls[0][1]["dtype"] == torch.float32  # fp16 only on CUDA


def test_offline_failure_is_a_clear_error(monkeypatch) -> None:
    calls = _patch_loader(monkeypatch, [OSError("not cached"), OSError("no network")])
    with pytest.raises(GhostError, match="not in the Hugging Face cache") as error:
        inpainting.load_inpainting_pipeline("someone/some-inpainting-model", device="cpu")
    assert "someone/some-inpainting-model" in str(error.value) and "--no-inpaint_output" in str(error.value)
    assert [options.get("local_files_only", False) for _, options in calls] == [True, False]


def test_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(GhostError, match="not found"):
        inpainting.load_inpainting_pipeline(tmp_path / "no-such-folder", device="cpu")


def test_diffusers_is_imported_only_when_needed() -> None:
    code = "import sys, utils.inpainting, utils.paste_back, utils.align; assert 'diffusers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
