"""The "advanced" panel: one widget per option of inference.py, built from the options dataclasses and their help.

Nothing is written twice: each widget's kind comes from the field's type, its choices and help from the tables
inference.py's flags are built from (OPTION_HELP, CHOICES, VIDEO_HELP, the selection flags), and its value from
the start-up options (webui.py's flags, whose defaults are the dataclasses').
"""
from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from utils.errors import GhostError
from utils.inference.face_options import CHOICES as FACE_CHOICES
from utils.inference.face_options import PANEL_HELP as FACE_HELP
from utils.inference.inference_arguments import (
    CHOICES,
    OPTION_HELP,
    VIDEO_HELP,
    add_selection_arguments,
)
from utils.inference.options import SwapOptions
from utils.inference.selection import FaceSelection
from utils.inference.video import VideoOptions

# Chosen by clicking faces in the page, not typed in the panel.
PICKED_IN_PAGE = ("source_face_index", "target_face_index")
UNSET = ""  # what an empty text box or the "default" choice stands for (the field's None)


def field_type(options_class: type, name: str) -> tuple[type, bool]:
    """A dataclass field's value type and whether it may be None (``str | None`` -> (str, True))."""
    kind = typing.get_type_hints(options_class)[name]
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        arguments = typing.get_args(kind)
        return next(argument for argument in arguments if argument is not type(None)), type(None) in arguments
    return kind, False


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: the page keys its widgets by group
class OptionGroup:
    """Panel widgets for some fields of an options dataclass (``helps``: field name -> help, in panel order)."""

    title: str
    options_class: type
    helps: Mapping[str, str]
    choices: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def build(self, options: Any) -> list[Any]:
        """Gradio widgets showing ``options``' values, in ``helps`` order; call inside a Blocks."""
        import gradio as gr

        widgets = []
        for name, help_text in self.helps.items():
            kind, optional = field_type(self.options_class, name)
            value = getattr(options, name)
            common = {"label": name, "info": help_text, "elem_id": f"option_{name}"}
            if kind is bool:
                widgets.append(gr.Checkbox(value=value, **common))
            elif typing.get_origin(kind) is tuple and name in self.choices:
                widgets.append(gr.Dropdown(choices=list(self.choices[name]), value=list(value), multiselect=True,
                                           **common))
            elif typing.get_origin(kind) is tuple:  # numbers separated by spaces
                widgets.append(gr.Textbox(value=" ".join(f"{item:g}" for item in value), **common))
            elif name in self.choices:
                choices = [(str(choice), choice) for choice in self.choices[name]]
                if optional:
                    choices.insert(0, ("default", UNSET))
                widgets.append(gr.Dropdown(choices=choices, value=UNSET if value is None else value, **common))
            elif kind in (int, float) and not optional:
                widgets.append(gr.Number(value=value, precision=0 if kind is int else None, **common))
            else:  # text, and numbers that may be unset: Gradio's Number sends 0 for an empty box, not None
                widgets.append(gr.Textbox(value=UNSET if value is None else str(value), **common))
        return widgets

    def changes(self, values: Sequence[Any]) -> dict[str, Any]:
        """The fields set by the widgets' values (in ``helps`` order); blanks become None."""
        changes = {}
        for name, value in zip(self.helps, values, strict=True):
            kind, optional = field_type(self.options_class, name)
            if value is None or (isinstance(value, str) and value.strip() == UNSET):
                if not optional:
                    raise GhostError(f"the advanced option {name} needs a value")
                changes[name] = None
            elif typing.get_origin(kind) is tuple:
                changes[name] = _tuple_value(name, kind, value)
            else:
                try:
                    changes[name] = kind(value.strip() if isinstance(value, str) else value)
                except ValueError as error:
                    wanted = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
                    raise GhostError(f"the advanced option {name} needs {wanted}, not {value!r}") from error
        return changes


def _tuple_value(name: str, kind: Any, value: Any) -> tuple:
    """A tuple field's value from a multiple choice (a list) or a text box of space-separated items."""
    element = typing.get_args(kind)[0]
    items = value.split() if isinstance(value, str) else list(value)
    try:
        return tuple(element(item) for item in items)
    except ValueError as error:
        wanted = {int: "whole numbers", float: "numbers"}.get(element, element.__name__)
        raise GhostError(f"the advanced option {name} needs {wanted} separated by spaces, not {value!r}") from error


def selection_help(names: Sequence[str]) -> dict[str, str]:
    """The help of inference.py's face-selection flags ``names`` (read from the parser they are built into)."""
    parser = argparse.ArgumentParser()
    add_selection_arguments(parser)
    helps = {action.dest: action.help for action in parser._actions}
    return {name: helps[name] for name in names}


MODEL_OPTIONS = OptionGroup("Model options", SwapOptions,
                            {name: text for name, text in OPTION_HELP.items() if name not in PICKED_IN_PAGE}, CHOICES)
VIDEO_OPTIONS = OptionGroup("Video options", VideoOptions, VIDEO_HELP)
FACE_OPTIONS = OptionGroup("Face masks, mouth, expression, pixel boost", SwapOptions, FACE_HELP, FACE_CHOICES)
SELECTION_OPTIONS = OptionGroup("Reference faces", FaceSelection, selection_help(["similarity_th"]))
