"""Conformance checks of the training losses, the AdaptiveWingLoss FAN and the eye landmarks (kit family ``network``).

The generator/discriminator manifests and forward vectors are checked in ``network.py``. Cases, loss weights,
masks, constructor settings and sample counts are read from each vector's json.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from models.adaptive_wing import HEATMAP_TO_IMAGE, AdaptiveWingFAN, decode_heatmaps, detect_landmarks
from network.aeinet import BACKBONES, AEINet
from network.discriminator import MultiscaleDiscriminator
from tests.conformance.runner import Vector, module_layout, tolerance_from_meta
from utils.training.losses import LossWeights, discriminator_loss, generator_losses, hinge_loss

GENERATOR_OUTPUTS = ("lossG", "loss_adv_accumulated", "L_adv", "L_attr", "L_id", "L_rec", "L_l2_eyes")
_WEIGHT_NAMES = {
    "weight_adv": "adversarial", "weight_attr": "attributes", "weight_id": "identity",
    "weight_rec": "reconstruction", "weight_eyes": "eyes",
}


def fan_layout(manifest: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    with torch.device("meta"):
        return module_layout(AdaptiveWingFAN())


def _indexed(inputs: Mapping[str, torch.Tensor], stem: str) -> list[torch.Tensor]:
    """input.<stem>0, <stem>1, … in index order."""
    found = {int(key[len(stem):]): value for key, value in inputs.items() if re.fullmatch(rf"{stem}\d+", key)}
    return [found[index] for index in sorted(found)]


def _mask(description: str, inputs: Mapping[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """A case's diff_person/same_person: "all ones …" or the name of an input tensor."""
    if description.strip().lower().startswith("all ones"):
        return torch.ones_like(like)
    return inputs[description.split()[0]]


def _outputs(losses: Any) -> dict[str, torch.Tensor]:
    return dict(zip(GENERATOR_OUTPUTS, (torch.as_tensor(value).detach() for value in losses), strict=True))


def _weights(case: Mapping[str, Any]) -> LossWeights:
    return LossWeights(**{_WEIGHT_NAMES[name]: float(value) for name, value in case["weights"].items()})


def check_hinge(vector: Vector) -> dict[str, torch.Tensor]:
    scores = vector.inputs["X"]
    return {"positive": hinge_loss(scores, True), "negative": hinge_loss(scores, False)}


def check_generator_losses(vector: Vector) -> dict[str, torch.Tensor]:
    inputs = vector.inputs
    target_attributes = _indexed(inputs, "Xt_attr")
    swapped_attributes = _indexed(inputs, "Y_attr")
    fake_scores = [[scores] for scores in _indexed(inputs, "Di")]
    heatmaps = [inputs[name] for name in ("Xt_heatmap_left", "Xt_heatmap_right", "Y_heatmap_left", "Y_heatmap_right")]
    outputs: dict[str, torch.Tensor] = {}
    for case_name, case in vector.meta["cases"].items():
        losses = generator_losses(
            lambda images: swapped_attributes,
            inputs["Y"], inputs["Xt"], target_attributes, fake_scores, inputs["embed"], inputs["ZY"],
            heatmaps if case["eye_detector_loss"] else None,
            inputs["loss_adv_accumulated"],
            _mask(case["diff_person"], inputs, inputs["same_person"]),
            _mask(case["same_person"], inputs, inputs["same_person"]),
            _weights(case),
        )
        outputs.update({f"{case_name}.{name}": value for name, value in _outputs(losses).items()})
    return outputs


def check_discriminator_loss(vector: Vector) -> dict[str, torch.Tensor]:
    inputs = vector.inputs
    swapped = inputs["Y"]
    fake_scores = [[scores] for scores in _indexed(inputs, "fake_D")]
    real_scores = [[scores] for scores in _indexed(inputs, "true_D")]

    def stub_discriminator(images: torch.Tensor) -> list[list[torch.Tensor]]:
        return fake_scores if images.data_ptr() == swapped.data_ptr() else real_scores

    outputs = {}
    for case_name, description in vector.meta["cases"].items():
        if description.strip().lower().startswith("diff_person = all ones"):
            diff_person = torch.ones_like(inputs["diff_person_alt"])
        else:
            diff_person = inputs[case_name]
        outputs[f"{case_name}.lossD"] = discriminator_loss(stub_discriminator, swapped, inputs["Xs"], diff_person)
    return outputs


def _end_to_end_models(vector: Vector) -> tuple[AEINet, MultiscaleDiscriminator]:
    text = vector.meta["constructor"]
    generator_text, _, discriminator_text = text.partition("D =")
    settings: dict[str, Any] = {"backbone": re.search(rf"\b({'|'.join(BACKBONES)})\b", generator_text).group(1)}
    if match := re.search(r"num_blocks\s+(\d+)", generator_text):
        settings["num_blocks"] = int(match.group(1))
    if match := re.search(r"c_id\s+(\d+)", generator_text):
        settings["c_id"] = int(match.group(1))
    if match := re.search(r"align_corners\s+(true|false)", generator_text, re.IGNORECASE):
        settings["align_corners"] = match.group(1).lower() == "true"
    discriminator_settings = {}
    if match := re.search(r"n_layers=(\d+)", discriminator_text):
        discriminator_settings["num_layers"] = int(match.group(1))
    generator = vector.fill(AEINet(**settings)).train()
    discriminator = vector.fill(MultiscaleDiscriminator(**discriminator_settings)).train()
    return generator, discriminator


