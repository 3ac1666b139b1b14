"""ONNX Runtime sessions and the twin that stands in for a torch network: same call, same outputs, same device.

Sessions: graph optimisation on (ORT_ENABLE_ALL), intra-op threads from ``RuntimeOptions.threads``, the chosen
execution provider with the CPU provider as fallback. On CUDA (and TensorRT) the twin binds the torch tensors'
device memory as the graph's inputs and outputs (IO binding), so frames stay on the GPU between stages.
TensorRT keeps its engines in a cache folder.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from utils.errors import GhostError
from utils.ort.export import (
    EXPORTER_VERSION,
    META_EXPORTER,
    META_NETWORK,
    META_OUTPUTS,
    META_SHA256,
    export_command,
)
from utils.ort.networks import Interface, rebuild
from utils.ort.options import PROVIDERS, RuntimeOptions

logger = logging.getLogger(__name__)

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_TORCH_TYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16}


class OnnxFileError(GhostError):
    """An ONNX file that cannot be used: corrupt, or exported from another checkpoint or by another exporter."""


class ProviderNotInstalledError(GhostError):
    """The requested execution provider is not in the installed onnxruntime package."""


def check_provider(options: RuntimeOptions) -> None:
    """Raise one line naming the pip package when the provider of ``options`` is not installed."""
    try:
        import onnxruntime
    except ImportError:
        raise ProviderNotInstalledError("--runtime onnxruntime needs the onnxruntime package: "
                                        "pip install -r requirements.txt") from None
    provider = options.provider
    if provider.ort_name not in onnxruntime.get_available_providers():
        raise ProviderNotInstalledError(
            f"the {options.execution_provider} execution provider is not installed: pip install {provider.package} "
            f"(in place of onnxruntime; see requirements-onnx-gpu.txt)"
        )


def provider_list(options: RuntimeOptions, path: Path, device: torch.device) -> list[Any]:
    """The session's providers: the chosen one (with its options), then the CPU provider."""
    provider = options.provider
    settings: dict[str, Any] = {}
    if options.execution_provider in ("cuda", "tensorrt", "rocm") and device.type == "cuda":
        settings["device_id"] = device.index or 0
    if options.execution_provider == "tensorrt":
        cache = Path(options.tensorrt_cache_dir) if options.tensorrt_cache_dir else path.parent / "tensorrt_cache"
        cache.mkdir(parents=True, exist_ok=True)
        settings.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache),
                        trt_fp16_enable=options.onnx_fp16)
    providers: list[Any] = [(provider.ort_name, settings)] if settings else [provider.ort_name]
    if provider.ort_name != PROVIDERS["cpu"].ort_name:
        if options.execution_provider == "tensorrt":
            providers.append(("CUDAExecutionProvider", {"device_id": settings.get("device_id", 0)}))
        providers.append(PROVIDERS["cpu"].ort_name)
    return providers


def open_session(path: Path, options: RuntimeOptions, device: torch.device, name: str, sha256: str | None) -> Any:
    """An InferenceSession on ``path``, after checking its metadata against the checkpoint's SHA-256.

    A corrupt file, another checkpoint's file or another exporter's file is one OnnxFileError line naming the
    export command.
    """
    import onnxruntime

    check_provider(options)
    session_options = onnxruntime.SessionOptions()
    session_options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if options.threads:
        session_options.intra_op_num_threads = options.threads
        session_options.inter_op_num_threads = 1
    session_options.log_severity_level = 3  # errors only: its warnings (e.g. nodes placed on the CPU) are not ours
    command = export_command(name)
    try:
        providers = provider_list(options, path, device)
        session = onnxruntime.InferenceSession(str(path), session_options, providers=providers)
    except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own types for every kind of bad file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OnnxFileError(f"cannot read ONNX file {path} ({reason[:200]}); export it again: {command}") from None
    metadata = session.get_modelmeta().custom_metadata_map
    version = metadata.get(META_EXPORTER)
    if version != EXPORTER_VERSION:
        raise OnnxFileError(f"ONNX file {path} was written by exporter {version or 'unknown'} (this version reads "
                            f"{EXPORTER_VERSION}); export it again: {command}")
    if sha256 is not None and metadata.get(META_SHA256) != sha256:
        raise OnnxFileError(f"ONNX file {path} was exported from another checkpoint (its SHA-256 differs); "
                            f"export it again: {command}")
    if metadata.get(META_NETWORK, name) != name:
        raise OnnxFileError(f"ONNX file {path} holds {metadata[META_NETWORK]}, not {name}; export it again: {command}")
    return session


