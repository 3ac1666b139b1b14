"""The checkpoint loader: clear errors for missing, truncated, pickled and mismatching files; prefix handling."""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from models import registry
from models.registry import CheckpointSpec, load_model
from utils.checkpoint import (
    build_on_meta,
    load_into_module,
    read_state_dict,
    release_weight_pages,
    resident_mapped_bytes,
    strip_prefix,
    write_state_dict,
)
from utils.errors import CheckpointFormatError, CheckpointMismatchError, WeightsNotFoundError


class TinyNet(nn.Module):
    """A two-layer stand-in with a BatchNorm (so it has an optional num_batches_tracked key)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.norm = nn.BatchNorm2d(width)


class WithConstant(TinyNet):
    """TinyNet with a computed, non-persistent buffer, and a way to compute it again."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("grid", torch.arange(6.0).view(2, 3), persistent=False)

    def constant_buffers(self) -> dict[str, torch.Tensor]:
        return {"grid": torch.arange(6.0).view(2, 3)}


class WithoutConstantRecipe(TinyNet):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("grid", torch.zeros(2), persistent=False)


def strip_module_prefix(state_dict: dict) -> dict:
    return strip_prefix(state_dict, "module.")


def describe_tiny(state_dict: dict) -> str:
    return f"TinyNet width={state_dict['conv.weight'].shape[0]}"


@pytest.fixture
def tiny_spec(monkeypatch: pytest.MonkeyPatch) -> CheckpointSpec:
    spec = CheckpointSpec(
        "tiny", "the tiny test network", "tiny.safetensors", "Tiny/tiny.safetensors", "unused.json",
        f"{__name__}:TinyNet", {"width": 4}, convert=f"{__name__}:strip_module_prefix",
        describe=f"{__name__}:describe_tiny", optional_key_suffixes=("num_batches_tracked",),
    )
    monkeypatch.setitem(registry.CHECKPOINTS, "tiny", spec)
    return spec


def _saved(path: Path, module: nn.Module, prefix: str = "", drop: str | None = None) -> Path:
    state_dict = {prefix + key: value for key, value in module.state_dict().items() if drop is None or drop not in key}
    write_state_dict(state_dict, path)
    return path


def test_loads_plain_and_prefixed_files(tmp_path: Path, tiny_spec: CheckpointSpec) -> None:
    source = TinyNet()
    torch.nn.init.normal_(source.conv.weight)
    for prefix in ("", "module."):
        path = _saved(tmp_path / f"tiny{prefix}.safetensors", source, prefix)
        loaded = load_model("tiny", path=path)
        assert torch.equal(loaded.conv.weight, source.conv.weight)
        assert not loaded.training


def test_optional_num_batches_tracked_may_be_absent(tmp_path: Path, tiny_spec: CheckpointSpec) -> None:
    path = _saved(tmp_path / "tiny.safetensors", TinyNet(), drop="num_batches_tracked")
    assert "norm.num_batches_tracked" not in read_state_dict(path)
    loaded = load_model("tiny", path=path)
    assert loaded.norm.num_batches_tracked.dtype == torch.int64 and int(loaded.norm.num_batches_tracked) == 0


def test_loading_initialises_nothing_and_takes_the_file_tensors(tmp_path: Path, tiny_spec: CheckpointSpec) -> None:
    path = _saved(tmp_path / "tiny.safetensors", TinyNet())
    rng_state = torch.random.get_rng_state()
    loaded = load_model("tiny", path=path)
    # Random initialisation would have drawn from the global generator.
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert loaded.conv.weight.requires_grad and isinstance(loaded.conv.weight, nn.Parameter)
    module, state_dict = build_on_meta(TinyNet), read_state_dict(path)
    load_into_module(module, state_dict, expected="TinyNet")
    assert module.conv.weight.data_ptr() == state_dict["conv.weight"].data_ptr()


def test_file_dtype_is_cast_to_the_module_dtype(tmp_path: Path, tiny_spec: CheckpointSpec) -> None:
    source = TinyNet()
    torch.nn.init.normal_(source.conv.weight)
    write_state_dict({key: value.half() if value.is_floating_point() else value
                      for key, value in source.state_dict().items()}, tmp_path / "half.safetensors")
    loaded = load_model("tiny", path=tmp_path / "half.safetensors")
    assert loaded.conv.weight.dtype == torch.float32
    assert torch.equal(loaded.conv.weight, source.conv.weight.half().float())


