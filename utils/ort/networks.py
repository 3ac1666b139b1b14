"""What each exported network looks like from the outside: input names, dynamic axes, and how a torch call maps to them.

An exported graph takes a flat list of float32 tensors and returns a flat list; :class:`FlatOutputs` records,
while the exporter traces it, how the module's nested result (a tensor, tuples, lists) was flattened, so the
ONNX Runtime twin can hand back the same structure. GFPGAN's noise is an explicit input of its graph: the twin
draws it with :func:`models.gfpgan.draw_noise_maps`, the function the network itself uses, so a seeded run
(``models.gfpgan.seeded_noise``) gives the same noise on both runtimes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

GENERATORS = ("ghostv2_generator", "ghostv1_generator")
EMBEDDINGS = ("cvl_vit", "cvl_adaface", "cvl_arcface", "adaface", "arcface", "facenet")
GFPGANS = ("gfpgan_v1_4", "gfpgan_v1_2")

# A structure is an int (index of a flat output), or {"tuple": [...]} / {"list": [...]} of structures.
Structure = Any


def flatten(value: Any, flat: list[torch.Tensor]) -> Structure:
    """Append the tensors of a nested tensor/tuple/list result to ``flat``; return its structure."""
    if isinstance(value, torch.Tensor):
        flat.append(value)
        return len(flat) - 1
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [flatten(item, flat) for item in value]}
    raise TypeError(f"cannot export a network output of type {type(value).__name__}")


def rebuild(structure: Structure, flat: Sequence[Any]) -> Any:
    """Inverse of :func:`flatten`: the nested result from the flat outputs."""
    if isinstance(structure, int):
        return flat[structure]
    (kind, items), = structure.items()
    values = [rebuild(item, flat) for item in items]
    return tuple(values) if kind == "tuple" else values


class StructureRecord:
    """Holds the structure :class:`FlatOutputs` saw (outside the module: the exporter restores module attributes)."""

    structure: Structure = None


class FlatOutputs(nn.Module):
    """Wraps a network so that it returns a flat tuple of tensors; ``record.structure`` is set while tracing."""

    def __init__(self, network: nn.Module, record: StructureRecord) -> None:
        super().__init__()
        self.network = network
        self._record = [record]  # a list, so nn.Module does not treat it as state

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        flat: list[torch.Tensor] = []
        self._record[0].structure = flatten(self.network(*inputs), flat)
        return tuple(flat)


class GFPGANWithNoise(nn.Module):
    """GFPGAN whose noise maps are inputs: forward(x, noise_0, ..., noise_14) -> (image, [])."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, *noises: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.network(x, return_rgb=False, noises=noises)


