"""GhostV2's training losses: hinge adversarial terms, the generator's five losses, the discriminator loss.

Maths per ../shared/conformance/network/README.md §5 (the reference's formulas, epsilons and the divisor 2 of the
attribute loss included). Two of the reference's training-loop bugs are fixed here: the batch size is read from
the tensors (the reference reshapes with the configured batch size, which breaks on a short last batch), and the
accumulated adversarial loss is returned detached (the reference keeps it attached to the autograd graph).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

# Epsilons of the reference's masked means (kept: they shift the values slightly and the vectors pin them).
ADVERSARIAL_EPSILON = 1e-4
RECONSTRUCTION_EPSILON = 1e-6
ATTRIBUTE_DIVISOR = 2.0
# Running average of the adversarial loss: accumulated <- 0.98 * accumulated + 0.02 * L_adv.
ACCUMULATION_DECAY = 0.98
ACCUMULATION_RATE = 0.02

DiscriminatorOutput = Sequence[Sequence[torch.Tensor]]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's loss terms; the defaults are train.py's (TrainingConfig reads them from here).

    The released model's phase 2 used identity 70 and eyes 1200 (configs/ghostv2_phase2.yaml).
    """

    adversarial: float = 1.0
    attributes: float = 10.0
    identity: float = 20.0
    reconstruction: float = 10.0
    eyes: float = 0.0


class GeneratorLosses(NamedTuple):
    """What :func:`generator_losses` returns: the total to back-propagate and each term (scalars)."""

    total: torch.Tensor
    adversarial_accumulated: torch.Tensor
    adversarial: torch.Tensor
    attributes: torch.Tensor
    identity: torch.Tensor
    reconstruction: torch.Tensor
    eyes: torch.Tensor


def hinge_loss(scores: torch.Tensor, positive: bool) -> torch.Tensor:
    """Elementwise hinge: relu(1 - scores) for real/positive targets, relu(1 + scores) otherwise.

    Any shape → same shape, values >= 0.
    """
    return torch.relu(1 - scores) if positive else torch.relu(scores + 1)


def _per_sample_mean(values: torch.Tensor) -> torch.Tensor:
    """[B, ...] → [B]: mean over every axis but the batch axis."""
    return values.reshape(values.shape[0], -1).mean(dim=1)


def _masked_mean(per_sample: torch.Tensor, mask: torch.Tensor, epsilon: float) -> torch.Tensor:
    return torch.sum(per_sample * mask) / (mask.sum() + epsilon)


def adversarial_generator_loss(fake_scores: DiscriminatorOutput, diff_person: torch.Tensor) -> torch.Tensor:
    """Generator's hinge loss: per-sample sum over scales, then the diff_person-weighted mean.

    fake_scores: per scale a one-element list [B, 1, h, w]; diff_person [B] 0/1 → scalar.
    """
    per_sample = sum(_per_sample_mean(hinge_loss(scale[0], True)) for scale in fake_scores)
    return _masked_mean(per_sample, diff_person, ADVERSARIAL_EPSILON)


