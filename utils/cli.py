"""What every entry-point script shares: common flags and turning our errors into one line + exit code."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from models.registry import CHECKPOINTS, WEIGHTS_DIR_ENV
from utils.device import DEVICE_CHOICES_HELP
from utils.errors import GhostError

logger = logging.getLogger("ghostv2")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default (unless it is None or the help already gives it) and keeps line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, argparse.SUPPRESS) or action.option_strings == []:
            return text
        return text + " (default: %(default)s)"


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the project's help formatting."""
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--weights_dir``, which every CLI that runs a model takes."""
    parser.add_argument("--device", default="auto", help=f"compute device: {DEVICE_CHOICES_HELP}")
    parser.add_argument(
        "--weights_dir", default=None,
        help=f"folder holding the downloaded weights [default: ${WEIGHTS_DIR_ENV}, else weights/ beside the scripts]; "
        "explicit per-model path flags override it",
    )


def add_bool(parser: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    """A boolean flag with a ``--no-`` form (``--enhance_output`` / ``--no-enhance_output``)."""
    parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=default, help=help)


def add_option_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    options_class: type,
    helps: Mapping[str, str],
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> None:
    """One flag per entry of ``helps`` (field name -> help), with the dataclass field's default and type.

    Booleans get a ``--no-`` form; ``X | None`` fields take an X; a field without a default becomes a flag
    whose default is None (the caller supplies it). Defaults are thus written once, in the dataclass.
    """
    hints = typing.get_type_hints(options_class)
    defaults = {item.name: item.default for item in dataclasses.fields(options_class)}
    choices = choices or {}
    for name, text in helps.items():
        default = None if defaults[name] is dataclasses.MISSING else defaults[name]
        kind = hints[name]
        if kind is bool:
            add_bool(parser, name, default, text)
            continue
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        parser.add_argument(f"--{name}", type=kind, default=default, choices=choices.get(name), help=text)


def options_from_arguments(options_class: type, args: argparse.Namespace, **values: Any) -> Any:
    """An ``options_class`` built from the parsed flags whose names are its fields (``values`` override)."""
    names = {item.name for item in dataclasses.fields(options_class)}
    given = {name: value for name, value in vars(args).items() if name in names}
    return options_class(**{**given, **values})


def add_weight_path(parser: argparse.ArgumentParser, flag: str, checkpoint: str, help: str) -> None:
    """A per-model path flag whose default comes from the registry (resolved against --weights_dir later)."""
    parser.add_argument(f"--{flag}", default=None, help=f"{help} [default: <weights_dir>/{CHECKPOINTS[checkpoint].path}]")


# Our own loggers (module names, and "ghostv2" for the scripts) speak at INFO; libraries only at WARNING, and the
# Hugging Face libraries only at ERROR (their retry/advice chatter would hide our one-line error messages).
OWN_LOGGERS = ("ghostv2", "__main__", "models", "network", "utils")
# logger name -> the environment variable the library reads its verbosity from when first imported
QUIET_LIBRARIES = {"huggingface_hub": "HF_HUB_VERBOSITY", "transformers": "TRANSFORMERS_VERBOSITY",
                   "diffusers": "DIFFUSERS_VERBOSITY"}


def configure_logging(verbose: bool = False) -> None:
    """Log to stderr: INFO for the user's progress, DEBUG (every library included) with --verbose."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s", stream=sys.stderr)
    if verbose:
        return
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    for name, variable in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(logging.ERROR)
        # The libraries reset their logger level from this variable when first imported, which happens later.
        os.environ.setdefault(variable, "error")


def run_cli(function: Callable[[], int | None]) -> int:
    """Run a CLI body; our typed errors become one line on stderr and exit code 1 (no traceback)."""
    try:
        result = function()
    except GhostError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if result is None else int(result)
