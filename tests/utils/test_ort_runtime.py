"""utils.ort: a tiny generator and a detector exported and run through ONNX Runtime, and every bad ONNX input refused
with one line (another checkpoint's file, an older exporter's, a corrupt one, a provider that is not installed)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx
import pytest
import torch
from safetensors.torch import load_file, save_file

from models.gfpgan import GFPGANv1Clean, StyleConv, seeded_noise
from models.retinaface import RetinaFace
from network.aeinet import AEINet
from utils.errors import GhostError
from utils.ort import (
    EXPORTER_VERSION,
    OnnxFileError,
    ProviderNotInstalledError,
    RuntimeOptions,
    onnx_path,
    wrap_network,
)
from utils.ort.export import META_EXPORTER, META_SHA256

CPU = RuntimeOptions("onnxruntime", threads=2)
# The kit's fp32 tolerance: max|ort - torch| <= 1e-5 * max(1, max|torch|).
KIT_RELATIVE = 1e-5


def _close(ours: torch.Tensor, reference: torch.Tensor, factor: float = 1.0) -> bool:
    return float((ours - reference).abs().max()) <= factor * KIT_RELATIVE * max(1.0, float(reference.abs().max()))


def _checkpoint(module: torch.nn.Module, path: Path) -> Path:
    save_file({key: value.contiguous() for key, value in module.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory) -> tuple[AEINet, Path]:
    """The smallest AEI-Net (1 AAD block per level), seeded, its checkpoint and its ONNX twin's file."""
    torch.manual_seed(0)
    generator = AEINet(backbone="unet", num_blocks=1).eval()
    checkpoint = _checkpoint(generator, tmp_path_factory.mktemp("tiny_g") / "G.safetensors")
    return generator, checkpoint


def _generator_inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(batch)
    target = torch.rand(batch, 3, 256, 256, generator=generator) * 2 - 1
    identity = torch.nn.functional.normalize(torch.randn(batch, 512, generator=generator), dim=1)
    return target, identity


def test_runtime_options_are_checked_with_one_line() -> None:
    assert RuntimeOptions().runtime == "torch"
    for bad in ({"runtime": "tf"}, {"runtime": "onnxruntime", "execution_provider": "tpu"},
                {"runtime": "onnxruntime", "threads": 0}, {"runtime": "onnxruntime", "onnx_fp16": True},
                {"execution_provider": "cuda"}):
        with pytest.raises(GhostError) as error:
            RuntimeOptions(**bad)
        assert "\n" not in str(error.value)
    assert RuntimeOptions("onnxruntime", "cuda", onnx_fp16=True).measured_only


def test_torch_runtime_returns_the_module_itself(tiny_generator) -> None:
    generator, checkpoint = tiny_generator
    assert wrap_network("ghostv2_generator", generator, checkpoint, _generator_inputs(1), RuntimeOptions(), "cpu") \
        is generator
    assert not onnx_path(checkpoint).exists()


def test_tiny_generator_exports_on_first_use_and_matches_torch(tiny_generator, caplog) -> None:
    generator, checkpoint = tiny_generator
    with caplog.at_level("INFO", logger="utils.ort"):
        twin = wrap_network("ghostv2_generator", generator, checkpoint, _generator_inputs(1), CPU, "cpu")
    assert onnx_path(checkpoint).is_file() and "exporting it once" in caplog.text
    metadata = {entry.key: entry.value for entry in onnx.load(str(onnx_path(checkpoint))).metadata_props}
    assert metadata[META_EXPORTER] == EXPORTER_VERSION and len(metadata[META_SHA256]) == 64
    target, identity = _generator_inputs(3)  # another batch size than the export's
    with torch.no_grad():
        swapped, attributes = generator(target, identity)
        twin_swapped, twin_attributes = twin(target, identity)
    assert isinstance(twin_attributes, tuple) and len(twin_attributes) == len(attributes)
    assert _close(twin_swapped, swapped)
    assert all(_close(ours, theirs) for ours, theirs in zip(twin_attributes, attributes))


def test_detector_takes_any_size_and_batch(tmp_path: Path, kit_dir: Path) -> None:
    from tests.conformance.runner import load_fill

    # The kit's stand-in weights keep the activations in range (a random init overflows through ResNet-50's
    # identity batch norms, and its saturated softmax then flips on rounding).
    detector = load_fill(kit_dir).fill_module(RetinaFace(), 0).eval()
    checkpoint = _checkpoint(detector, tmp_path / "retinaface.safetensors")
    # Crops of the kit's photo (network input: RGB minus the channel means); uniform noise drives the untrained
    # heads to magnitudes where float32 rounding alone exceeds the tolerance.
    photo = load_file(str(kit_dir / "faces" / "retinaface_forward.safetensors"))["input.x"]
    twin = wrap_network("retinaface", detector, checkpoint, (photo[:, :, :64, :64],), CPU, "cpu")
    for x in (photo[:, :, 16:112, 32:192], torch.cat([photo[:, :, :64, :64], photo[:, :, 64:128, 64:128]])):
        with torch.no_grad():
            expected, ours = detector(x), twin(x)
        assert isinstance(ours, tuple) and len(ours) == 3
        errors = [float((mine - theirs).abs().max()) for mine, theirs in zip(ours, expected)]
        assert all(_close(mine, theirs) for mine, theirs in zip(ours, expected)), errors


