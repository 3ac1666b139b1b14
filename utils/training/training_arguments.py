"""train.py's flags, built from the TrainingConfig fields, and the configuration files they can come from.

``--config FILE.yaml`` (repeatable, merged in order) holds the same keys as the flags; the flags given on the
command line override the files wherever they stand, and ``--ckpt_path`` starts from the configuration saved in
that checkpoint. ``--print_config`` prints the resolved configuration (valid as a ``--config`` file) and exits.
jsonargparse does the reading, merging, type checks and printing.
"""
from __future__ import annotations

import argparse
import logging
import types
import typing
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter, Namespace

from utils.cli import HelpFormatter
from utils.errors import GhostError
from utils.training.config import TrainingConfig

logger = logging.getLogger(__name__)

CONFIG_FLAG = "--config"
PRINT_CONFIG_FLAG = "--print_config"
# Resuming never takes these from the checkpoint's saved configuration.
NOT_RESUMED = frozenset({"ckpt_path"})
_TYPE_HINTS = typing.get_type_hints(TrainingConfig)


class TrainingConfigError(GhostError):
    """A configuration file, flag or checkpoint configuration that cannot be used (one line, names key or file)."""


class TrainingHelpFormatter(HelpFormatter, DefaultHelpFormatter):
    """The project's help layout (defaults shown, description line breaks kept) on jsonargparse's formatter."""


class ConfigFileAction(ActionConfigFile):
    """``--config FILE``: jsonargparse's config-file action whose errors name the file."""

    def __call__(self, parser: ArgumentParser, cfg: Namespace, values: Any, option_string: str | None = None) -> None:
        try:
            super().__call__(parser, cfg, values, option_string)
            # Checked now, not once every source is merged, so that an unknown key is reported with its file.
            parser.validate(cfg)
        except (argparse.ArgumentError, TypeError, KeyError, ValueError) as error:
            message = " ".join(str(error).split())
            if str(values) not in message:
                message = f"{CONFIG_FLAG} {values}: {message}"
            raise TrainingConfigError(message) from None


def make_parser(prog: str, description: str) -> ArgumentParser:
    """An empty jsonargparse parser with the project's help formatting that raises instead of exiting on errors."""
    # Unambiguous prefixes keep working as with argparse (--no-laion, the original's name of --no-laion_faces).
    return ArgumentParser(
        prog=prog, description=description, formatter_class=TrainingHelpFormatter, exit_on_error=False,
        allow_abbrev=True,
    )


def _argument_type(hint: Any) -> Any:
    # argparse wants a callable type; typing.Union is one, the ``X | None`` form is not (jsonargparse reads both).
    return typing.Union[typing.get_args(hint)] if isinstance(hint, types.UnionType) else hint  # noqa: UP007


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add ``--config``, one flag per TrainingConfig field (in its help group) and ``--verbose`` to ``parser``.

    Booleans get a ``--no-`` form. ``parser`` defaults to a new :func:`make_parser` one (config files need
    jsonargparse; any argparse parser takes the flags).
    """
    parser = parser or make_parser("train.py", "Train GhostV2.")
    parser.add_argument(
        CONFIG_FLAG, action=ConfigFileAction,
        help="YAML file of options (the flag names as keys, see configs/); repeat to merge several in order; "
        "flags given on the command line override them",
    )
    groups: dict[str, Any] = {}
    for option in fields(TrainingConfig):
        metadata = dict(option.metadata)
        title = metadata.pop("group")
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        hint = _TYPE_HINTS[option.name]
        if hint is bool:
            metadata["action"] = argparse.BooleanOptionalAction
        else:
            metadata["type"] = _argument_type(hint)
        groups[title].add_argument(f"--{option.name}", default=option.default, **metadata)
    parser.add_argument("--verbose", action="store_true", help="log more")
    return parser


def _is_config_flag(argument: str) -> bool:
    return argument == CONFIG_FLAG or argument.startswith(f"{CONFIG_FLAG}=")


def configs_first(argv: Sequence[str]) -> list[str]:
    """``argv`` with every ``--config FILE`` moved to the front (in order), so that flags override the files."""
    configs: list[str] = []
    others: list[str] = []
    position = 0
    while position < len(argv):
        argument = argv[position]
        if argument == CONFIG_FLAG and position + 1 < len(argv):
            configs += argv[position:position + 2]
            position += 2
            continue
        (configs if _is_config_flag(argument) else others).append(argument)
        position += 1
    return configs + others


def saved_configuration(ckpt_path: str | Path) -> dict[str, Any]:
    """The training options saved in a Lightning checkpoint written by train.py (``hyper_parameters``).

    Only keys that are TrainingConfig fields (``ckpt_path`` excepted) are returned; others are ignored with a
    warning. The file is memory-mapped, so reading it does not load the weights.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise TrainingConfigError(f"--ckpt_path {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is reported the same way
        raise TrainingConfigError(f"cannot read --ckpt_path {path}: {str(error).splitlines()[0]}") from None
    saved = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    if not saved:
        logger.warning("--ckpt_path %s holds no saved training configuration; using the flags and files only", path)
    options = {option.name for option in fields(TrainingConfig)}
    ignored = sorted(set(saved) - options)
    if ignored:
        logger.warning("ignoring options of %s that train.py does not know: %s", path, ", ".join(ignored))
    return {key: value for key, value in saved.items() if key in options - NOT_RESUMED}


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> Any:
    try:
        return parser.parse_args(argv)
    except argparse.ArgumentError as error:
        raise TrainingConfigError(" ".join(str(error).split())) from None


def parse_training_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[TrainingConfig, bool]:
    """The (TrainingConfig, verbose) that ``argv`` asks for; errors raise TrainingConfigError with one line.

    Later sources win: defaults, the configuration saved in --ckpt_path's checkpoint (it becomes ``parser``'s
    defaults), the --config files in order, the other flags. ``--print_config`` prints the result and exits.
    """
    arguments = configs_first(argv)
    # A first pass finds --ckpt_path (a flag or a config key) without printing anything.
    first = _parse(parser, [argument for argument in arguments if not argument.startswith(PRINT_CONFIG_FLAG)])
    if first.ckpt_path:
        saved = saved_configuration(first.ckpt_path)
        try:
            parser.set_defaults(**saved)
        except (KeyError, TypeError, ValueError) as error:
            raise TrainingConfigError(f"--ckpt_path {first.ckpt_path}: saved configuration: {error}") from None
    options = vars(_parse(parser, arguments))
    options.pop("config", None)
    verbose = options.pop("verbose")
    return TrainingConfig(**options), verbose


def config_to_yaml(config: TrainingConfig) -> str:
    """The resolved configuration as YAML that ``--config`` reads back (what ``--print_config`` prints)."""
    return build_parser().dump(Namespace(**config.as_dict(), verbose=False), skip_unset=False)
