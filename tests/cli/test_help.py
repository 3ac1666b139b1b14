"""Every flag of every user-facing CLI is explained by --help (checked on the parsers the scripts build)."""
from __future__ import annotations

import argparse
import importlib

import pytest

import utils.cli

SCRIPTS = ("inference", "demo", "align", "convert", "embedding_distance", "evaluate", "train", "preprocess_laion",
           "preprocess_lagenda", "download_weights", "webui", "export_onnx", "live")


def parser_of(script: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[
    argparse.ArgumentParser, str
]:
    """The parser ``script.main`` builds, caught on its way through ``make_parser``, and the --help text."""
    module = importlib.import_module(script)
    built: list[argparse.ArgumentParser] = []

    def recording_make_parser(prog: str, description: str) -> argparse.ArgumentParser:
        built.append(utils.cli.make_parser(prog, description))
        return built[-1]

    monkeypatch.setattr(module, "make_parser", recording_make_parser)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    return built[0], capsys.readouterr().out


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_has_a_help_text(script: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    parser, text = parser_of(script, monkeypatch, capsys)
    assert text.startswith(f"usage: {script}.py")
    assert "Examples:" in text
    flags = [action for action in parser._actions if action.option_strings]
    assert len(flags) > 3
    for action in flags:
        assert action.help and len(action.help.strip()) >= 8, f"{script}.py {action.option_strings} has no help"
        assert action.option_strings[0] in text


@pytest.mark.parametrize(
    "script", ["inference", "demo", "align", "embedding_distance", "train", "preprocess_laion", "preprocess_lagenda",
               "webui"]
)
def test_model_clis_take_device_and_weights_dir(script: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    parser, _ = parser_of(script, monkeypatch, capsys)
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert {"--device", "--weights_dir"} <= flags


def test_inference_booleans_have_no_forms(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    parser, _ = parser_of("inference", monkeypatch, capsys)
    flags = {flag for action in parser._actions for flag in action.option_strings}
    for name in ("enhance_output", "inpaint_output", "align_corners", "debug", "debug_ghost_landmarks"):
        assert {f"--{name}", f"--no-{name}"} <= flags
