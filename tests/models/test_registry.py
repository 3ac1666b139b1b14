"""The checkpoint registry: manifests, paths, download sets, and that every builder fits its manifest."""
from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import download_weights
from models import registry
from models.registry import CHECKPOINTS, HUB_MODELS, convert_state_dict, read_manifest, specs_for_set
from utils.checkpoint import build_on_meta, compare_state_dicts, load_into_module, meta_tensor_names
from utils.download import download_file

INFERENCE_NEEDS = {
    "ghostv2_generator", "ghostv1_generator", "retinaface", "arcface", "adaface", "cvl_arcface", "cvl_adaface",
    "cvl_vit", "cvlface_aligner", "facenet", "gfpgan_v1_4", "face_alignment", "bisenet",
}


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_record_agrees_with_its_manifest(name: str) -> None:
    spec = CHECKPOINTS[name]
    manifest = read_manifest(spec.manifest)
    assert manifest["release_file"] == spec.release_file
    assert manifest["saved_as"] == f"weights/{spec.path}"
    assert spec.url == f"https://github.com/dimitribarbot/ghostv2/releases/download/v1.0.0/{spec.release_file}"


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_builder_accepts_the_released_layout(name: str) -> None:
    """A file with the manifest's keys (plus the prefix the release may carry) loads into the built module."""
    spec = CHECKPOINTS[name]
    file_keys = {spec.standin_prefix + key: torch.empty(shape, device="meta")
                 for key, (shape, _) in read_manifest(spec.manifest)["keys"].items()}
    with torch.device("meta"):
        module = registry.build_module(name)
    missing, unexpected, wrong = compare_state_dicts(module.state_dict(), convert_state_dict(name, file_keys),
                                                     spec.optional_key_suffixes)
    assert (missing, unexpected, wrong) == ([], [], [])


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_meta_built_module_loads_for_real(name: str) -> None:
    """Built on meta and given a file's tensors, a module holds no meta tensor and computes its constants."""
    spec = CHECKPOINTS[name]
    file_tensors = {spec.standin_prefix + key: torch.empty(shape, dtype=getattr(torch, dtype))
                    for key, (shape, dtype) in read_manifest(spec.manifest)["keys"].items()}
    module = build_on_meta(registry.build_module, name)
    load_into_module(module, convert_state_dict(name, file_tensors), expected=name,
                     optional_suffixes=spec.optional_key_suffixes)
    assert meta_tensor_names(module) == []
    state_dict = module.state_dict()
    non_persistent = {key: value for key, value in module.named_buffers() if key not in state_dict}
    if non_persistent:
        reference = dict(registry.build_module(name).named_buffers())
        for key, value in non_persistent.items():
            assert value.device.type == "cpu" and torch.equal(value, reference[key]), key


def test_download_sets() -> None:
    inference = {spec.name for spec in specs_for_set("inference")}
    everything = {spec.name for spec in specs_for_set("all")}
    assert inference == INFERENCE_NEEDS
    assert everything == set(CHECKPOINTS)
    assert len({spec.path for spec in CHECKPOINTS.values()}) == len(CHECKPOINTS)
    assert HUB_MODELS["nsfw"].model_id == "AdamCodd/vit-base-nsfw-detector"
    with pytest.raises(ValueError, match="unknown download set"):
        specs_for_set("some")


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with support for ``Range: bytes=N-`` (enough to test resuming)."""

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(self.headers.get("Range", "bytes=0-")[6:].rstrip("-") or 0)
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def release_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_RangeHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(registry, "RELEASE_URL", f"http://127.0.0.1:{server.server_address[1]}/{{file}}")
    yield served
    server.shutdown()


def test_download_resumes_a_partial_file(release_server: Path, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 1000
    (release_server / "blob.bin").write_bytes(payload)
    destination = tmp_path / "out" / "blob.bin"
    destination.parent.mkdir()
    (destination.parent / "blob.bin.part").write_bytes(payload[:1000])
    download_file(registry.RELEASE_URL.format(file="blob.bin"), destination)
    assert destination.read_bytes() == payload
    assert not (destination.parent / "blob.bin.part").exists()


def test_download_script_skips_present_files_and_fails_on_missing_ones(
    release_server: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    weights = tmp_path / "weights"
    present = [spec for spec in specs_for_set("inference") if spec.name != "bisenet"]
    for spec in present:
        (weights / spec.path).parent.mkdir(parents=True, exist_ok=True)
        (weights / spec.path).write_bytes(b"already here")
    code = download_weights.main(["--set", "inference", "--weights_dir", str(weights), "--no-hub"])
    assert code == 1
    assert "bisenet_79999_iter.safetensors" in capsys.readouterr().err
    assert all((weights / spec.path).read_bytes() == b"already here" for spec in present)

    (release_server / "bisenet_79999_iter.safetensors").write_bytes(b"weights")
    assert download_weights.main(["--set", "inference", "--weights_dir", str(weights), "--no-hub"]) == 0
    assert (weights / CHECKPOINTS["bisenet"].path).read_bytes() == b"weights"
