"""Device selection: auto picks what exists; explicit devices that do not exist are clear errors."""
from __future__ import annotations

import pytest
import torch

from utils.device import autocast, resolve_device, use_fp16
from utils.errors import GhostError


def test_auto_and_cpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_missing_cuda_is_a_clear_error() -> None:
    with pytest.raises(GhostError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_unknown_device() -> None:
    with pytest.raises(GhostError, match="unknown device"):
        resolve_device("tpu-ish")


def test_fp16_only_on_cuda() -> None:
    cpu = torch.device("cpu")
    assert not use_fp16(cpu, True)
    with autocast(cpu, fp16=True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
