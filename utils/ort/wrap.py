"""The seam between the stages and the runtimes: one call that returns the torch network or its ONNX Runtime twin."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from utils.errors import GhostError
from utils.ort.export import EXPORT_COMMAND, convert_to_fp16, export_network, file_sha256, onnx_path
from utils.ort.networks import interface_for
from utils.ort.options import RuntimeOptions
from utils.ort.session import OnnxNetwork, check_provider, open_session

logger = logging.getLogger(__name__)


def wrap_network(
    name: str,
    module: nn.Module,
    checkpoint_path: str | Path,
    example_inputs: Sequence[torch.Tensor],
    options: RuntimeOptions,
    device: str | torch.device,
) -> Callable[..., Any]:
    """``module`` itself for runtime torch; for onnxruntime its :class:`OnnxNetwork` twin on ``device``.

    ``name`` is the registry name (``retinaface``, ``ghostv2_generator``, ``gfpgan_v1_4``, ``cvl_vit``, ...),
    ``checkpoint_path`` the safetensors file ``module`` was loaded from: the ONNX file lives beside it
    (``X.onnx``, ``X.fp16.onnx``) and is exported from ``module`` on first use (``example_inputs``: what
    ``module.forward`` takes, any batch size). Raises OnnxFileError for a corrupt or stale file and
    ProviderNotInstalledError when the provider's package is missing, each as one line.
    """
    if options.runtime == "torch":
        return module
    check_provider(options)
    device = torch.device(device)
    checkpoint_path = Path(checkpoint_path)
    sha256 = file_sha256(checkpoint_path)
    path = onnx_path(checkpoint_path, options.onnx_fp16)
    if not path.is_file():
        fp32_path = onnx_path(checkpoint_path)
        if not fp32_path.is_file():
            logger.info("%s has no ONNX file yet; exporting it once to %s (`%s` does it ahead of time)",
                        name, fp32_path, EXPORT_COMMAND)
            _export_or_explain(name, module, example_inputs, checkpoint_path)
        if options.onnx_fp16:
            # The float32 file's metadata is checked before it is converted.
            open_session(fp32_path, RuntimeOptions("onnxruntime"), torch.device("cpu"), name, sha256)
            logger.info("writing the half-precision copy %s", path)
            convert_to_fp16(fp32_path, path)
    session = open_session(path, options, device, name, sha256)
    return OnnxNetwork(name, session, interface_for(name, module), device, options)


def _export_or_explain(name: str, module: nn.Module, example_inputs: Sequence[torch.Tensor], checkpoint: Path) -> None:
    try:
        export_network(name, module, example_inputs, checkpoint)
    except GhostError:
        raise
    except OSError as error:
        raise GhostError(f"cannot write the ONNX file of {name} beside {checkpoint}: {error.strerror or error}; "
                         f"run `{EXPORT_COMMAND} --weights_dir DIR` where it can write") from None
