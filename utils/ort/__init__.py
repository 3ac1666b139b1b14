"""ONNX Runtime engine: export of the inference networks, sessions, and the twin that the stages call like a module.

Ground floor for the inference stages (``models/`` does not import it). The seam:

* :class:`RuntimeOptions` (``--runtime``, ``--execution_provider``, ``--threads``, ``--onnx_fp16``,
  ``--tensorrt_cache_dir``; helps in ``RUNTIME_HELP``, choices in ``RUNTIME_CHOICES``);
* :func:`wrap_network` returns the torch module or its :class:`OnnxNetwork` twin;
* :func:`export_network` / :func:`export_registry_networks` write the ONNX files (``export_onnx.py``).
"""
from utils.ort.export import EXPORTER_VERSION, convert_to_fp16, export_network, onnx_path
from utils.ort.options import PROVIDERS, RUNTIME_CHOICES, RUNTIME_HELP, RUNTIMES, RuntimeOptions
from utils.ort.registry_export import export_registry_networks
from utils.ort.session import OnnxFileError, OnnxNetwork, ProviderNotInstalledError, is_twin
from utils.ort.wrap import wrap_network

__all__ = [
    "EXPORTER_VERSION", "PROVIDERS", "RUNTIMES", "RUNTIME_CHOICES", "RUNTIME_HELP", "OnnxFileError", "OnnxNetwork",
    "ProviderNotInstalledError", "RuntimeOptions", "convert_to_fp16", "export_network", "export_registry_networks",
    "is_twin", "onnx_path", "wrap_network",
]
