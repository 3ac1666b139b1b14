"""export_onnx.py end to end on a stand-in checkpoint: export, the up-to-date check, a stale file, one-line errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from export_onnx import main
from models.registry import CHECKPOINTS
from tests.conftest import REPO_ROOT
from utils.ort.export import META_SHA256, file_sha256

FACENET = CHECKPOINTS["facenet"].path


@pytest.fixture
def weights(tmp_path: Path, standin_weights: Path) -> Path:
    """A private weights folder with the facenet stand-in (the ONNX file must not land in the shared cache)."""
    target = tmp_path / "weights" / FACENET
    target.parent.mkdir(parents=True)
    target.write_bytes((standin_weights / FACENET).read_bytes())
    return tmp_path / "weights"


def test_exports_then_keeps_then_replaces_a_stale_file(weights: Path, capsys) -> None:
    onnx_file = (weights / FACENET).with_suffix(".onnx")
    assert main(["--weights_dir", str(weights), "--models", "facenet"]) == 0
    assert f"facenet: exported ({onnx_file})" in capsys.readouterr().out
    metadata = {entry.key: entry.value for entry in onnx.load(str(onnx_file)).metadata_props}
    assert metadata[META_SHA256] == file_sha256(weights / FACENET)
    assert main(["--weights_dir", str(weights), "--models", "facenet"]) == 0
    assert "facenet: up to date" in capsys.readouterr().out
    model = onnx.load(str(onnx_file))
    for entry in model.metadata_props:
        if entry.key == META_SHA256:
            entry.value = "0" * 64
    onnx.save(model, str(onnx_file))
    assert main(["--weights_dir", str(weights), "--models", "facenet"]) == 0
    assert "facenet: exported" in capsys.readouterr().out
    assert {entry.key: entry.value for entry in onnx.load(str(onnx_file)).metadata_props}[META_SHA256] \
        == file_sha256(weights / FACENET)


def test_missing_checkpoint_is_one_error_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "export_onnx.py", "--weights_dir", str(tmp_path), "--models", "bisenet"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "download_inference_models.sh" in result.stderr
    assert not list(tmp_path.rglob("*.onnx"))


def test_without_checkpoints_every_network_is_skipped(tmp_path: Path, capsys) -> None:
    assert main(["--weights_dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 13 and all(": skipped (no checkpoint" in line for line in lines)
