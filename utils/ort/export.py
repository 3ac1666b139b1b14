"""Exporting a network to an ONNX file beside its checkpoint, with metadata that ties the file to that checkpoint.

Export: ``torch.onnx.export(..., dynamo=True, optimize=False)`` at opset 18, then only constant folding. The
exporter's own optimiser (``optimize=True``) also applies onnxscript's "x + 0 -> x" rewrite, which counts any
constant within 1e-8 of zero as zero: it deletes GFPGAN's ``+ 1e-8`` inside the demodulation rsqrt and the style
normalisation. With the stand-in weights a demodulation sum of squares is about 1e-3, so dropping the epsilon
moves each StyleConv by 5e-6 relative and the restored face by 2.5e-4, 25 times the kit's tolerance. ONNX Runtime's
own graph optimisation (on in every session) does the fusions instead, and it only removes exact zeros.

Metadata (``ghostv2.*`` keys): the exporter version, the source checkpoint's SHA-256, the network name, the
precision, the output structure and the export settings. A file whose version or SHA-256 differs is refused.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from utils.ort.networks import FlatOutputs, Interface, StructureRecord, interface_for

logger = logging.getLogger(__name__)

# Bump whenever an export would produce a different graph: files written by another version are refused.
EXPORTER_VERSION = "ghostv2-onnx-1"
OPSET = 18
EXPORT_COMMAND = "python export_onnx.py"
META_EXPORTER = "ghostv2.exporter"
META_SHA256 = "ghostv2.source_sha256"
META_SOURCE = "ghostv2.source_file"
META_NETWORK = "ghostv2.network"
META_PRECISION = "ghostv2.precision"
META_OUTPUTS = "ghostv2.outputs"
META_SETTINGS = "ghostv2.export_settings"


def onnx_path(checkpoint_path: str | Path, fp16: bool = False) -> Path:
    """The ONNX file of a checkpoint: ``X.safetensors`` -> ``X.onnx`` (``X.fp16.onnx`` for half precision)."""
    checkpoint_path = Path(checkpoint_path)
    return checkpoint_path.with_name(checkpoint_path.stem + (".fp16.onnx" if fp16 else ".onnx"))


def export_command(name: str, weights_hint: str = "") -> str:
    """The command that (re-)exports one network."""
    return f"{EXPORT_COMMAND} --models {name} --force{weights_hint}"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (hex), cached per path, size and modification time."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def export_settings(interface: Interface) -> dict:
    """The settings an export records in its metadata."""
    import onnxscript

    return {
        "exporter": "torch.onnx.export(dynamo=True, optimize=False) + onnxscript constant folding",
        "opset": OPSET,
        "torch": torch.__version__,
        "onnxscript": onnxscript.__version__,
        "inputs": list(interface.inputs),
        "dynamic_axes": {name: {str(axis): label for axis, label in axes.items()}
                         for name, axes in interface.dynamic.items()},
    }


def _dynamic_shapes(interface: Interface) -> tuple[dict[int, object], ...]:
    # Dim.AUTO lets torch.export find the constraints itself (BiSeNet's sides are multiples of 32, the generator's two
    # batches are equal); :func:`_check_dynamic` then makes sure each axis really stayed dynamic.
    return tuple({axis: torch.export.Dim.AUTO for axis in interface.dynamic.get(name, {})} for name in interface.inputs)


def _check_dynamic(name: str, program: object, interface: Interface) -> None:
    """Raise when the exporter fixed an axis that should stay dynamic (the file would refuse other sizes)."""
    for value in program.model.graph.inputs:
        for axis in interface.dynamic.get(value.name, {}):
            if isinstance(value.shape[axis], int):
                raise RuntimeError(f"the export of {name} fixed axis {axis} of input {value.name} "
                                   f"to {value.shape[axis]}")


def export_network(
    name: str,
    module: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    checkpoint_path: str | Path,
    destination: str | Path | None = None,
) -> Path:
    """Export a loaded network (float32) to ``destination`` (default: :func:`onnx_path` of the checkpoint).

    ``example_inputs`` are the tensors ``module.forward`` takes (any batch; dynamic axes follow
    :func:`utils.ort.networks.interface_for`). The file is written atomically; returns its path.
    """
    import onnxscript.optimizer

    destination = Path(destination) if destination else onnx_path(checkpoint_path)
    interface = interface_for(name, module)
    module = module.eval()
    if any(tensor.device.type != "cpu" for tensor in module.state_dict().values()):
        module = _cpu_copy(module)
    inputs = interface.export_inputs(module, [tensor.detach().float().cpu() for tensor in example_inputs])
    record = StructureRecord()
    wrapper = FlatOutputs(interface.export_module(module), record).eval()
    logger.info("exporting %s to %s", name, destination)
    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(
            # FlatOutputs.forward takes *inputs: its one argument is the tuple of inputs.
            wrapper, inputs, dynamo=True, optimize=False, opset_version=OPSET, verbose=False,
            input_names=list(interface.inputs), dynamic_shapes=(_dynamic_shapes(interface),),
        )
    _check_dynamic(name, program, interface)
    if record.structure is None:
        raise RuntimeError(f"the export of {name} did not trace its forward")
    with _quiet_exporter():
        onnxscript.optimizer.fold_constants(program.model)
        onnxscript.optimizer.remove_unused_nodes(program.model)
    metadata = {
        META_EXPORTER: EXPORTER_VERSION,
        META_SHA256: file_sha256(checkpoint_path),
        META_SOURCE: Path(checkpoint_path).name,
        META_NETWORK: name,
        META_PRECISION: "fp32",
        META_OUTPUTS: json.dumps(record.structure),
        META_SETTINGS: json.dumps(export_settings(interface)),
    }
    program.model.metadata_props.update(metadata)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    program.save(str(partial))
    os.replace(partial, destination)
    return destination


def convert_to_fp16(source: str | Path, destination: str | Path | None = None) -> Path:
    """Write the half-precision copy of an exported float32 file (inputs and outputs stay float32)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = Path(source)
    destination = Path(destination) if destination else source.with_name(source.stem + ".fp16.onnx")
    model = onnx.load(str(source))
    # keep_io_types: callers hand float32 tensors on both runtimes; the casts sit inside the graph.
    half = convert_float_to_float16(model, keep_io_types=True)
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    metadata[META_PRECISION] = "fp16"
    settings = json.loads(metadata.get(META_SETTINGS, "{}"))
    settings["fp16"] = "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)"
    metadata[META_SETTINGS] = json.dumps(settings)
    del half.metadata_props[:]
    for key, value in metadata.items():
        half.metadata_props.add(key=key, value=value)
    partial = destination.with_name(f".{destination.name}.partial")
    onnx.save(half, str(partial))
    os.replace(partial, destination)
    return destination


# torch.export logs the guards it tried and dropped at ERROR level ("Error while creating guard") even when the export
# succeeds; a real failure raises. They are shown with --verbose (root logger at DEBUG) only.
_EXPORTER_LOGGERS = ("torch._guards", "torch.fx.experimental.symbolic_shapes", "torch.export", "torch.onnx",
                     "torch._dynamo", "onnxscript", "onnx_ir")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    saved = {name: logging.getLogger(name).level for name in _EXPORTER_LOGGERS}
    try:
        for name in _EXPORTER_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _cpu_copy(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).cpu()
