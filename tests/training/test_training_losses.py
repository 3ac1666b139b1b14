"""Training losses, heatmap decoding and eye landmarks on small tensors (the kit's vectors cover the exact values)."""
from __future__ import annotations

import pytest
import torch

from models.adaptive_wing import FAN, decode_heatmaps, detect_landmarks
from utils.training.losses import (
    LossWeights,
    attribute_loss,
    discriminator_loss,
    generator_losses,
    hinge_loss,
    reconstruction_loss,
)


def scores(batch: int, seed: int) -> list[list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(batch, 1, size, size, generator=generator)] for size in (5, 4, 3)]


def test_hinge_loss() -> None:
    values = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    assert torch.equal(hinge_loss(values, True), torch.tensor([3.0, 2.0, 1.0, 0.5, 0.0, 0.0]))
    assert torch.equal(hinge_loss(values, False), torch.tensor([0.0, 0.0, 1.0, 1.5, 2.0, 4.0]))


def test_reconstruction_loss_masks_pairs_and_works_for_any_batch_size() -> None:
    swapped, target = torch.zeros(3, 3, 4, 4), torch.ones(3, 3, 4, 4)
    target[1] = 3.0  # a pair that is not the same person: must not count
    loss = reconstruction_loss(swapped, target, torch.tensor([1, 0, 1]))
    assert loss.item() == pytest.approx(0.5 * 2 / (2 + 1e-6))


def test_attribute_loss_divides_by_two_not_by_the_number_of_levels() -> None:
    target = [torch.zeros(2, 4, 2, 2), torch.zeros(2, 8, 4, 4)]
    swapped = [torch.ones(2, 4, 2, 2), 2 * torch.ones(2, 8, 4, 4)]
    assert attribute_loss(target, swapped).item() == pytest.approx((1 + 4) / 2)


def generator_inputs(batch: int, requires_grad: bool = True) -> dict:
    generator = torch.Generator().manual_seed(1)
    swapped = torch.rand(batch, 3, 8, 8, generator=generator).mul(2).sub(1).requires_grad_(requires_grad)
    return {
        "get_attributes": lambda images: [images.mean(dim=1, keepdim=True)],
        "swapped": swapped,
        "target": torch.rand(batch, 3, 8, 8, generator=generator),
        "target_attributes": [torch.zeros(batch, 1, 8, 8)],
        "fake_scores": scores(batch, 2),
        "source_embedding": torch.nn.functional.normalize(torch.randn(batch, 16, generator=generator), dim=1),
        "swapped_embedding": torch.randn(batch, 16, generator=generator),
        "eye_heatmaps": None,
        "adversarial_accumulated": torch.tensor(20.0),
        "diff_person": torch.ones(batch, dtype=torch.int64),
        "same_person": torch.tensor([1, 0, 1][:batch]),
        "weights": LossWeights(),
    }


def test_generator_losses_combine_the_terms_and_detach_the_running_average() -> None:
    inputs = generator_inputs(3)
    losses = generator_losses(**inputs)
    weights = inputs["weights"]
    expected_total = (
        weights.adversarial * losses.adversarial + weights.attributes * losses.attributes
        + weights.identity * losses.identity + weights.reconstruction * losses.reconstruction
    )
    assert losses.total.item() == pytest.approx(expected_total.item(), rel=1e-6)
    assert losses.eyes.item() == 0.0
    assert not losses.adversarial_accumulated.requires_grad
    assert losses.adversarial_accumulated.item() == pytest.approx(0.98 * 20.0 + 0.02 * losses.adversarial.item())
    losses.total.backward()
    assert inputs["swapped"].grad is not None and torch.isfinite(inputs["swapped"].grad).all()


def test_eye_loss_is_weighted_in_when_heatmaps_are_given() -> None:
    inputs = generator_inputs(2)
    heatmaps = [torch.zeros(2, 4, 4), torch.zeros(2, 4, 4), torch.ones(2, 4, 4), 2 * torch.ones(2, 4, 4)]
    without = generator_losses(**inputs)
    with_eyes = generator_losses(**{**inputs, "eye_heatmaps": heatmaps, "weights": LossWeights(eyes=3.0)})
    assert with_eyes.eyes.item() == pytest.approx(1.0 + 4.0)
    assert with_eyes.total.item() == pytest.approx(without.total.item() + 3.0 * 5.0, rel=1e-6)


def test_discriminator_loss_scores_the_detached_fake_first_then_the_real() -> None:
    fake, real = scores(2, 3), scores(2, 4)
    calls = []
    swapped = torch.zeros(2, 3, 8, 8, requires_grad=True)
    source = torch.ones(2, 3, 8, 8)

    def discriminator(images: torch.Tensor) -> list[list[torch.Tensor]]:
        calls.append(images)
        return fake if len(calls) == 1 else real

    loss = discriminator_loss(discriminator, swapped, source, torch.ones(2, dtype=torch.int64))
    assert not calls[0].requires_grad and calls[1] is source
    fake_part = sum(hinge_loss(scale[0], False).mean() for scale in fake)
    real_part = sum(hinge_loss(scale[0], True).mean() for scale in real)
    assert loss.item() == pytest.approx(0.5 * (fake_part + real_part).item() * 2 / (2 + 1e-4), rel=1e-6)


def test_decode_heatmaps_refines_interior_peaks_only() -> None:
    heatmaps = torch.zeros(1, 3, 64, 64)
    heatmaps[0, 0, 20, 30] = 5.0
    heatmaps[0, 0, 20, 31] = 1.0  # right neighbour larger: x + 0.25
    heatmaps[0, 0, 19, 30] = 1.0  # upper neighbour larger: y - 0.25
    heatmaps[0, 1, 10, 0] = 5.0  # left border: no refinement
    heatmaps[0, 1, 10, 1] = 1.0
    heatmaps[0, 2, 33, 8] = 5.0  # equal neighbours: no shift
    landmarks = decode_heatmaps(heatmaps)
    assert landmarks[0].tolist() == [[30.75, 20.25], [0.5, 10.5], [8.5, 33.5]]


def test_detect_landmarks_gives_differentiable_eye_heatmaps() -> None:
    torch.manual_seed(0)
    fan = FAN(num_modules=1).eval()
    images = torch.rand(1, 3, 256, 256).mul(2).sub(1).requires_grad_(True)
    eyes, left, right, landmarks = detect_landmarks(images, fan)
    assert eyes.shape == (1, 4) and left.shape == right.shape == (1, 64, 64) and landmarks.shape == (1, 98, 2)
    assert torch.equal(eyes[0], landmarks[0, 96:98].reshape(4))
    assert ((landmarks >= 0) & (landmarks <= 256)).all()
    (left.sum() + right.sum()).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
