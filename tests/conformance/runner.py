"""Conformance runner: checks manifests and vectors of a kit folder against our implementation.

A kit folder holds one sub-folder per model family, each with ``manifest_*.json`` files and vector
pairs ``<name>.json`` + ``<name>.safetensors``. Each family has a checker module
(``tests/conformance/families/<family>*.py``) that exposes:

* ``MANIFESTS: dict[str, Callable[[dict], Mapping[str, tuple[tuple[int, ...], str]]]]`` — manifest file stem →
  function returning our file layout ``{key: (shape, dtype)}`` for that checkpoint (given the manifest);
* ``VECTORS: dict[str, Callable[[Vector], Mapping[str, Any]]]`` — vector name → function computing our
  outputs, keyed like the vector's ``expected.*`` tensors (without the ``expected.`` prefix). A value can be a
  tensor/array, or a :class:`Checked` to set its own tolerance.

Seeds, shapes, settings and tolerances are always read from the vector's ``.json``.

Runtimes: with a :class:`utils.ort.RuntimeOptions` of runtime ``onnxruntime``, only the vectors a family lists in
``RUNTIME_VECTORS`` run, and their networks are the ONNX Runtime twins that :meth:`Vector.twin` exports from the
kit's stand-in weights (``TORCH_ONLY`` lists the expected tensors that are not outputs of an exported network, e.g.
``debug.*`` intermediates; they are not compared). The tolerance is the kit's, unchanged. A runtime that cannot
hold float32 tolerances (fp16 files, TensorRT) gets status MEASURED with its error, never a looser check.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KIT = REPO_ROOT.parent / "shared" / "conformance"
KIT_ENV = "GHOSTV2_CONFORMANCE_KIT"
DEFAULT_RELATIVE = 1e-5


def default_kit() -> Path:
    """The kit folder: $GHOSTV2_CONFORMANCE_KIT, else ../shared/conformance beside the repository."""
    env = os.environ.get(KIT_ENV)
    return Path(env) if env else DEFAULT_KIT


@dataclass(frozen=True)
class Tolerance:
    """Pass when ``max|ours - expected| <= absolute + relative * max(1, max|expected|)``."""

    absolute: float = 0.0
    relative: float = 0.0

    def bound(self, expected: torch.Tensor) -> float:
        scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
        return self.absolute + self.relative * scale

    def __str__(self) -> str:
        if self.absolute == 0 and self.relative == 0:
            return "exact"
        if self.relative == 0:
            return f"abs {self.absolute:g}"
        if self.absolute == 0:
            return f"rel {self.relative:g}"
        return f"abs {self.absolute:g} + rel {self.relative:g}"


EXACT = Tolerance()
RELATIVE_1E5 = Tolerance(relative=DEFAULT_RELATIVE)


@dataclass
class Checked:
    """An output with an explicit tolerance chosen by the family checker (from the vector's json)."""

    value: Any
    tolerance: Tolerance


def parse_tolerance(text: Any) -> Tolerance | None:
    """Read one tolerance entry of a json: a number (relative), 'exact', 'absolute X', 'relative X', '1e-5 * max(...)'."""
    if isinstance(text, (int, float)):
        return Tolerance(relative=float(text))
    if not isinstance(text, str):
        return None
    lowered = text.strip().lower()
    if lowered.startswith("exact"):
        return EXACT
    number = r"([0-9.]+(?:e-?[0-9]+)?)"
    match = re.match(rf"abs(?:olute)?\s+{number}", lowered)
    if match:
        return Tolerance(absolute=float(match.group(1)))
    match = re.match(rf"rel(?:ative)?\s*:?\s*{number}", lowered)
    if match:
        return Tolerance(relative=float(match.group(1)))
    match = re.match(rf"{number}\s*\*\s*max\(1", lowered)
    if match:
        return Tolerance(relative=float(match.group(1)))
    match = re.search(rf"max\|out\s*-\s*expected\|\s*<=\s*{number}\s*\*\s*max\(1", lowered)
    if match:
        return Tolerance(relative=float(match.group(1)))
    return None


def tolerance_from_meta(meta: Mapping[str, Any], name: str) -> Tolerance:
    """The tolerance a vector's json gives for one expected tensor (default: 1e-5 relative)."""
    recommended = meta.get("recommended_tolerance")
    if isinstance(recommended, Mapping):
        per_tensor = recommended.get("per_tensor", {})
        for candidate in (per_tensor.get(name), recommended.get(name)):
            parsed = parse_tolerance(candidate)
            if parsed is not None:
                return parsed
        for key in ("all_other_tensors", "all_tensors", "all"):
            parsed = parse_tolerance(recommended.get(key))
            if parsed is not None:
                return parsed
    parsed = parse_tolerance(meta.get("tolerance"))
    return parsed if parsed is not None else RELATIVE_1E5


@dataclass
class Vector:
    """One vector: its json (``meta``), inputs (cloned, see the kit READMEs) and expected tensors."""

    family: str
    name: str
    folder: Path
    meta: dict
    runtime: Any = None  # utils.ort.RuntimeOptions; None = torch
    onnx_dir: Path | None = None

    @property
    def on_twin(self) -> bool:
        """Whether the networks of this check run on ONNX Runtime twins."""
        return self.runtime is not None and self.runtime.runtime != "torch"

    def twin(self, name: str, module: torch.nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Any:
        """``module`` (filled, eval) itself under torch; else its ONNX Runtime twin (registry network ``name``).

        The twin is exported from a safetensors copy of the module's weights in ``onnx_dir``; a file already there
        with the same weights (its SHA-256 in the ONNX metadata) is reused.
        """
        if not self.on_twin:
            return module
        from utils.ort import wrap_network

        state = {key: value.detach().contiguous() for key, value in module.state_dict().items()}
        layout = ";".join(f"{key}:{tuple(value.shape)}" for key, value in state.items())
        stem = f"{name}-{hashlib.sha256(layout.encode()).hexdigest()[:12]}-seed{self.meta.get('fill_seed', 0)}"
        checkpoint = Path(self.onnx_dir or ".") / f"{stem}.safetensors"
        if not checkpoint.is_file():
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            save_file(state, str(checkpoint))
        return wrap_network(name, module, checkpoint, example_inputs, self.runtime, "cpu")

    @cached_property
    def tensors(self) -> dict[str, torch.Tensor]:
        # Cloning gives 64-byte aligned storage, which the kit found necessary for bit-exact CPU kernels.
        return {key: value.clone() for key, value in load_file(str(self.folder / f"{self.name}.safetensors")).items()}

    @property
    def inputs(self) -> dict[str, torch.Tensor]:
        return {key[len("input."):]: value for key, value in self.tensors.items() if key.startswith("input.")}

    @property
    def expected(self) -> dict[str, torch.Tensor]:
        return {key[len("expected."):]: value for key, value in self.tensors.items() if key.startswith("expected.")}

    @property
    def kit_dir(self) -> Path:
        return self.folder.parent

    def fill(self, module: torch.nn.Module, seed: int | None = None) -> torch.nn.Module:
        """Fill a module with the kit's deterministic stand-in weights (seed from the json by default)."""
        return load_fill(self.kit_dir).fill_module(module, self.meta["fill_seed"] if seed is None else seed)


@dataclass
class Outcome:
    """Result of one manifest or vector check."""

    family: str
    name: str
    status: str  # PASS, FAIL, MISSING, SKIP
    max_error: float | None = None
    detail: str = ""
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    runtime: str | None = None  # the runtime column (``onnxruntime:cpu``), absent for plain torch runs

    def line(self) -> str:
        error = "" if self.max_error is None else f" max_err={self.max_error:.3g}"
        detail = f" {self.detail}" if self.detail else ""
        column = f" {self.runtime:24s}" if self.runtime else ""
        return f"{self.status:7s}{column} {self.family}/{self.name}{error}{detail} ({self.seconds:.1f}s)"


_FILL_CACHE: dict[Path, Any] = {}


def load_fill(kit_dir: Path):
    """Import the kit's ``fill.py`` (stand-in weight recipe) from the kit folder."""
    kit_dir = Path(kit_dir).resolve()
    if kit_dir not in _FILL_CACHE:
        spec = importlib.util.spec_from_file_location("_ghostv2_kit_fill", kit_dir / "fill.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _FILL_CACHE[kit_dir] = module
    return _FILL_CACHE[kit_dir]


def family_checkers(family: str) -> list[Any]:
    """Checker modules of a family: ``families/<family>.py`` and ``families/<family>_*.py``."""
    package = importlib.import_module("tests.conformance.families")
    names = sorted(
        info.name for info in pkgutil.iter_modules(package.__path__)
        if info.name == family or info.name.startswith(family + "_")
    )
    return [importlib.import_module(f"tests.conformance.families.{name}") for name in names]


def _lookup(checkers: list[Any], table: str, key: str) -> Callable | None:
    for checker in checkers:
        function = getattr(checker, table, {}).get(key)
        if function is not None:
            return function
    return None


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return torch.as_tensor(value)


def compare(name: str, ours: Any, expected: torch.Tensor, tolerance: Tolerance) -> tuple[float, str | None]:
    """Compare one tensor; return (max error, failure reason or None)."""
    ours_tensor = _as_tensor(ours)
    if tuple(ours_tensor.shape) != tuple(expected.shape):
        return float("inf"), f"{name}: shape {tuple(ours_tensor.shape)} != expected {tuple(expected.shape)}"
    if expected.numel() == 0:
        return 0.0, None
    if expected.dtype == torch.bool or ours_tensor.dtype == torch.bool:
        ours_tensor, expected = ours_tensor.to(torch.int64), expected.to(torch.int64)
    difference = (ours_tensor.to(torch.float64) - expected.to(torch.float64)).abs()
    if torch.isnan(difference).any():
        nan_mismatch = torch.isnan(ours_tensor.to(torch.float64)) != torch.isnan(expected.to(torch.float64))
        if nan_mismatch.any():
            return float("nan"), f"{name}: NaN where expected is finite (or the reverse)"
        difference = torch.nan_to_num(difference, nan=0.0)
    error = float(difference.max())
    bound = tolerance.bound(expected.to(torch.float64))
    if error > bound:
        return error, f"{name}: max error {error:.3g} > {bound:.3g} ({tolerance})"
    return error, None


def check_vector(vector: Vector, checkers: list[Any]) -> Outcome:
    """Run one vector through its family checker and compare every expected tensor."""
    start = time.perf_counter()
    reason = vector.meta.get("superseded_by") or vector.meta.get("reference_bug_only")
    if reason:
        label = "superseded by " + reason if vector.meta.get("superseded_by") else reason
        return Outcome(vector.family, vector.name, "SKIP", detail=f"(reference bug: {label})")
    function = _lookup(checkers, "VECTORS", vector.name)
    if function is None:
        return Outcome(vector.family, vector.name, "MISSING", detail="(no implementation registered)")
    measure_only = vector.on_twin and vector.runtime.measured_only
    try:
        outputs = dict(function(vector))
    except Exception as error:  # noqa: BLE001 - a crash is reported as the vector's failure
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        return Outcome(vector.family, vector.name, "FAIL", detail=f"raised {detail.splitlines()[0]}",
                       seconds=time.perf_counter() - start, failures=[traceback.format_exc()],
                       runtime=vector.runtime.label() if vector.on_twin else None)
    failures, worst, measured, skipped = [], 0.0, [], []
    torch_only = _lookup_torch_only(checkers, vector.name) if vector.on_twin else ()
    for name, expected in vector.expected.items():
        if torch_only and name.startswith(torch_only):
            skipped.append(name)
            continue
        if name not in outputs:
            failures.append(f"{name}: not produced")
            continue
        value = outputs[name]
        tolerance = value.tolerance if isinstance(value, Checked) else tolerance_from_meta(vector.meta, name)
        ours = value.value if isinstance(value, Checked) else value
        error, failure = compare(name, ours, expected, tolerance)
        worst = max(worst, error) if error == error else float("nan")
        if failure and measure_only and not failure.startswith(f"{name}: shape"):
            measured.append(f"{name} {error:.3g}")
        elif failure:
            failures.append(failure)
    runtime = vector.runtime.label() if vector.on_twin else None
    status = "FAIL" if failures else "MEASURED" if measure_only else "PASS"
    detail = "" if not failures else "; ".join(failures[:3]) + (" ..." if len(failures) > 3 else "")
    if status == "MEASURED":
        detail = "(error per tensor, fp32 tolerance not applied: " + (", ".join(measured) or "all within it") + ")"
    if skipped and not failures:
        detail = (detail + " " if detail else "") + f"({len(skipped)} torch-only tensors not compared)"
    return Outcome(vector.family, vector.name, status, worst, detail, time.perf_counter() - start, failures, runtime)


def _lookup_torch_only(checkers: list[Any], name: str) -> tuple[str, ...]:
    for checker in checkers:
        prefixes = getattr(checker, "TORCH_ONLY", {}).get(name)
        if prefixes:
            return tuple(prefixes)
    return ()


def runs_on(checkers: list[Any], name: str, runtime: Any) -> bool:
    """Whether vector ``name`` is checked under ``runtime``: every vector under torch, network vectors otherwise."""
    if runtime is None or runtime.runtime == "torch":
        return True
    return any(name in getattr(checker, "RUNTIME_VECTORS", ()) for checker in checkers)


def manifest_layout(manifest: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """The ``{key: (shape, dtype)}`` a manifest lists."""
    return {key: (tuple(shape), dtype) for key, (shape, dtype) in manifest["keys"].items()}


def module_layout(module: torch.nn.Module) -> dict[str, tuple[tuple[int, ...], str]]:
    """The ``{key: (shape, dtype)}`` of a module's ``state_dict()`` (works on the meta device)."""
    return {key: (tuple(value.shape), str(value.dtype).replace("torch.", "")) for key, value in module.state_dict().items()}


def check_manifest(family: str, path: Path, checkers: list[Any]) -> Outcome:
    """Compare a manifest's keys, shapes and dtypes with our module's file layout (exactly)."""
    start = time.perf_counter()
    stem = path.stem
    function = _lookup(checkers, "MANIFESTS", stem)
    if function is None:
        return Outcome(family, path.name, "MISSING", detail="(no module registered)")
    manifest = json.loads(path.read_text())
    try:
        ours = dict(function(manifest))
    except Exception as error:  # noqa: BLE001
        return Outcome(family, path.name, "FAIL", detail=f"raised {type(error).__name__}: {error}",
                       seconds=time.perf_counter() - start, failures=[traceback.format_exc()])
    theirs = manifest_layout(manifest)
    failures = [f"missing in ours: {key}" for key in theirs if key not in ours]
    failures += [f"not in manifest: {key}" for key in ours if key not in theirs]
    failures += [
        f"{key}: ours {ours[key]} != manifest {theirs[key]}"
        for key in theirs if key in ours and ours[key] != theirs[key]
    ]
    if not failures and list(ours) != list(theirs):
        failures.append("same keys but in another order than the manifest")
    status = "FAIL" if failures else "PASS"
    detail = f"({len(theirs)} keys)" if not failures else f"{len(failures)} problems: " + "; ".join(failures[:3])
    return Outcome(family, path.name, status, None, detail, time.perf_counter() - start, failures)


def discover(kit_dir: Path, family: str | None = None) -> Iterator[tuple[str, str, Path]]:
    """Yield (family, kind, path) for every manifest (kind 'manifest') and vector json (kind 'vector')."""
    kit_dir = Path(kit_dir)
    for folder in sorted(p for p in kit_dir.iterdir() if p.is_dir()):
        if family is not None and folder.name != family:
            continue
        for path in sorted(folder.glob("*.json")):
            kind = "manifest" if path.name.startswith("manifest_") else "vector"
            yield folder.name, kind, path


def run_one(family: str, kind: str, path: Path, runtime: Any = None, onnx_dir: Path | None = None) -> Outcome | None:
    """Check one manifest or vector (importing the family's checker modules).

    Under an ONNX Runtime ``runtime`` (utils.ort.RuntimeOptions), manifests and vectors without a network are not
    checked (None); the twins are exported into ``onnx_dir``.
    """
    try:
        checkers = family_checkers(family)
    except ImportError as error:
        return Outcome(family, path.stem, "MISSING", detail=f"(family checker not importable: {error})")
    on_twin = runtime is not None and runtime.runtime != "torch"
    if kind == "manifest":
        return None if on_twin else check_manifest(family, path, checkers)
    if not runs_on(checkers, path.stem, runtime):
        return None
    meta = json.loads(path.read_text())
    vector = Vector(family, path.stem, path.parent, meta, runtime if on_twin else None, onnx_dir)
    return check_vector(vector, checkers)
