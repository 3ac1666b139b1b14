"""Reading safetensors checkpoints, loading them strictly into modules, releasing their mapped pages.

Only safetensors is ever read: pickled checkpoints can run arbitrary code, so they are refused.
"""
from __future__ import annotations

import ctypes
import itertools
import json
import mmap
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from utils.errors import CheckpointFormatError, CheckpointMismatchError

StateDict = dict[str, torch.Tensor]
PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")
_MADV_DONTNEED = 4  # <sys/mman.h> on Linux
# /proc/self/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
_PAGE_PRESENT, _PAGE_SWAPPED, _PAGE_FILE = np.uint64(1 << 63), np.uint64(1 << 62), np.uint64(1 << 61)


def _check_safetensors_header(path: Path) -> None:
    """Fail early, with a readable reason, on files that are not (complete) safetensors files."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointFormatError(path, "the file is empty (an interrupted download?); delete it and download again")
    with path.open("rb") as handle:
        head = handle.read(8)
        if head.startswith(PICKLE_MAGIC):
            raise CheckpointFormatError(
                path, "this is a pickled PyTorch checkpoint, not safetensors; only .safetensors files are loaded"
            )
        if len(head) < 8:
            raise CheckpointFormatError(path, "the file is too short to be a safetensors file")
        (header_size,) = struct.unpack("<Q", head)
        if header_size > size - 8:
            raise CheckpointFormatError(path, "not a safetensors file, or truncated (header larger than the file)")
        try:
            header = json.loads(handle.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointFormatError(path, "not a safetensors file (its header is not valid JSON)") from None
    data_end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    if 8 + header_size + data_end > size:
        raise CheckpointFormatError(
            path, f"the file is truncated ({size} bytes, {8 + header_size + data_end} expected); download it again"
        )


def read_state_dict(path: str | Path) -> StateDict:
    """Read every tensor of a safetensors file on the CPU, with clear errors for bad files."""
    path = Path(path)
    _check_safetensors_header(path)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointFormatError(path, str(error)) from None


def write_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Write tensors as safetensors (contiguous CPU copies), creating the parent folder.

    The file appears atomically (written beside it, then renamed), so an interrupted write never leaves a
    truncated checkpoint under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in state_dict.items()}
    partial = path.with_name(f".{path.name}.partial")
    save_file(tensors, str(partial))
    partial.replace(path)


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """Remove a leading ``prefix`` from every key that starts with it."""
    return {(key[len(prefix):] if key.startswith(prefix) else key): value for key, value in state_dict.items()}


def compare_state_dicts(
    expected: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    optional_suffixes: Iterable[str] = (),
) -> tuple[list[str], list[str], list[str]]:
    """Return (missing, unexpected, wrong-shape) key lists of ``given`` against ``expected``."""
    optional = tuple(optional_suffixes)
    missing = [key for key in expected if key not in given and not (optional and key.endswith(optional))]
    unexpected = [key for key in given if key not in expected]
    wrong_shape = [
        f"{key} (file {tuple(given[key].shape)}, model {tuple(expected[key].shape)})"
        for key in expected
        if key in given and tuple(given[key].shape) != tuple(expected[key].shape)
    ]
    return missing, unexpected, wrong_shape


def load_into_module(
    module: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    expected: str,
    path: Path | None = None,
    optional_suffixes: Iterable[str] = (),
    describe: Callable[[Mapping[str, torch.Tensor]], str] | None = None,
) -> torch.nn.Module:
    """Load ``state_dict`` strictly into ``module``; raise CheckpointMismatchError listing bad keys.

    A module built on the meta device (see :func:`build_on_meta`) takes the file's tensors themselves
    (``assign=True``, cast to the module's dtypes): nothing is initialised or copied. Keys ending in one of
    ``optional_suffixes`` (e.g. ``num_batches_tracked``) may be absent from the file; a real module keeps
    its own value for them, a meta one gets zeros (BatchNorm's initial count). ``describe`` names what a
    mismatching file holds.
    """
    own = module.state_dict()
    missing, unexpected, wrong_shape = compare_state_dicts(own, state_dict, optional_suffixes)
    if missing or unexpected or wrong_shape:
        detail = ""
        if describe is not None:
            try:
                detail = f"the file holds {describe(state_dict)}"
            except Exception:  # noqa: BLE001 - describing is best effort, the key lists are the message
                detail = ""
        raise CheckpointMismatchError(path, expected, missing, unexpected, wrong_shape, detail)
    if not meta_tensor_names(module):
        complete = dict(state_dict)
        for key, value in own.items():
            complete.setdefault(key, value)
        module.load_state_dict(complete, strict=True)
        return module
    complete = {
        key: state_dict[key].to(target.dtype) if key in state_dict else torch.zeros(target.shape, dtype=target.dtype)
        for key, target in own.items()
    }
    module.load_state_dict(complete, strict=True, assign=True)
    _compute_constant_buffers(module)
    left = meta_tensor_names(module)
    if left:
        raise RuntimeError(f"{type(module).__name__} still holds meta tensors after loading: {', '.join(left)}")
    return module


def build_on_meta(builder: Callable[..., torch.nn.Module], *args: object, **kwargs: object) -> torch.nn.Module:
    """``builder(*args, **kwargs)`` on the meta device: shapes only, no memory, no random initialisation.

    Load it with :func:`load_into_module`. A module with non-persistent buffers must offer
    ``constant_buffers() -> {name: tensor}`` so that they can be computed for real after loading.
    """
    with torch.device("meta"):
        return builder(*args, **kwargs)


def meta_tensor_names(module: torch.nn.Module) -> list[str]:
    """Names of the parameters, buffers and plain tensor attributes of ``module`` still on the meta device."""
    names = []
    for prefix, submodule in module.named_modules():
        owned = {**submodule._parameters, **submodule._buffers}
        owned.update((name, value) for name, value in vars(submodule).items() if isinstance(value, torch.Tensor))
        names += [f"{prefix}.{name}" if prefix else name for name, value in owned.items()
                  if value is not None and value.is_meta]
    return names


def _compute_constant_buffers(module: torch.nn.Module) -> None:
    """Replace meta non-persistent buffers (never in a file) with the values their module computes."""
    for prefix, submodule in module.named_modules():
        pending = [name for name in submodule._non_persistent_buffers_set
                   if submodule._buffers.get(name) is not None and submodule._buffers[name].is_meta]
        if not pending:
            continue
        compute = getattr(submodule, "constant_buffers", None)
        if compute is None:
            raise TypeError(f"{type(submodule).__name__} ({prefix or 'the root module'}) has non-persistent buffers "
                            f"{pending} but no constant_buffers() to compute them after loading on the meta device")
        for name, value in compute().items():
            submodule._buffers[name] = value


def _safetensors_mappings() -> list[tuple[int, int]]:
    """(start, end) addresses of this process's private mappings of .safetensors files."""
    regions = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[1].endswith("p") and fields[5].rstrip("\n").endswith(".safetensors"):
                start, end = (int(address, 16) for address in fields[0].split("-"))
                regions.append((start, end))
    return regions


def _page_flags(start: int, end: int) -> np.ndarray:
    """The pagemap entry of every page in [start, end) (page-aligned addresses)."""
    with open("/proc/self/pagemap", "rb") as pagemap:
        pagemap.seek(start // mmap.PAGESIZE * 8)
        return np.frombuffer(pagemap.read((end - start) // mmap.PAGESIZE * 8), dtype="<u8")


def resident_mapped_bytes(module: torch.nn.Module) -> int:
    """Bytes of ``module``'s memory-mapped checkpoint pages that this process holds in memory (Linux; else 0)."""
    return sum(int(((_page_flags(start, end) & _PAGE_PRESENT) != 0).sum()) * mmap.PAGESIZE
               for start, end in _mappings_of(module))


def _mappings_of(module: torch.nn.Module) -> list[tuple[int, int]]:
    if not sys.platform.startswith("linux"):
        return []
    pointers = [tensor.data_ptr() for tensor in itertools.chain(module.parameters(), module.buffers())
                if tensor.device.type == "cpu"]
    return [(start, end) for start, end in _safetensors_mappings() if any(start <= p < end for p in pointers)]


def release_weight_pages(module: torch.nn.Module) -> int:
    """Drop from this process's memory the pages of ``module``'s memory-mapped weights; return the bytes released.

    For a pipeline that runs its models one after another, so that it holds one model's weights at a time: the
    pages stay in the kernel's page cache and the next forward maps them again (about 0.1 s per GB). A mapping
    with a page written in place (copied on write, e.g. by an optimiser) is left alone, so no value ever
    changes; call it while nothing writes the weights. Weights on another device, or not memory-mapped, are untouched (returns 0; also off Linux).
    """
    released = 0
    for start, end in _mappings_of(module):
        flags = _page_flags(start, end)
        present, swapped, from_file = ((flags & bit) != 0 for bit in (_PAGE_PRESENT, _PAGE_SWAPPED, _PAGE_FILE))
        # A present page not backed by the file, or a swapped one, is a private copy: dropping it would lose it.
        if (present & ~from_file).any() or swapped.any():
            continue
        if ctypes.CDLL(None).madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED) == 0:
            released += int(present.sum()) * mmap.PAGESIZE
    return released