class OnnxNetwork(nn.Module):
    """The ONNX Runtime twin of a torch network: called with the same tensors, returns the same structure.

    Inputs may be on the CPU or on ``device``; outputs come back on ``device`` as float32 tensors. It holds no
    parameters: ``device`` says where it computes (see :func:`utils.device.module_device`).
    """

    def __init__(self, name: str, session: Any, interface: Interface, device: torch.device,
                 options: RuntimeOptions) -> None:
        super().__init__()
        self.name = name
        self.session = session
        self.interface = interface
        self.device = torch.device(device)
        self.options = options
        self.structure = json.loads(session.get_modelmeta().custom_metadata_map[META_OUTPUTS])
        self.input_names = [entry.name for entry in session.get_inputs()]
        self.outputs = session.get_outputs()
        self.bind = self.device.type == "cuda" and options.execution_provider in ("cuda", "tensorrt")
        self._output_shapes: dict[tuple, list[tuple[int, ...]]] = {}

    def extra_repr(self) -> str:
        return f"{self.name}, {self.options.label()}, device={self.device}"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        feeds = self.interface.feeds(args, kwargs)
        if self.interface.per_sample and feeds[0].shape[0] != 1:
            samples = [self._run([tensor[index:index + 1] for tensor in feeds]) for index in range(feeds[0].shape[0])]
            return rebuild(self.structure, [torch.cat(parts) for parts in zip(*samples)])
        return rebuild(self.structure, self._run(feeds))

    def _run(self, feeds: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The graph's flat outputs, on ``device``."""
        if self.bind:
            return self._run_bound([tensor.detach().to(self.device, torch.float32).contiguous() for tensor in feeds])
        arrays = {name: tensor.detach().to("cpu", torch.float32).contiguous().numpy()
                  for name, tensor in zip(self.input_names, feeds)}
        return [torch.from_numpy(array).to(self.device) for array in self.session.run(None, arrays)]

    def _run_bound(self, feeds: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Run with inputs and outputs in torch's CUDA memory (no host round trip)."""
        index = self.device.index or 0
        binding = self.session.io_binding()
        for name, tensor in zip(self.input_names, feeds):
            binding.bind_input(name, "cuda", index, np.float32, tuple(tensor.shape), tensor.data_ptr())
        key = tuple(tuple(tensor.shape) for tensor in feeds)
        if key not in self._output_shapes:
            # The first call of each input shape learns the output shapes from ONNX Runtime's own allocation.
            for output in self.outputs:
                binding.bind_output(output.name, "cuda", index)
            torch.cuda.current_stream(self.device).synchronize()
            self.session.run_with_iobinding(binding)
            self._output_shapes[key] = [tuple(value.shape()) for value in binding.get_outputs()]
            binding.clear_binding_outputs()
        results = []
        for output, shape in zip(self.outputs, self._output_shapes[key]):
            tensor = torch.empty(shape, dtype=_TORCH_TYPES[output.type], device=self.device)
            binding.bind_output(output.name, "cuda", index, _NUMPY_TYPES[output.type], shape, tensor.data_ptr())
            results.append(tensor)
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return [tensor.float() for tensor in results]


def is_twin(network: Callable[..., Any]) -> bool:
    """Whether ``network`` is an ONNX Runtime twin (it has no parameters to move, train or release)."""
    return isinstance(network, OnnxNetwork)
