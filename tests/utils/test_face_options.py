"""utils.inference.face_options: one flag per face-quality field, defaults that change nothing, one-line refusals."""
from __future__ import annotations

import dataclasses

import pytest

from utils.cli import make_parser, run_cli
from utils.inference.face_options import (
    OPTION_CLASSES,
    FaceOptions,
    add_face_option_arguments,
    face_options_from_arguments,
)


def parse(argv: list[str]) -> FaceOptions:
    parser = make_parser("test", "face options")
    add_face_option_arguments(parser)
    return face_options_from_arguments(parser.parse_args(argv))


def test_every_field_has_a_flag_with_help() -> None:
    parser = make_parser("test", "face options")
    add_face_option_arguments(parser)
    flags = {action.dest: action for action in parser._actions}
    for options_class in OPTION_CLASSES:
        for item in dataclasses.fields(options_class):
            assert item.name in flags and flags[item.name].help, item.name


def test_defaults_leave_the_swap_as_it_was() -> None:
    options = parse([])
    assert options == FaceOptions() and not options.active


def test_flags_reach_the_records() -> None:
    options = parse(["--face_mask_types", "box", "occlusion", "region", "--face_mask_padding", "5", "10",
                     "--face_mask_blur", "0.3", "--face_mask_regions", "lips", "nose", "--keep_target_mouth",
                     "--expression_restorer_factor", "80", "--expression_restorer_areas", "lower",
                     "--pixel_boost", "512"])
    assert options.masks.face_mask_types == ("box", "occlusion", "region")
    assert options.masks.face_mask_padding == (5, 10, 5, 10) and options.masks.face_mask_blur == 0.3
    assert options.masks.regions == ("lips", "nose") and options.masks.keep_target_mouth
    assert options.expression.expression_restorer_factor == 80
    assert options.expression.expression_restorer_areas == ("lower",)
    assert options.pixel_boost.tiles_per_side == 2 and options.active
    assert FaceOptions.from_values(**options.values()) == options


@pytest.mark.parametrize("argv, message", [
    (["--face_mask_types", "region", "--face_mask_regions", "teeth"], "valid regions: skin, brows, eyes"),
    (["--face_mask_regions", "nose"], "needs region in --face_mask_types"),
    (["--face_mask_types", "occlusion", "--face_mask_blur", "0.2"], "add box to --face_mask_types"),
    (["--pixel_boost", "300"], "multiple of 256"),
    (["--expression_restorer_factor", "120"], "between 0 and 100"),
])
def test_bad_values_are_one_error_line(argv: list[str], message: str, capsys) -> None:
    assert run_cli(lambda: parse(argv)) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_unknown_flat_names_are_refused() -> None:
    with pytest.raises(TypeError, match="face_mask_colour"):
        FaceOptions.from_values(face_mask_colour=1)
