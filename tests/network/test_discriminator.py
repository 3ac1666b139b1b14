"""Multiscale discriminator: output structure per scale, gradients, and a layout free of buffers."""
from __future__ import annotations

import pytest
import torch

from network.discriminator import MultiscaleDiscriminator


@pytest.fixture(scope="module")
def discriminator() -> MultiscaleDiscriminator:
    torch.manual_seed(0)
    return MultiscaleDiscriminator()


def test_scores_every_scale(discriminator: MultiscaleDiscriminator) -> None:
    images = (torch.rand(2, 3, 256, 256) * 2 - 1).requires_grad_(True)
    scores = discriminator(images)
    assert [len(entry) for entry in scores] == [1, 1, 1]
    assert [tuple(entry[0].shape) for entry in scores] == [(2, 1, 11, 11), (2, 1, 7, 7), (2, 1, 5, 5)]
    sum(entry[0].mean() for entry in scores).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(parameter.grad is not None for parameter in discriminator.parameters())


def test_full_resolution_goes_through_the_last_sub_network(discriminator: MultiscaleDiscriminator) -> None:
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        scores = discriminator(images)
        pooled = discriminator.downsample(images)
        torch.testing.assert_close(scores[0][0], discriminator.layer2(images), rtol=0, atol=0)
        torch.testing.assert_close(scores[1][0], discriminator.layer1(pooled), rtol=0, atol=0)
        torch.testing.assert_close(scores[2][0], discriminator.layer0(discriminator.downsample(pooled)), rtol=0, atol=0)


def test_state_has_no_buffers() -> None:
    with torch.device("meta"):
        model = MultiscaleDiscriminator()
    assert len(model.state_dict()) == 42
    assert list(model.buffers()) == []
