"""Loading generator and discriminator files through the registry: prefixes, and clear mismatch errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.registry import CHECKPOINTS, load_model
from network.aeinet import AEINet
from network.discriminator import MultiscaleDiscriminator
from tests.standin_weights import standin_state_dict
from utils.checkpoint import write_state_dict
from utils.errors import CheckpointMismatchError

# The only tensor describe_state_dict needs at its real shape (it tells unet from linknet).
SHAPE_REVEALING_KEY = "encoder.deconv2.deconv.weight"


def layout_only_file(path: Path, prefix: str = "", **settings) -> Path:
    """A generator file with the keys of a configuration, small tensors everywhere it does not matter."""
    with torch.device("meta"):
        layout = AEINet(**settings).state_dict()
    tensors = {
        prefix + key: torch.zeros(value.shape if key == SHAPE_REVEALING_KEY else (1,), dtype=value.dtype)
        for key, value in layout.items()
    }
    write_state_dict(tensors, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("name", "prefix"), [("ghostv2_generator", "_orig_mod."), ("ghostv1_generator", "")])
def test_released_generator_loads(name: str, prefix: str, kit_dir: Path, tmp_path: Path) -> None:
    """Full-size stand-ins: GhostV2's training-written file is prefixed, GhostV1's converted one is not."""
    spec = CHECKPOINTS[name]
    assert spec.standin_prefix == prefix
    state_dict = standin_state_dict(spec, kit_dir)
    assert all(key.startswith(prefix) for key in state_dict)
    path = tmp_path / "G.safetensors"
    write_state_dict(state_dict, path)
    expected_up1 = state_dict[prefix + "generator.up1.weight"]
    del state_dict
    generator = load_model(name, path=path)
    assert isinstance(generator, AEINet) and not generator.training
    assert torch.equal(generator.generator.up1.weight, expected_up1)


def test_released_discriminator_loads(kit_dir: Path, tmp_path: Path) -> None:
    spec = CHECKPOINTS["ghostv2_discriminator"]
    state_dict = standin_state_dict(spec, kit_dir)
    path = tmp_path / "D.safetensors"
    write_state_dict(state_dict, path)
    discriminator = load_model("ghostv2_discriminator", path=path)
    assert isinstance(discriminator, MultiscaleDiscriminator)
    assert torch.equal(discriminator.layer2[17].bias, state_dict["_orig_mod.layer2.17.bias"])


@pytest.mark.parametrize(
    ("file_settings", "asked", "holds", "wants"),
    [
        ({"backbone": "linknet"}, {}, "backbone=linknet, num_blocks=2", "backbone=unet, num_blocks=2"),
        ({"num_blocks": 1}, {}, "backbone=unet, num_blocks=1", "backbone=unet, num_blocks=2"),
        ({}, {"num_blocks": 3}, "backbone=unet, num_blocks=2", "backbone=unet, num_blocks=3"),
        ({}, {"backbone": "resnet"}, "backbone=unet, num_blocks=2", "backbone=resnet, num_blocks=2"),
    ],
)
def test_other_configuration_is_named_in_the_error(
    file_settings: dict, asked: dict, holds: str, wants: str, tmp_path: Path
) -> None:
    path = layout_only_file(tmp_path / "G.safetensors", "_orig_mod.", **file_settings)
    with pytest.raises(CheckpointMismatchError) as caught:
        load_model("ghostv2_generator", path=path, **asked)
    message = str(caught.value)
    assert f"the file holds AEI-Net {holds}" in message
    assert f"[{wants}]" in message


def test_discriminator_file_as_generator_is_named(kit_dir: Path, tmp_path: Path) -> None:
    with torch.device("meta"):
        keys = MultiscaleDiscriminator().state_dict()
    path = tmp_path / "D.safetensors"
    write_state_dict({"_orig_mod." + key: torch.zeros(1) for key in keys}, path)
    with pytest.raises(CheckpointMismatchError, match="multiscale discriminator with 3 scales"):
        load_model("ghostv1_generator", path=path)


def test_unsupported_backbone_is_refused_before_loading(tmp_path: Path) -> None:
    path = layout_only_file(tmp_path / "G.safetensors")
    with pytest.raises(ValueError, match="choose one of unet, linknet, resnet"):
        load_model("ghostv2_generator", path=path, backbone="vgg")
