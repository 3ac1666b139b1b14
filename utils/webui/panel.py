"""The "advanced" panel: one widget per inference.py model option, built from SwapOptions, OPTION_HELP and CHOICES.

Nothing is written twice: each widget's kind comes from the field's type, its choices from CHOICES, its help
from OPTION_HELP, and its value from the start-up options (webui.py's flags, whose defaults are SwapOptions').
"""
from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from utils.errors import GhostError
from utils.inference.inference_arguments import CHOICES, OPTION_HELP
from utils.inference.options import SwapOptions

# Chosen by clicking a face in the page, not typed in the panel.
PICKED_IN_PAGE = ("source_face_index", "target_face_index")
PANEL_FIELDS = tuple(name for name in OPTION_HELP if name not in PICKED_IN_PAGE)
UNSET = ""  # what an empty text box or the "default" choice stands for (the field's None)


def field_type(name: str) -> tuple[type, bool]:
    """A SwapOptions field's value type and whether it may be None (``str | None`` -> (str, True))."""
    kind = typing.get_type_hints(SwapOptions)[name]
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        arguments = typing.get_args(kind)
        return next(argument for argument in arguments if argument is not type(None)), type(None) in arguments
    return kind, False


def build_panel(options: SwapOptions) -> list[Any]:
    """Gradio widgets for PANEL_FIELDS (in that order), showing ``options``' values; call inside a Blocks."""
    import gradio as gr

    widgets = []
    for name in PANEL_FIELDS:
        kind, optional = field_type(name)
        value = getattr(options, name)
        common = {"label": name, "info": OPTION_HELP[name], "elem_id": f"option_{name}"}
        if kind is bool:
            widgets.append(gr.Checkbox(value=value, **common))
        elif name in CHOICES:
            choices = [(choice, choice) for choice in CHOICES[name]]
            if optional:
                choices.insert(0, ("default", UNSET))
            widgets.append(gr.Dropdown(choices=choices, value=UNSET if value is None else value, **common))
        elif kind in (int, float):
            widgets.append(gr.Number(value=value, precision=0 if kind is int else None, **common))
        else:
            widgets.append(gr.Textbox(value=UNSET if value is None else str(value), **common))
    return widgets


def panel_changes(values: Sequence[Any]) -> dict[str, Any]:
    """The SwapOptions fields set by the panel's widget values (in PANEL_FIELDS order); blanks become None."""
    changes = {}
    for name, value in zip(PANEL_FIELDS, values, strict=True):
        kind, optional = field_type(name)
        if value is None or (isinstance(value, str) and value.strip() == UNSET):
            if not optional:
                raise GhostError(f"the advanced option {name} needs a value")
            changes[name] = None
        else:
            changes[name] = kind(value.strip() if isinstance(value, str) else value)
    return changes
