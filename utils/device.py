"""Choosing the compute device and precision."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from utils.errors import GhostError

DEVICE_CHOICES_HELP = "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a ``--device`` value into a torch.device, checking that it exists on this machine."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GhostError(f"unknown device {name!r}; use {DEVICE_CHOICES_HELP}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GhostError(f"device {name!r} was asked for but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GhostError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s) found")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise GhostError("device 'mps' was asked for but MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise GhostError(f"unsupported device {name!r}; use {DEVICE_CHOICES_HELP}")
    return device


def module_device(model: torch.nn.Module) -> torch.device:
    """The device a network computes on: its ``device`` attribute when it has one (ONNX Runtime twins, which hold no
    parameters), else the device of its first parameter."""
    device = getattr(model, "device", None)
    return torch.device(device) if device is not None else next(model.parameters()).device


def use_fp16(device: torch.device, requested: bool) -> bool:
    """fp16 autocast is only used on CUDA; elsewhere the request is ignored (float32)."""
    return bool(requested) and device.type == "cuda"


@contextlib.contextmanager
def autocast(device: torch.device, fp16: bool) -> Iterator[None]:
    """float16 autocast on CUDA when ``fp16`` holds, otherwise plain float32."""
    if use_fp16(device, fp16):
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            yield
    else:
        yield