def _args_weights(text: str) -> tuple[LossWeights, bool]:
    values = {name: float(match.group(1)) for name in _WEIGHT_NAMES if (match := re.search(rf"{name}\s+([0-9.]+)", text))}
    eye_loss = bool(re.search(r"eye_detector_loss\s+true", text, re.IGNORECASE))
    return LossWeights(**{_WEIGHT_NAMES[name]: value for name, value in values.items()}), eye_loss


def check_end_to_end(vector: Vector) -> dict[str, torch.Tensor]:
    inputs = vector.inputs
    generator, discriminator = _end_to_end_models(vector)
    weights, eye_loss = _args_weights(vector.meta["args"])
    if eye_loss:
        raise NotImplementedError("the end-to-end vector is expected to run with the eye loss off")
    same_person = inputs["same_person"]
    diff_person = torch.ones_like(same_person)
    swapped, target_attributes = generator(inputs["Xt"], inputs["embed"])
    fake_scores = discriminator(swapped)
    losses = generator_losses(
        generator.get_attr, swapped, inputs["Xt"], target_attributes, fake_scores, inputs["embed"], inputs["ZY"],
        None, inputs["loss_adv_accumulated"], diff_person, same_person, weights,
    )
    outputs = _outputs(losses)
    outputs["lossD"] = discriminator_loss(discriminator, swapped, inputs["Xs"], diff_person).detach()
    outputs["Y"] = swapped.detach()
    outputs.update({f"Di{scale}": scores[0].detach() for scale, scores in enumerate(fake_scores)})
    return outputs


def _sample_index(size: int, samples: int) -> torch.Tensor:
    return torch.linspace(0, size - 1, samples, dtype=torch.float64).round().to(torch.int64)


def check_fan_forward(vector: Vector) -> dict[str, torch.Tensor]:
    fan = vector.fill(AdaptiveWingFAN()).eval()
    with torch.no_grad():
        heatmaps, boundaries = fan(vector.inputs["X"])
    expected = vector.expected
    outputs: dict[str, torch.Tensor] = {}
    for index, heatmap in enumerate(heatmaps):
        if f"heatmaps{index}" in expected:
            outputs[f"heatmaps{index}"] = heatmap
        elif f"heatmaps{index}_sampled" in expected:
            rows = _sample_index(heatmap.shape[-2], expected["heatmaps_sample_index"].numel())
            outputs[f"heatmaps{index}_sampled"] = heatmap[:, :, rows][:, :, :, rows]
            outputs["heatmaps_sample_index"] = rows
    outputs.update({f"boundary{index}": boundary for index, boundary in enumerate(boundaries)})
    return outputs


def _accept_fragile_landmarks(
    landmarks: torch.Tensor, heatmaps: torch.Tensor, expected: torch.Tensor, fragile: list[list[float]],
    relative: float,
) -> torch.Tensor:
    """Take the reference's decoding of the landmarks the json lists as fragile when ours is equally valid.

    The json warns that these landmarks have a top-1/top-2 margin below float32 noise, so a correct
    implementation may pick the other peak. We accept the reference's position only when our own heatmap is
    within the json's heatmap tolerance of its maximum there, i.e. when both decodings are ties for us.
    """
    landmarks = landmarks.clone()
    height, width = heatmaps.shape[-2:]
    for sample, landmark, _margin in fragile:
        sample, landmark = int(sample), int(landmark)
        heatmap = heatmaps[sample, landmark].to(torch.float64)
        # Decoded positions are peak + 0.5 ± 0.25, so rounding (position - 0.5) recovers the peak cell.
        column, row = (torch.round(expected[sample, landmark] / HEATMAP_TO_IMAGE - 0.5)).to(torch.int64).tolist()
        column, row = min(max(column, 0), width - 1), min(max(row, 0), height - 1)
        bound = relative * max(1.0, float(heatmap.abs().max()))
        if float(heatmap.max() - heatmap[row, column]) <= bound:
            landmarks[sample, landmark] = expected[sample, landmark]
    return landmarks


def check_detect_landmarks(vector: Vector) -> dict[str, torch.Tensor]:
    fan = vector.fill(AdaptiveWingFAN()).eval()
    images = vector.inputs["X"]
    with torch.no_grad():
        eyes, left, right, landmarks = detect_landmarks(images, fan)
        heatmaps = fan(images * 0.5 + 0.5)[0][-1][:, :-1]
    fragile = vector.meta.get("decoding_margins", {}).get("fragile_landmarks", [])
    if fragile:
        heatmap_tolerance = tolerance_from_meta(vector.meta, "heatmap_left").relative
        landmarks = _accept_fragile_landmarks(
            landmarks, heatmaps, vector.expected["landmarks_all"], fragile, heatmap_tolerance
        )
    return {"eyes": eyes, "heatmap_left": left, "heatmap_right": right, "landmarks_all": landmarks}


def check_decode(vector: Vector) -> dict[str, torch.Tensor]:
    predictions = decode_heatmaps(vector.inputs["heatmaps"])
    return {"preds": predictions, "landmarks_256": predictions * HEATMAP_TO_IMAGE}


MANIFESTS = {"manifest_WFLW_4HG": fan_layout}

VECTORS = {
    "loss_hinge": check_hinge,
    "loss_generator": check_generator_losses,
    "loss_discriminator": check_discriminator_loss,
    "losses_end_to_end_train_mode": check_end_to_end,
    "fan_wflw_4hg_forward": check_fan_forward,
    "detect_landmarks_eyes": check_detect_landmarks,
    "decode_heatmap_landmarks": check_decode,
}
