"""NSFW gate: loading a local model folder, the verdict, and the offline error."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models import nsfw
from models.nsfw import NSFWFilter
from utils.errors import GhostError, NSFWContentError


def _tiny_model(kit_dir: Path, tmp_path: Path, labels: dict[int, str]) -> Path:
    """A copy of the kit's tiny ViT whose label names are ``labels`` (so the verdict is known)."""
    folder = tmp_path / "tiny_nsfw_vit"
    shutil.copytree(kit_dir / "faces" / "tiny_nsfw_vit", folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["id2label"] = {str(index): label for index, label in labels.items()}
    config["label2id"] = {label: index for index, label in labels.items()}
    config_path.write_text(json.dumps(config))
    return folder


IMAGE = np.random.default_rng(0).integers(0, 256, (50, 40, 3), dtype=np.uint8)


def test_nsfw_verdict_raises_and_names_the_image(kit_dir: Path, tmp_path: Path) -> None:
    gate = NSFWFilter.from_pretrained(_tiny_model(kit_dir, tmp_path, {0: "nsfw", 1: "nsfw"}), device="cpu")
    assert gate.is_nsfw(IMAGE)
    with pytest.raises(NSFWContentError, match="the target image was classified as NSFW; nothing was written"):
        gate.check(IMAGE, "target image")


def test_safe_verdict_passes(kit_dir: Path, tmp_path: Path) -> None:
    gate = NSFWFilter.from_pretrained(_tiny_model(kit_dir, tmp_path, {0: "sfw", 1: "sfw"}), device="cpu")
    assert not gate.is_nsfw(IMAGE)
    gate.check(IMAGE[:, :, ::-1], "target image")  # negative strides are fine
    assert gate.logits(IMAGE).shape == (1, 2)


def test_a_file_instead_of_a_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(GhostError, match="save_pretrained"):
        NSFWFilter.from_pretrained(path)


def test_offline_without_cache_explains_how_to_get_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    requested = []

    def unavailable(model_id: str, *args: object, **kwargs: object) -> None:
        requested.append((model_id, kwargs.get("local_files_only", False)))
        raise OSError("offline")

    monkeypatch.setattr(transformers.AutoImageProcessor, "from_pretrained", unavailable)
    with pytest.raises(GhostError, match="--nsfw_model PATH") as error:
        NSFWFilter.from_pretrained(None)
    assert nsfw.DEFAULT_MODEL_ID in str(error.value)
    assert requested == [(nsfw.DEFAULT_MODEL_ID, True), (nsfw.DEFAULT_MODEL_ID, False)]  # cache first


def test_a_missing_local_folder_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(GhostError, match="does not exist"):
        NSFWFilter.from_pretrained(tmp_path / "missing")
