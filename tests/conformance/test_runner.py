"""The conformance runner itself: tolerance parsing, comparison, skipping of reference bugs, MISSING reports."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.conformance.__main__ import main as conformance_main
from tests.conformance.runner import (
    EXACT,
    Tolerance,
    Vector,
    check_vector,
    compare,
    parse_tolerance,
    tolerance_from_meta,
)


def test_parse_tolerance_texts() -> None:
    assert parse_tolerance("exact") == EXACT
    assert parse_tolerance(1e-5) == Tolerance(relative=1e-5)
    assert parse_tolerance("absolute 0.0002 (the float32 reference ...)") == Tolerance(absolute=2e-4)
    assert parse_tolerance("relative 2e-4 (network output ...)") == Tolerance(relative=2e-4)
    assert parse_tolerance("1e-5 * max(1, max|expected|)") == Tolerance(relative=1e-5)
    assert parse_tolerance("max|out-expected| <= 1e-5*max(1,max|expected|) per tensor") == Tolerance(relative=1e-5)
    assert parse_tolerance("something else") is None


def test_tolerance_from_meta_prefers_per_tensor_entries() -> None:
    meta = {"recommended_tolerance": {"Y": "absolute 0.0002", "all_other_tensors": "1e-5 * max(1, max|expected|)"}}
    assert tolerance_from_meta(meta, "Y") == Tolerance(absolute=2e-4)
    assert tolerance_from_meta(meta, "attr0") == Tolerance(relative=1e-5)
    meta = {"recommended_tolerance": {"rule": "relative", "per_tensor": {"cv2_tfms": 2e-4}, "all_tensors": 1e-5}}
    assert tolerance_from_meta(meta, "cv2_tfms") == Tolerance(relative=2e-4)
    assert tolerance_from_meta({"tolerance": "exact"}, "image") == EXACT
    assert tolerance_from_meta({}, "x") == Tolerance(relative=1e-5)


def test_compare_scales_with_the_expected_magnitude() -> None:
    expected = torch.tensor([1000.0, -2.0])
    assert compare("x", expected + 0.009, expected, Tolerance(relative=1e-5))[1] is None
    assert compare("x", expected + 0.011, expected, Tolerance(relative=1e-5))[1] is not None
    assert "shape" in compare("x", torch.zeros(3), expected, EXACT)[1]
    assert compare("x", torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([1, 3], dtype=torch.uint8), EXACT)[1]


def _vector(tmp_path: Path, meta: dict) -> Vector:
    folder = tmp_path / "fam"
    folder.mkdir(exist_ok=True)
    save_file({"input.x": torch.ones(2), "expected.y": torch.full((2,), 2.0)}, str(folder / "v.safetensors"))
    (folder / "v.json").write_text(json.dumps(meta))
    return Vector("fam", "v", folder, meta)


class _Checker:
    VECTORS = {"v": lambda vector: {"y": vector.inputs["x"] * 2}}


class _WrongChecker:
    VECTORS = {"v": lambda vector: {"y": vector.inputs["x"] * 3}}


def test_check_vector_pass_fail_missing_skip(tmp_path: Path) -> None:
    vector = _vector(tmp_path, {"fill_seed": 0})
    assert check_vector(vector, [_Checker]).status == "PASS"
    assert check_vector(vector, [_WrongChecker]).status == "FAIL"
    assert check_vector(vector, []).status == "MISSING"
    superseded = _vector(tmp_path, {"superseded_by": "v_fixed"})
    assert check_vector(superseded, [_Checker]).status == "SKIP"


def test_cli_reports_missing_families_and_fails(tmp_path: Path, capsys) -> None:
    _vector(tmp_path, {"fill_seed": 0})
    assert conformance_main([str(tmp_path)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("MISSING fam/v")
    assert lines[-1] == "0 passed, 1 failed"


def test_noise_limited_vectors_are_excused_only_for_generator_outputs() -> None:
    from tests.conformance.families import noise_limited_reason

    generator_only = ["gen.logits_center: max error 0.001 > 0.0006 (rel 1e-05)", "variants_bgr: max error 2 > 1"]
    assert noise_limited_reason("liveportrait", "lp_retarget_e2e", generator_only)
    assert noise_limited_reason("liveportrait", "lp_retarget_e2e", [*generator_only, "x_s: max error 1 > 1e-5"]) is None
    assert noise_limited_reason("liveportrait", "lp_retarget_e2e", ["Traceback (most recent call last): ..."]) is None
    assert noise_limited_reason("liveportrait", "lp_warping_module", ["out_center: max error 1 > 1e-5"]) is None
    assert noise_limited_reason("network", "lp_spade_generator", ["image_center: max error 1 > 1e-5"]) is None
