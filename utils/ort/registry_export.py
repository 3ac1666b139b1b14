"""Export every inference network of the registry to ONNX files beside their checkpoints (``export_onnx.py``)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from models.registry import CHECKPOINTS, checkpoint_path, load_model
from utils.errors import GhostError
from utils.ort.export import convert_to_fp16, export_network, onnx_path
from utils.ort.networks import EXPORTABLE, example_inputs
from utils.ort.options import RuntimeOptions
from utils.ort.session import OnnxFileError, open_session

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """What happened to one network: ``exported``, ``up to date`` or ``skipped`` (with the reason)."""

    name: str
    status: str
    paths: tuple[Path, ...] = ()
    reason: str = ""


def export_registry_networks(
    weights_dir: str | Path | None = None,
    names: Sequence[str] | None = None,
    fp16: bool = False,
    force: bool = False,
) -> list[ExportResult]:
    """Export the registry networks ``names`` (default: every exportable one whose checkpoint is present).

    A file that is already there and matches its checkpoint is kept unless ``force``; a stale or corrupt one
    is replaced. ``fp16`` also writes the half-precision copies. A network named explicitly whose checkpoint
    is missing raises the registry's WeightsNotFoundError.
    """
    explicit = names is not None
    results = []
    for name in names or EXPORTABLE:
        if name not in EXPORTABLE:
            raise GhostError(f"no ONNX export for {name!r}; choose from {', '.join(EXPORTABLE)}")
        checkpoint = checkpoint_path(name, weights_dir)
        if not checkpoint.is_file() and not explicit:
            script = CHECKPOINTS[name].download_script
            results.append(ExportResult(name, "skipped", reason=f"no checkpoint {checkpoint} (bash {script})"))
            continue
        results.append(_export_one(name, checkpoint, weights_dir, fp16, force))
    return results


def _export_one(name: str, checkpoint: Path, weights_dir: str | Path | None, fp16: bool, force: bool) -> ExportResult:
    from utils.ort.export import file_sha256

    target = onnx_path(checkpoint)
    if not force and target.is_file() and (not fp16 or onnx_path(checkpoint, True).is_file()):
        try:
            for path in (target, onnx_path(checkpoint, True)) if fp16 else (target,):
                open_session(path, RuntimeOptions("onnxruntime"), _cpu(), name, file_sha256(checkpoint))
            return ExportResult(name, "up to date", (target,))
        except OnnxFileError as error:
            logger.info("%s: %s; exporting it again", name, error)
    module = load_model(name, weights_dir=weights_dir, path=checkpoint)
    paths = [export_network(name, module, example_inputs(name), checkpoint, target)]
    if fp16:
        paths.append(convert_to_fp16(target, onnx_path(checkpoint, True)))
    return ExportResult(name, "exported", tuple(paths))


def _cpu():
    import torch

    return torch.device("cpu")