@dataclass(frozen=True)
class Interface:
    """The inputs of one exported network: names in call order and, per input, its dynamic axes (axis -> name)."""

    inputs: tuple[str, ...]
    dynamic: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    # Exported for batch 1 and run one sample at a time (a graph whose batch cannot be dynamic).
    per_sample: bool = False

    def export_module(self, module: nn.Module) -> nn.Module:
        """The module the exporter traces (before :class:`FlatOutputs`)."""
        return module

    def export_inputs(self, module: nn.Module, example_inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Example inputs for tracing; a dynamic batch axis gets batch 2 (the exporter specialises 0 and 1)."""
        return tuple(_batch_of_two(tensor) if 0 in self.dynamic.get(name, {}) else tensor
                     for name, tensor in zip(self.inputs, example_inputs))

    def feeds(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[torch.Tensor]:
        """The graph's inputs for a call with the torch module's arguments."""
        if kwargs:
            raise TypeError(f"the ONNX Runtime twin takes positional tensors only, got {', '.join(kwargs)}")
        if len(args) != len(self.inputs):
            raise TypeError(f"the network takes {len(self.inputs)} tensors ({', '.join(self.inputs)}), got {len(args)}")
        return list(args)


@dataclass(frozen=True)
class GFPGANInterface(Interface):
    """GFPGAN: called as ``model(x, return_rgb=False, randomize_noise=True, noises=None)``, like the torch module.

    ``resolutions`` and ``stored`` (the checkpoint's noise buffers, for ``randomize_noise=False``) come from the
    module when the twin is built.
    """

    resolutions: tuple[int, ...] = ()
    stored: tuple[torch.Tensor, ...] = ()

    def export_module(self, module: nn.Module) -> nn.Module:
        return GFPGANWithNoise(module)

    def export_inputs(self, module: nn.Module, example_inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (example_inputs[0][:1], *module.stored_noise())

    def feeds(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[torch.Tensor]:
        from models.gfpgan import draw_noise_maps

        options = dict(kwargs)
        x = args[0] if args else options.pop("x")
        return_rgb = options.pop("return_rgb", args[1] if len(args) > 1 else False)
        randomize_noise = options.pop("randomize_noise", args[2] if len(args) > 2 else True)
        noises = options.pop("noises", args[3] if len(args) > 3 else None)
        if options:
            raise TypeError(f"unexpected arguments for GFPGAN: {', '.join(options)}")
        if return_rgb:
            raise ValueError("the ONNX Runtime GFPGAN returns no per-level previews (return_rgb=False only)")
        if noises is None:
            if randomize_noise:
                noises = draw_noise_maps(self.resolutions, x.shape[0], x.device, torch.float32)
            else:
                noises = [noise.to(x.device) for noise in self.stored]
        batch = x.shape[0]
        return [x, *(noise.to(x.dtype).expand(batch, -1, -1, -1).contiguous() for noise in noises)]


def _batch_of_two(tensor: torch.Tensor) -> torch.Tensor:
    return torch.cat([tensor[:1], tensor[:1]]) if tensor.shape[0] != 2 else tensor


_BATCH = {0: "batch"}


def interface_for(name: str, module: nn.Module | None = None) -> Interface:
    """The interface of a registry network (``module`` is the loaded torch network, needed by GFPGAN)."""
    if name == "retinaface":
        # Any photo size: detection runs at the photo's own (resized) size.
        return Interface(("x",), {"x": {0: "batch", 2: "height", 3: "width"}})
    if name == "face_alignment":
        return Interface(("x",), {"x": _BATCH})
    if name in EMBEDDINGS:
        return Interface(("x",), {"x": _BATCH})
    if name in GENERATORS:
        return Interface(("target", "identity"), {"target": _BATCH, "identity": _BATCH})
    if name == "bisenet":
        # Its global average pooling takes the whole map as its kernel, which ONNX needs constant: the file has the
        # example's size (512x512 from export_onnx.py, the size facexlib_with_parser parses at).
        return Interface(("x",), {"x": _BATCH})
    if name in GFPGANS:
        resolutions: tuple[int, ...] = ()
        stored: tuple[torch.Tensor, ...] = ()
        if module is not None:
            resolutions = tuple(module.stylegan_decoder.noise_resolutions())
            stored = tuple(noise.detach() for noise in module.stored_noise())
        count = len(resolutions) if module is not None else 15
        names = ("x", *(f"noise_{index}" for index in range(count)))
        # The modulated convolution is a convolution grouped by sample (groups = batch), and ONNX needs a constant
        # group count: the graph takes one face, and the twin runs a batch face by face.
        return GFPGANInterface(names, {}, per_sample=True, resolutions=resolutions, stored=stored)
    raise KeyError(f"no ONNX export is defined for network {name!r}")


EXPORTABLE = ("retinaface", "face_alignment", *EMBEDDINGS, *GENERATORS, *GFPGANS, "bisenet")


def example_inputs(name: str) -> tuple[torch.Tensor, ...]:
    """Inputs of the size the pipeline uses, to trace a registry network for export (values do not matter)."""
    generator = torch.Generator().manual_seed(0)

    def image(size: int) -> torch.Tensor:
        return torch.rand(1, 3, size, size, generator=generator) * 2 - 1

    if name == "retinaface":
        return (image(320) * 127,)
    if name == "face_alignment":
        return ((image(256) + 1) / 2,)
    if name in EMBEDDINGS:
        return (image(160 if name == "facenet" else 112),)
    if name in GENERATORS:
        return image(256), torch.nn.functional.normalize(torch.randn(1, 512, generator=generator), dim=1)
    if name in GFPGANS or name == "bisenet":
        return (image(512),)
    raise KeyError(f"no ONNX export is defined for network {name!r}")
