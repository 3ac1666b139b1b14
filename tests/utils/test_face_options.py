"""The face-quality flags of inference.py: one per field, defaults that change nothing, one-line refusals."""
from __future__ import annotations

import dataclasses

import pytest

from utils.cli import make_parser, run_cli
from utils.inference.face_options import OPTION_CLASSES
from utils.inference.inference_arguments import add_inference_arguments, swap_options_from_arguments
from utils.inference.options import SwapOptions


def parser():  # noqa: ANN201 - an argparse parser
    built = make_parser("inference.py", "test")
    add_inference_arguments(built, "examples", "results")
    return built


def parse(argv: list[str]) -> SwapOptions:
    return swap_options_from_arguments(parser().parse_args(argv))


def test_every_face_field_has_a_flag_with_help() -> None:
    flags = {action.dest: action for action in parser()._actions}
    for options_class in OPTION_CLASSES:
        for item in dataclasses.fields(options_class):
            assert item.name in flags and flags[item.name].help, item.name


def test_defaults_leave_the_swap_as_it_was() -> None:
    options = parse([])
    defaults = SwapOptions()
    for options_class in OPTION_CLASSES:
        for item in dataclasses.fields(options_class):
            assert getattr(options, item.name) == getattr(defaults, item.name), item.name
    assert not (options.adds_face_mask or options.restores_expression or options.boosts_pixels)
    assert not options.uses_face_parser


def test_flags_reach_the_options() -> None:
    options = parse(["--face_mask_types", "box", "occlusion", "region", "--face_mask_padding", "5", "10",
                     "--face_mask_blur", "0.3", "--face_mask_regions", "lips", "nose", "--keep_target_mouth",
                     "--expression_restorer_factor", "80", "--expression_restorer_areas", "lower",
                     "--pixel_boost", "512"])
    assert options.face_mask_types == ("box", "occlusion", "region")
    assert options.face_mask_padding == (5, 10, 5, 10) and options.face_mask_blur == 0.3
    assert options.regions == ("lips", "nose") and options.keep_target_mouth
    assert options.expression_restorer_factor == 80 and options.expression_restorer_areas == ("lower",)
    assert options.tiles_per_side == 2 and options.boosts_pixels
    assert options.uses_face_parser and options.parses_swapped_face and options.needs_target_labels


@pytest.mark.parametrize("argv, message", [
    (["--face_mask_types", "region", "--face_mask_regions", "teeth"], "valid regions: skin, brows, eyes"),
    (["--face_mask_types", "box", "xseg"], "unknown --face_mask_types xseg; choose from box, occlusion, region"),
    (["--face_mask_regions", "nose"], "needs region in --face_mask_types"),
    (["--face_mask_types", "occlusion", "--face_mask_blur", "0.2"], "add box to --face_mask_types"),
    (["--pixel_boost", "300"], "multiple of 256"),
    (["--expression_restorer_factor", "120"], "between 0 and 100"),
    (["--expression_restorer_areas", "middle"], "choose from upper, lower"),
])
def test_bad_values_are_one_error_line(argv: list[str], message: str, capsys) -> None:
    assert run_cli(lambda: parse(argv)) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1
