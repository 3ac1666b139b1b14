"""Conformance checks of the AEI-Net generator and the multiscale discriminator (kit family ``network``).

Constructor settings, which attribute maps are stored in full and how many rows/columns the reduced ones
keep are all read from each vector's json; the loss, FAN and eye-landmark vectors of this family live in
``network_training.py``.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

from network.aeinet import NUM_ATTRIBUTES, AEINet
from network.discriminator import MultiscaleDiscriminator
from tests.conformance.runner import Vector, module_layout

Layout = dict[str, tuple[tuple[int, ...], str]]


def generator_settings(text: str) -> dict[str, Any]:
    """AEINet keyword arguments from a json's description, e.g. "AEI-Net, backbone unet, num_blocks 2, c_id 512"."""
    settings: dict[str, Any] = {}
    if match := re.search(r"backbone\s+(\w+)", text):
        settings["backbone"] = match.group(1)
    if match := re.search(r"num_blocks\s+(\d+)", text):
        settings["num_blocks"] = int(match.group(1))
    if match := re.search(r"c_id\s+(\d+)", text):
        settings["c_id"] = int(match.group(1))
    if match := re.search(r"align_corners\s+(true|false)", text, re.IGNORECASE):
        settings["align_corners"] = match.group(1).lower() == "true"
    return settings


def discriminator_settings(text: str) -> dict[str, Any]:
    """MultiscaleDiscriminator keyword arguments from the reference constructor call quoted in a json."""
    names = {"input_nc": "input_channels", "ndf": "base_channels", "n_layers": "num_layers", "num_D": "num_scales"}
    settings = {}
    for theirs, ours in names.items():
        if match := re.search(rf"\b{theirs}=(\d+)", text):
            settings[ours] = int(match.group(1))
    return settings


def generator_layout(manifest: Mapping[str, Any]) -> Layout:
    with torch.device("meta"):
        return module_layout(AEINet(**generator_settings(manifest["architecture"])))


def discriminator_layout(manifest: Mapping[str, Any]) -> Layout:
    with torch.device("meta"):
        return module_layout(MultiscaleDiscriminator(**discriminator_settings(manifest["architecture"])))


def reduce_attribute(attribute: torch.Tensor, samples: int, name: str) -> dict[str, torch.Tensor]:
    """The kit's reduction of a large map: sampled rows/columns plus per-channel mean and unbiased std (float64)."""
    height = attribute.shape[-2]
    index = torch.linspace(0, height - 1, samples, dtype=torch.float64).round().to(torch.int64)
    flat = attribute.to(torch.float64).flatten(2)
    return {
        f"{name}_sample_index": index,
        f"{name}_sampled": attribute[:, :, index][:, :, :, index],
        f"{name}_channel_mean": flat.mean(dim=2).to(torch.float32),
        f"{name}_channel_std": flat.std(dim=2, unbiased=True).to(torch.float32),
    }


def attribute_outputs(attributes: tuple[torch.Tensor, ...], meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Each attribute map in full or reduced, as the vector's json lists its expected tensors."""
    tensors = meta["tensors"]
    outputs: dict[str, torch.Tensor] = {}
    for level in range(NUM_ATTRIBUTES):
        name = f"attr{level}"
        if f"expected.{name}" in tensors:
            outputs[name] = attributes[level]
        else:
            samples = tensors[f"expected.{name}_sample_index"]["shape"][0]
            outputs.update(reduce_attribute(attributes[level], samples, name))
    return outputs


def _filled_generator(vector: Vector) -> AEINet:
    generator = AEINet(**generator_settings(vector.meta["constructor"]))
    return vector.fill(generator).eval()


def check_generator_forward(vector: Vector) -> dict[str, torch.Tensor]:
    inputs = vector.inputs
    generator = vector.twin("ghostv2_generator", _filled_generator(vector), (inputs["Xt"], inputs["z_id"]))
    with torch.no_grad():
        swapped, attributes = generator(inputs["Xt"], inputs["z_id"])
    return {"Y": swapped, **attribute_outputs(attributes, vector.meta)}


def check_generator_get_attr(vector: Vector) -> dict[str, torch.Tensor]:
    generator = _filled_generator(vector)
    with torch.no_grad():
        attributes = generator.get_attr(vector.inputs["X"])
    return attribute_outputs(attributes, vector.meta)


def check_discriminator(vector: Vector) -> dict[str, torch.Tensor]:
    discriminator = vector.fill(MultiscaleDiscriminator(**discriminator_settings(vector.meta["constructor"]))).eval()
    images = vector.inputs["X"]
    with torch.no_grad():
        scores = discriminator(images)
        halved = discriminator.downsample(images)
        quartered = discriminator.downsample(halved)
    outputs = {f"scale{index}": entry[0] for index, entry in enumerate(scores)}
    return {**outputs, "downsampled_x2": halved, "downsampled_x4": quartered}


MANIFESTS: dict[str, Callable[[Mapping[str, Any]], Layout]] = {
    "manifest_GhostV2_G_unet_2blocks": generator_layout,
    "manifest_GhostV1_G_unet_2blocks": generator_layout,
    "manifest_G_linknet_2blocks": generator_layout,
    "manifest_G_resnet_2blocks": generator_layout,
    "manifest_G_unet_1blocks": generator_layout,
    "manifest_G_unet_3blocks": generator_layout,
    "manifest_GhostV2_D_unet_2blocks": discriminator_layout,
}

VECTORS: dict[str, Callable[[Vector], Mapping[str, Any]]] = {
    "aeinet_unet_2blocks_forward": check_generator_forward,
    "aeinet_linknet_2blocks_forward": check_generator_forward,
    "aeinet_resnet_2blocks_forward": check_generator_forward,
    "aeinet_unet_1blocks_forward": check_generator_forward,
    "aeinet_unet_3blocks_forward": check_generator_forward,
    "aeinet_unet_2blocks_get_attr": check_generator_get_attr,
    "discriminator_multiscale_forward": check_discriminator,
}


# Generator forwards also run on ONNX Runtime twins (``--runtime onnxruntime``); get_attr (the encoder alone, a
# training helper) and the discriminator are not exported.
RUNTIME_VECTORS = frozenset(name for name in VECTORS if name.endswith("_forward") and name.startswith("aeinet"))
