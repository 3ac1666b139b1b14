"""Conformance checks of the recognition family: embedding models, the embedding API and the DFA aligner.

Manifests are checked on modules built (on the meta device) through the registry, so the registry's builder
for each checkpoint is what is verified. The ``dfa_cvl_align_face`` vector (the ``cvlface`` align mode,
utils/align.py) lives in ``recognition_align.py``.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

import torch
from torch import nn

from models.embeddings import FaceEmbedder
from models.registry import CHECKPOINTS, build_module
from tests.conformance.runner import Vector, module_layout

RECOGNITION_CHECKPOINTS = ("arcface", "adaface", "cvl_arcface", "cvl_adaface", "cvl_vit", "facenet", "cvlface_aligner")


def _manifest_check(checkpoint: str) -> Callable[[dict], dict]:
    def layout(manifest: dict) -> dict:
        with torch.device("meta"):
            module = build_module(checkpoint)
        return module_layout(module)

    return layout


MANIFESTS: dict[str, Callable[[dict], Mapping[str, tuple[tuple[int, ...], str]]]] = {
    CHECKPOINTS[name].manifest.removesuffix(".json"): _manifest_check(name) for name in RECOGNITION_CHECKPOINTS
}


def _filled(vector: Vector, checkpoint: str) -> nn.Module:
    """The registry's module for ``checkpoint`` with the kit's stand-in weights, in eval mode."""
    module = build_module(checkpoint)
    vector.fill(module)
    return module.eval()


def _debug_summary(kind: str, output: torch.Tensor) -> torch.Tensor:
    if kind == "chmean":
        return output.mean(dim=(2, 3))
    if kind == "first4tokens":
        return output[:, :4]
    return output


def _hook_debug_outputs(network: nn.Module, names: list[str], stack: ExitStack) -> dict[str, torch.Tensor]:
    """Register forward hooks for the vector's ``debug.*`` tensors and return the dict they fill.

    A debug name is a module path of the network (dots written as underscores), optionally followed by
    ``_chmean`` (mean over H and W) or ``_first4tokens`` (first four tokens), as the kit's jsons describe.
    """
    modules = {path.replace(".", "_"): module for path, module in network.named_modules() if path}
    captured: dict[str, torch.Tensor] = {}
    for name in names:
        match = re.fullmatch(r"(.+?)(?:_(chmean|first4tokens))?", name)
        path, kind = match.group(1), match.group(2) or "full"
        if path not in modules:
            raise KeyError(f"debug tensor {name!r}: no sub-module {path!r} in {type(network).__name__}")

        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor, name: str = name, kind: str = kind) -> None:
            captured[name] = _debug_summary(kind, output)

        stack.enter_context(modules[path].register_forward_hook(hook))
    return captured


def _embedding_vector(name: str) -> Callable[[Vector], dict[str, Any]]:
    def run(vector: Vector) -> dict[str, Any]:
        source = vector.inputs["source"]
        size = 160 if name == "facenet" else 112
        embedder = FaceEmbedder(name, vector.twin(name, _filled(vector, name), (torch.zeros(1, 3, size, size),)))
        network = getattr(embedder.model, "net", embedder.model)
        # A twin has no sub-modules to hook: its debug intermediates are torch-only (TORCH_ONLY below).
        debug_names = [] if vector.on_twin else [key[len("debug."):] for key in vector.expected
                                                 if key.startswith("debug.")]
        model_io: dict[str, torch.Tensor] = {}

        def capture(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            model_io.update(resized=inputs[0], raw=output)

        with torch.no_grad(), ExitStack() as stack:
            debug = _hook_debug_outputs(network, debug_names, stack)
            stack.enter_context(embedder.model.register_forward_hook(capture))
            embedding = embedder(source)
        return {**model_io, "embedding": embedding, **{f"debug.{key}": value for key, value in debug.items()}}

    return run


def _output_size(vector: Vector) -> int:
    """The aligner's output_size from the json's call text (falling back to the expected image size)."""
    call = str(vector.meta.get("inputs", {}).get("call", ""))
    match = re.search(r"output_size\s*=\s*(\d+)", call)
    return int(match.group(1)) if match else int(vector.expected["aligned_x"].shape[-1])


def dfa_aligner_forward(vector: Vector) -> dict[str, Any]:
    aligner = _filled(vector, "cvlface_aligner")
    output_size = _output_size(vector)
    with torch.no_grad():
        preprocessed = aligner.preprocess(vector.inputs["x"])
        prediction = aligner.predict(preprocessed)
        outputs = aligner.postprocess(preprocessed, prediction.aggregated, output_size)
        # The public forward must be exactly the composition above.
        direct = aligner(vector.inputs["x"], output_size=output_size)
    for field, value in zip(outputs._fields, direct):
        if not torch.equal(getattr(outputs, field), value):
            raise AssertionError(f"forward() and preprocess/predict/postprocess disagree on {field}")
    return {
        **outputs._asdict(),
        "debug.preprocessed": preprocessed,
        "debug.bbox_regressions": prediction.bbox_regressions,
        "debug.class_softmax": torch.softmax(prediction.class_logits, dim=-1),
        "debug.landmark_regressions": prediction.landmark_regressions,
        "debug.aggregated": prediction.aggregated,
        "debug.priors": aligner.priors,
    }


VECTORS: dict[str, Callable[[Vector], Mapping[str, Any]]] = {
    **{f"embed_{name}": _embedding_vector(name) for name in
       ("arcface", "adaface", "cvl_arcface", "cvl_adaface", "cvl_vit", "facenet")},
    "dfa_aligner_forward": dfa_aligner_forward,
}


# The six embedding models also run on ONNX Runtime twins (``--runtime onnxruntime``); their ``debug.*``
# intermediates are not outputs of the exported network. The DFA aligner is not exported.
RUNTIME_VECTORS = frozenset(f"embed_{name}" for name in
                            ("arcface", "adaface", "cvl_arcface", "cvl_adaface", "cvl_vit", "facenet"))
TORCH_ONLY = {name: ("debug.",) for name in RUNTIME_VECTORS}
