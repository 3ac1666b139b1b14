"""AEI-Net: shapes per backbone, gradients, configuration errors, and naming what a state dict holds."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from network.aeinet import BACKBONES, AEINet, convert_state_dict, describe_state_dict
from network.discriminator import MultiscaleDiscriminator

# Channels of the 8 attribute maps (README §3.1-3.2), written out here rather than imported from the code.
EXPECTED_ATTRIBUTE_CHANNELS = {
    "unet": [1024, 2048, 1024, 512, 256, 128, 64, 64],
    "linknet": [1024, 1024, 512, 256, 128, 64, 32, 32],
    "resnet": [1024, 2048, 1024, 512, 256, 128, 64, 64],
}


def meta_generator(**settings) -> AEINet:
    with torch.device("meta"):
        return AEINet(**settings).eval()


def meta_keys(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in module.state_dict().items()}


@pytest.fixture(scope="module")
def generator() -> AEINet:
    """The released configuration with PyTorch's default initialisation (built once: 184 M parameters)."""
    torch.manual_seed(0)
    return AEINet()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_shapes_of_every_backbone(backbone: str) -> None:
    model = meta_generator(backbone=backbone, num_blocks=1)
    with torch.device("meta"):
        swapped, attributes = model(torch.empty(2, 3, 256, 256), torch.empty(2, 512))
        half_size = model.get_attr(torch.empty(1, 3, 128, 128))
    assert swapped.shape == (2, 3, 256, 256)
    assert [a.shape[1] for a in attributes] == EXPECTED_ATTRIBUTE_CHANNELS[backbone]
    assert [a.shape[-1] for a in attributes] == [2, 4, 8, 16, 32, 64, 128, 256]
    assert [a.shape[-1] for a in half_size] == [1, 2, 4, 8, 16, 32, 64, 128]


def test_num_blocks_sets_the_units_per_block() -> None:
    for num_blocks in (1, 2, 3):
        blocks = meta_generator(num_blocks=num_blocks).generator.AADBlk4
        assert len(blocks.add_blocks) == 3 * num_blocks
        assert len(blocks.last_add_block) == 3  # the shortcut always has exactly one unit
    assert meta_generator().generator.AADBlk1.last_add_block is None  # 1024 → 1024: identity shortcut


def test_align_corners_changes_no_weights() -> None:
    assert list(meta_keys(meta_generator(align_corners=False))) == list(meta_keys(meta_generator()))
    assert meta_generator(align_corners=False).generator.align_corners is False


def test_forward_gives_gradients_for_inputs_and_weights(generator: AEINet) -> None:
    target = (torch.rand(1, 3, 256, 256) * 2 - 1).requires_grad_(True)
    identity = F.normalize(torch.randn(1, 512), dim=1).requires_grad_(True)
    generator.zero_grad(set_to_none=True)
    generator.train()
    try:
        swapped, attributes = generator(target, identity)
        (swapped.square().mean() + sum(a.mean() for a in attributes)).backward()
    finally:
        generator.eval()
    assert swapped.shape == (1, 3, 256, 256)
    assert swapped.abs().max() < 1
    for name, gradient in [
        ("target", target.grad),
        ("identity", identity.grad),
        ("encoder.conv1", generator.encoder.conv1[0].weight.grad),
        ("up1", generator.generator.up1.weight.grad),
        ("AADBlk8 identity projection", generator.generator.AADBlk8.add_blocks[0].fc1.weight.grad),
        ("AADBlk8 last conv", generator.generator.AADBlk8.add_blocks[-1].weight.grad),
    ]:
        assert gradient is not None, name
        assert torch.isfinite(gradient).all(), name
        assert gradient.abs().sum() > 0, name


def test_eval_forward_is_per_sample(generator: AEINet) -> None:
    """In eval mode BatchNorm uses running statistics, so a sample's output does not depend on its batch."""
    torch.manual_seed(1)
    targets = torch.rand(2, 3, 256, 256) * 2 - 1
    identities = F.normalize(torch.randn(2, 512), dim=1)
    with torch.no_grad():
        together, _ = generator(targets, identities)
        alone, _ = generator(targets[1:], identities[1:])
    torch.testing.assert_close(together[1:], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backbone": "vgg"}, "unet, linknet, resnet"),
        ({"num_blocks": 0}, "positive integer"),
        ({"num_blocks": 2.0}, "positive integer"),
    ],
)
def test_unsupported_configuration_is_refused(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AEINet(**settings)


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("num_blocks", [1, 2, 3])
@pytest.mark.parametrize("prefix", ["", "_orig_mod."])
def test_describe_names_the_configuration(backbone: str, num_blocks: int, prefix: str) -> None:
    keys = meta_keys(meta_generator(backbone=backbone, num_blocks=num_blocks), prefix)
    assert describe_state_dict(keys) == f"AEI-Net backbone={backbone}, num_blocks={num_blocks}"


def test_describe_other_files() -> None:
    with torch.device("meta"):
        discriminator = MultiscaleDiscriminator()
        narrow = AEINet(c_id=256)
    assert describe_state_dict(meta_keys(discriminator, "_orig_mod.")) == "a multiscale discriminator with 3 scales"
    assert describe_state_dict(meta_keys(narrow)).endswith("c_id=256")
    assert describe_state_dict({"conv.weight": torch.zeros(1)}).startswith("no AEI-Net layout")


def test_convert_strips_only_a_leading_compile_prefix() -> None:
    tensor = torch.zeros(1)
    converted = convert_state_dict({"_orig_mod.encoder.conv1.0.weight": tensor, "generator._orig_mod.x": tensor})
    assert list(converted) == ["encoder.conv1.0.weight", "generator._orig_mod.x"]
