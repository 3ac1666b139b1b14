"""Which runtime runs the networks, and how: one frozen record, each default written once (CLI flags come from it)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from utils.errors import GhostError

RUNTIMES = ("torch", "onnxruntime")


class Provider(NamedTuple):
    """An ONNX Runtime execution provider: its name in ONNX Runtime and the pip package that brings it."""

    ort_name: str
    package: str
    gpu: bool


# --execution_provider value -> provider. The CPU provider is always added after the chosen one, as ONNX Runtime's
# fallback for operators the accelerator lacks.
PROVIDERS: dict[str, Provider] = {
    "cpu": Provider("CPUExecutionProvider", "onnxruntime", gpu=False),
    "cuda": Provider("CUDAExecutionProvider", "onnxruntime-gpu", gpu=True),
    "tensorrt": Provider("TensorrtExecutionProvider", "onnxruntime-gpu (and TensorRT)", gpu=True),
    "coreml": Provider("CoreMLExecutionProvider", "onnxruntime (its macOS wheel)", gpu=True),
    "directml": Provider("DmlExecutionProvider", "onnxruntime-directml", gpu=True),
    "openvino": Provider("OpenVINOExecutionProvider", "onnxruntime-openvino", gpu=False),
    "rocm": Provider("ROCMExecutionProvider", "onnxruntime-rocm", gpu=True),
}

RUNTIME_HELP = {
    "runtime": "what runs the networks: torch, or ONNX Runtime on files exported beside the weights "
               "(exported on first use; see export_onnx.py)",
    "execution_provider": "ONNX Runtime execution provider (with --runtime onnxruntime); GPU providers need "
                          "requirements-onnx-gpu.txt",
    "threads": "ONNX Runtime intra-op threads per network [default: ONNX Runtime's choice, one per physical core]",
    "onnx_fp16": "run the half-precision ONNX files (.fp16.onnx; GPU providers only)",
    "tensorrt_cache_dir": "folder where the TensorRT provider keeps its built engines [default: tensorrt_cache/ "
                          "beside each ONNX file]",
}
RUNTIME_CHOICES = {"runtime": RUNTIMES, "execution_provider": tuple(PROVIDERS)}


@dataclass(frozen=True)
class RuntimeOptions:
    """How the networks of a run are executed: torch eager, or ONNX Runtime with one execution provider."""

    runtime: str = "torch"
    execution_provider: str = "cpu"
    threads: int | None = None
    onnx_fp16: bool = False
    tensorrt_cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise GhostError(f"unknown runtime {self.runtime!r}; choose one of {', '.join(RUNTIMES)}")
        if self.execution_provider not in PROVIDERS:
            raise GhostError(
                f"unknown execution provider {self.execution_provider!r}; choose one of {', '.join(PROVIDERS)}"
            )
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise GhostError(f"--threads must be a positive number of threads, got {self.threads!r}")
        if self.onnx_fp16 and not PROVIDERS[self.execution_provider].gpu:
            raise GhostError(
                f"--onnx_fp16 is for GPU execution providers; the {self.execution_provider} provider runs float32 files"
            )
        if self.runtime == "torch" and (self.execution_provider != "cpu" or self.onnx_fp16):
            raise GhostError("--execution_provider and --onnx_fp16 apply to --runtime onnxruntime only")

    @property
    def provider(self) -> Provider:
        return PROVIDERS[self.execution_provider]

    @property
    def measured_only(self) -> bool:
        """Whether this runtime cannot hold float32 tolerances (fp16 files, TensorRT's own kernels): its error is
        measured and reported, never checked against the fp32 tolerance."""
        return self.onnx_fp16 or self.execution_provider == "tensorrt"

    def label(self) -> str:
        """Short name for reports: ``torch``, ``onnxruntime:cpu``, ``onnxruntime:cuda:fp16``."""
        if self.runtime == "torch":
            return "torch"
        return f"onnxruntime:{self.execution_provider}" + (":fp16" if self.onnx_fp16 else "")