def test_non_persistent_buffers_are_computed_after_meta_loading(tmp_path: Path) -> None:
    path = _saved(tmp_path / "tiny.safetensors", WithConstant())
    module = build_on_meta(WithConstant)
    assert module.grid.is_meta
    load_into_module(module, read_state_dict(path), expected="WithConstant")
    assert torch.equal(module.grid, WithConstant().grid)
    with pytest.raises(TypeError, match=r"non-persistent buffers \['grid'\] but no constant_buffers"):
        load_into_module(build_on_meta(WithoutConstantRecipe), read_state_dict(path), expected="x")


def test_missing_file_names_the_download_script(tmp_path: Path, tiny_spec: CheckpointSpec) -> None:
    with pytest.raises(WeightsNotFoundError, match="download_inference_models.sh") as info:
        load_model("tiny", weights_dir=tmp_path)
    assert str(tmp_path / "Tiny" / "tiny.safetensors") in str(info.value)


def test_weights_dir_and_environment_variable(tmp_path: Path, tiny_spec: CheckpointSpec,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _saved(tmp_path / "Tiny" / "tiny.safetensors", TinyNet())
    load_model("tiny", weights_dir=tmp_path)
    monkeypatch.setenv(registry.WEIGHTS_DIR_ENV, str(tmp_path))
    load_model("tiny")


def test_wrong_architecture_lists_keys_and_both_configurations(tmp_path: Path, tiny_spec: CheckpointSpec) -> None:
    path = _saved(tmp_path / "wide.safetensors", TinyNet(width=8))
    with pytest.raises(CheckpointMismatchError) as info:
        load_model("tiny", path=path)
    message = str(info.value)
    assert str(path) in message
    assert "the tiny test network [width=4]" in message
    assert "the file holds TinyNet width=8" in message
    assert "wrong shape keys: conv.weight (file (8, 3, 3, 3), model (4, 3, 3, 3))" in message


def test_unexpected_and_missing_keys_are_named(tmp_path: Path, tiny_spec: CheckpointSpec) -> None:
    state_dict = TinyNet().state_dict()
    state_dict["extra.weight"] = torch.zeros(1)
    del state_dict["norm.running_var"]
    write_state_dict(state_dict, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: norm.running_var.*unexpected keys: extra.weight"):
        load_model("tiny", path=tmp_path / "bad.safetensors")


def test_truncated_file_is_a_clear_error(tmp_path: Path, tiny_spec: CheckpointSpec) -> None:
    path = _saved(tmp_path / "tiny.safetensors", TinyNet())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(CheckpointFormatError, match="truncated"):
        load_model("tiny", path=path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"not a checkpoint at all, just text", "not a safetensors file"),
        (pickle.dumps({"a": 1}, protocol=4), "pickled"),
    ],
)
def test_non_safetensors_files_are_refused(tmp_path: Path, tiny_spec: CheckpointSpec, content: bytes,
                                           reason: str) -> None:
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointFormatError, match=reason):
        load_model("tiny", path=path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page release reads /proc/self/pagemap")
def test_released_weight_pages_come_back_unchanged_and_written_ones_stay(tmp_path: Path) -> None:
    write_state_dict(nn.Linear(256, 256).state_dict(), tmp_path / "linear.safetensors")
    expected = read_state_dict(tmp_path / "linear.safetensors")["weight"].clone()
    module = build_on_meta(nn.Linear, 256, 256)
    load_into_module(module, read_state_dict(tmp_path / "linear.safetensors"), expected="Linear")
    inputs = torch.ones(1, 256)
    output = module(inputs)
    assert resident_mapped_bytes(module) >= expected.numel() * 4
    assert release_weight_pages(module) >= expected.numel() * 4
    assert resident_mapped_bytes(module) == 0
    assert torch.equal(module(inputs), output) and torch.equal(module.weight, expected)
    with torch.no_grad():
        module.weight[0, 0] = 5.0  # a copied-on-write page: releasing would lose it
    assert release_weight_pages(module) == 0
    assert module.weight[0, 0] == 5.0
    assert release_weight_pages(nn.Linear(256, 256)) == 0  # not memory-mapped
