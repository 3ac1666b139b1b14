"""What each event of the page does: find faces, pick faces, run a swap; our errors become messages in the page.

Events with many inputs take them as one dict keyed by component (Gradio's set-of-inputs form), so the advanced
panel's widgets travel without a fixed argument list. Only this module and utils/webui/layout.py import Gradio.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from utils.errors import GhostError
from utils.webui.panel import panel_changes
from utils.webui.service import SwapService

logger = logging.getLogger(__name__)

@dataclass
class Page:
    """The components the handlers read and write (built by utils/webui/layout.py)."""

    source_files: gr.File
    source_gallery: gr.Gallery
    source_map: gr.State  # gallery position -> (source photo, face index)
    source_choice: gr.State  # (source photo, face index)
    target_file: gr.File
    target_gallery: gr.Gallery
    target_map: gr.State  # gallery position -> face index
    target_choice: gr.State  # tuple of face indices
    selection: gr.Markdown
    panel: list[Any]
    before_after: gr.ImageSlider
    result_image: gr.Image
    result_file: gr.File


@contextmanager
def refusals_as_messages() -> Iterator[None]:
    """Our typed errors (NSFW verdict, no face, unreadable file, ...) become a message in the page."""
    try:
        yield
    except GhostError as error:
        logger.warning("refused: %s", error)
        raise gr.Error(str(error), duration=None, print_exception=False) from error


def describe_selection(source_choice: tuple[int, int], target_choice: tuple[int, ...]) -> str:
    """The line under the galleries saying which faces the next swap uses (indices in CLI order)."""
    photo, face = source_choice
    targets = ", ".join(str(index) for index in target_choice) or "none"
    return f"Swap uses **source photo {photo}, face {face}** → **target face {targets}**"


def default_choices(service: SwapService) -> tuple[tuple[int, int], tuple[int, ...]]:
    """The faces a swap uses before any click: source photo 0 and the start-up --source/--target_face_index."""
    return (0, service.options.source_face_index), (service.options.target_face_index,)


class PageHandlers:
    """The page's event functions, over one SwapService."""

    def __init__(self, service: SwapService, page: Page) -> None:
        self.service = service
        self.page = page
        self.default_source, self.default_target = default_choices(service)

    def changes(self, values: dict) -> dict[str, Any]:
        return panel_changes([values[widget] for widget in self.page.panel])

    def show_source_faces(self, values: dict) -> tuple:
        """Gallery of every source photo's faces; the selection goes back to its start-up value."""
        page = self.page
        paths = values[page.source_files] or []
        items, positions = [], []
        with refusals_as_messages():
            changes = self.changes(values)
            for photo, path in enumerate(paths):
                for face in self.service.faces(path, changes, "source photo"):
                    caption = f"photo {photo} · face {face.index}" if len(paths) > 1 else f"face {face.index}"
                    items.append((str(face.thumbnail), caption))
                    positions.append((photo, face.index))
        target_choice = values[page.target_choice]
        return items, positions, self.default_source, describe_selection(self.default_source, target_choice)

    def show_target_faces(self, values: dict) -> tuple:
        """Gallery of the target photo's faces; the selection goes back to its start-up value."""
        page = self.page
        path = values[page.target_file]
        items, positions = [], []
        if path:
            with refusals_as_messages():
                for face in self.service.faces(path, self.changes(values), "target"):
                    items.append((str(face.thumbnail), f"face {face.index}"))
                    positions.append(face.index)
        return (items, positions, self.default_target,
                describe_selection(values[page.source_choice], self.default_target))

    def pick_source(self, source_map: list, target_choice: tuple, event: gr.SelectData) -> tuple:
        """A click on a source face makes it the identity of the next swap."""
        choice = tuple(source_map[event.index])
        return choice, describe_selection(choice, target_choice)

    def pick_target(self, target_map: list, source_choice: tuple, event: gr.SelectData) -> tuple:
        """A click on a target face makes it the face the next swap replaces."""
        choice = (target_map[event.index],)
        return choice, describe_selection(source_choice, choice)

    # Gradio finds the progress bar by this default value.
    def swap(self, values: dict, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        """Run one swap job; returns (before/after pair, result image, result file)."""
        page = self.page
        target = values[page.target_file]
        with refusals_as_messages():
            if not target:
                raise GhostError("add a target photo (the picture whose face is replaced)")
            progress(0.0, desc="swapping")
            outcome = self.service.swap(values[page.source_files] or [], tuple(values[page.source_choice]), target,
                                        tuple(values[page.target_choice]), self.changes(values))
        output = str(outcome.output_path)
        return (str(Path(target)), output), output, output