def identity_loss(source_embedding: torch.Tensor, swapped_embedding: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cosine similarity between the source's and the swapped face's embeddings ([B, D] each)."""
    return (1 - torch.cosine_similarity(source_embedding, swapped_embedding, dim=1)).mean()


def attribute_loss(target_attributes: Sequence[torch.Tensor], swapped_attributes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Half the sum over levels of the mean squared difference of the attribute maps (divisor 2, not 8)."""
    total = sum(
        _per_sample_mean((target - swapped) ** 2).mean()
        for target, swapped in zip(target_attributes, swapped_attributes, strict=True)
    )
    return total / ATTRIBUTE_DIVISOR


def reconstruction_loss(swapped: torch.Tensor, target: torch.Tensor, same_person: torch.Tensor) -> torch.Tensor:
    """Half the per-sample MSE between swapped and target faces, averaged over the pairs with same_person = 1.

    swapped, target [B, 3, H, W] in [-1, 1]; same_person [B] 0/1 → scalar.
    """
    per_sample = 0.5 * _per_sample_mean((swapped - target) ** 2)
    return _masked_mean(per_sample, same_person, RECONSTRUCTION_EPSILON)


def eye_loss(eye_heatmaps: Sequence[torch.Tensor]) -> torch.Tensor:
    """MSE of the left-eye heatmaps plus MSE of the right-eye heatmaps of target and swapped faces.

    eye_heatmaps = (target_left, target_right, swapped_left, swapped_right), each [B, 64, 64].
    """
    target_left, target_right, swapped_left, swapped_right = eye_heatmaps
    return F.mse_loss(target_left, swapped_left) + F.mse_loss(target_right, swapped_right)


def running_adversarial_loss(accumulated: torch.Tensor | float, adversarial: torch.Tensor) -> torch.Tensor:
    """The running average 0.98·accumulated + 0.02·adversarial, detached from the autograd graph (scalars)."""
    previous = torch.as_tensor(accumulated, device=adversarial.device).detach()
    return ACCUMULATION_DECAY * previous + ACCUMULATION_RATE * adversarial.detach()


def generator_losses(
    get_attributes: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    swapped: torch.Tensor,
    target: torch.Tensor,
    target_attributes: Sequence[torch.Tensor],
    fake_scores: DiscriminatorOutput,
    source_embedding: torch.Tensor,
    swapped_embedding: torch.Tensor,
    eye_heatmaps: Sequence[torch.Tensor] | None,
    adversarial_accumulated: torch.Tensor | float,
    diff_person: torch.Tensor,
    same_person: torch.Tensor,
    weights: LossWeights,
) -> GeneratorLosses:
    """All generator losses of one batch and the updated running average of the adversarial loss.

    swapped, target [B, 3, 256, 256] RGB in [-1, 1]; get_attributes is the generator's attribute encoder
    (G.get_attr); fake_scores = D(swapped); embeddings [B, 512]; eye_heatmaps None when the eye loss is off;
    diff_person, same_person [B] 0/1. The running average (0.98·old + 0.02·adversarial) is detached.
    """
    adversarial = adversarial_generator_loss(fake_scores, diff_person)
    identity = identity_loss(source_embedding, swapped_embedding)
    attributes = attribute_loss(target_attributes, get_attributes(swapped))
    reconstruction = reconstruction_loss(swapped, target, same_person)
    eyes = eye_loss(eye_heatmaps) if eye_heatmaps is not None else torch.zeros((), device=swapped.device)
    total = (
        weights.adversarial * adversarial
        + weights.attributes * attributes
        + weights.identity * identity
        + weights.reconstruction * reconstruction
    )
    if eye_heatmaps is not None:
        total = total + weights.eyes * eyes
    accumulated = running_adversarial_loss(adversarial_accumulated, adversarial)
    return GeneratorLosses(total, accumulated, adversarial, attributes, identity, reconstruction, eyes)


def discriminator_loss(
    discriminator: Callable[[torch.Tensor], DiscriminatorOutput],
    swapped: torch.Tensor,
    source: torch.Tensor,
    diff_person: torch.Tensor,
) -> torch.Tensor:
    """Hinge loss of the discriminator: swapped faces (detached) are fake, source images are real.

    swapped, source [B, 3, H, W] in [-1, 1]; diff_person [B] 0/1 → scalar ½(real + fake), each summed over
    scales of the diff_person-weighted per-sample means. D is called on the fake batch first (as the reference).
    """
    fake_scores = discriminator(swapped.detach())
    fake = sum(
        _masked_mean(_per_sample_mean(hinge_loss(scale[0], False)), diff_person, ADVERSARIAL_EPSILON)
        for scale in fake_scores
    )
    real_scores = discriminator(source)
    real = sum(
        _masked_mean(_per_sample_mean(hinge_loss(scale[0], True)), diff_person, ADVERSARIAL_EPSILON)
        for scale in real_scores
    )
    return 0.5 * (real + fake)