def test_gfpgan_noise_input_keeps_seeded_runs_identical(tmp_path: Path) -> None:
    torch.manual_seed(2)
    gfpgan = GFPGANv1Clean(out_size=64, num_style_feat=32, channel_multiplier=1, num_mlp=2, narrow=0.125).eval()
    with torch.no_grad():
        for module in gfpgan.modules():
            if isinstance(module, StyleConv):
                module.weight.fill_(0.5)  # noise strengths start at 0; make the noise count
    checkpoint = _checkpoint(gfpgan, tmp_path / "gfpgan.safetensors")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    twin = wrap_network("gfpgan_v1_4", gfpgan, checkpoint, (x[:1],), CPU, "cpu")
    with torch.no_grad(), seeded_noise(7, x.device):
        expected = gfpgan(x)[0]
    with torch.no_grad(), seeded_noise(7, x.device):
        ours, previews = twin(x, return_rgb=False)
    with torch.no_grad(), seeded_noise(8, x.device):
        reseeded = twin(x)[0]
    assert previews == [] and _close(ours, expected) and not _close(reseeded, expected)
    with torch.no_grad():
        assert _close(twin(x, randomize_noise=False)[0], gfpgan(x, randomize_noise=False)[0])


def test_another_checkpoints_file_is_refused(tiny_generator, tmp_path: Path) -> None:
    generator, checkpoint = tiny_generator
    wrap_network("ghostv2_generator", generator, checkpoint, _generator_inputs(1), CPU, "cpu")
    other = tmp_path / "G.safetensors"
    torch.manual_seed(5)
    _checkpoint(AEINet(backbone="unet", num_blocks=1), other)
    onnx_path(other).write_bytes(onnx_path(checkpoint).read_bytes())
    with pytest.raises(OnnxFileError) as error:
        wrap_network("ghostv2_generator", generator, other, _generator_inputs(1), CPU, "cpu")
    message = str(error.value)
    assert "another checkpoint" in message and "python export_onnx.py --models ghostv2_generator" in message
    assert "\n" not in message


def test_an_older_exporters_file_is_refused(tiny_generator, tmp_path: Path) -> None:
    generator, checkpoint = tiny_generator
    wrap_network("ghostv2_generator", generator, checkpoint, _generator_inputs(1), CPU, "cpu")
    copy = tmp_path / "G.safetensors"
    copy.write_bytes(checkpoint.read_bytes())
    model = onnx.load(str(onnx_path(checkpoint)))
    for entry in model.metadata_props:
        if entry.key == META_EXPORTER:
            entry.value = "ghostv2-onnx-0"
    onnx.save(model, str(onnx_path(copy)))
    with pytest.raises(OnnxFileError, match="exporter ghostv2-onnx-0.*python export_onnx.py"):
        wrap_network("ghostv2_generator", generator, copy, _generator_inputs(1), CPU, "cpu")


def test_a_corrupt_file_is_one_line(tiny_generator, tmp_path: Path) -> None:
    generator, checkpoint = tiny_generator
    copy = tmp_path / "G.safetensors"
    copy.write_bytes(checkpoint.read_bytes())
    onnx_path(copy).write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(OnnxFileError) as error:
        wrap_network("ghostv2_generator", generator, copy, _generator_inputs(1), CPU, "cpu")
    assert str(error.value).startswith(f"cannot read ONNX file {onnx_path(copy)}") and "\n" not in str(error.value)


@pytest.mark.parametrize(("provider", "package"), [("cuda", "onnxruntime-gpu"), ("directml", "onnxruntime-directml"),
                                                   ("openvino", "onnxruntime-openvino"), ("rocm", "onnxruntime-rocm")])
def test_a_missing_provider_names_its_package(tiny_generator, monkeypatch, provider: str, package: str) -> None:
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    generator, checkpoint = tiny_generator
    options = dataclasses.replace(CPU, execution_provider=provider)
    with pytest.raises(ProviderNotInstalledError, match=f"pip install {package}"):
        wrap_network("ghostv2_generator", generator, checkpoint, _generator_inputs(1), options, "cpu")
