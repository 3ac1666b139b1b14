"""What each event of the page does: find faces, pick faces, run a swap; our errors become messages in the page.

Events with many inputs take them as one dict keyed by component (Gradio's set-of-inputs form), so the advanced
panel's widgets travel without a fixed argument list. Only this module and utils/webui/layout.py import Gradio.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr

from utils.errors import GhostError
from utils.inference.selection import FaceSelection
from utils.webui.panel import (
    FACE_OPTIONS,
    MODEL_OPTIONS,
    SELECTION_OPTIONS,
    VIDEO_OPTIONS,
    OptionGroup,
)
from utils.webui.service import SwapService

logger = logging.getLogger(__name__)


@dataclass
class Page:
    """The components the handlers read and write (built by utils/webui/layout.py)."""

    source_files: gr.File
    source_gallery: gr.Gallery
    source_map: gr.State  # gallery position -> GalleryFace
    source_face: gr.State  # the face index used in each source photo
    target_file: gr.File
    target_gallery: gr.Gallery
    target_map: gr.State  # gallery position -> GalleryFace
    target_faces: gr.State  # tuple of the face indices replaced
    swap_all: gr.Checkbox
    reference_files: gr.File
    selection: gr.Markdown
    panels: dict[OptionGroup, list[Any]]
    before_after: gr.ImageSlider
    result_image: gr.Image
    result_video: gr.Video
    result_file: gr.File
    result_info: gr.Markdown
    option_changes: gr.Markdown


SELECTED_CAPTION = " · selected"


@dataclass(frozen=True)
class GalleryFace:
    """One thumbnail of a faces gallery: the face's CLI index, its caption, plain and framed thumbnails."""

    index: int
    caption: str
    thumbnail: str
    marked: str  # the thumbnail in a green frame: shown while the face is selected


def gallery_items(faces: list[GalleryFace], selected: set[int]) -> list[tuple[str, str]]:
    """The gallery's (image, caption) items, every selected face framed and captioned as selected."""
    return [(face.marked, face.caption + SELECTED_CAPTION) if face.index in selected else
            (face.thumbnail, face.caption) for face in faces]


def gallery_update(faces: list[GalleryFace], selected: set[int]) -> Any:
    """The gallery showing ``selected``. Gradio's own ring marks the last face clicked, which may be the click that
    removed it; the page's CSS (utils/webui/layout.py) hides that ring in the face galleries."""
    return gr.update(value=gallery_items(faces, selected), selected_index=None)


def source_gallery_faces(service: SwapService, paths: list[str], changes: dict[str, Any]) -> list[GalleryFace]:
    """The faces of every source photo, captioned with the photo's number when there are several."""
    faces = []
    for photo, path in enumerate(paths):
        for face in service.faces(path, changes, "source photo"):
            caption = f"photo {photo} · face {face.index}" if len(paths) > 1 else f"face {face.index}"
            faces.append(GalleryFace(face.index, caption, str(face.thumbnail), str(face.marked)))
    return faces


@contextmanager
def refusals_as_messages() -> Iterator[None]:
    """Our typed errors (NSFW verdict, no face, unreadable file, ...) become a message in the page."""
    try:
        yield
    except GhostError as error:
        logger.warning("refused: %s", error)
        raise gr.Error(str(error), duration=None, print_exception=False) from error


def describe_selection(source_face: int, target_faces: tuple[int, ...], swap_all: bool, references: int) -> str:
    """The line under the galleries saying which faces the next swap uses (indices in CLI order)."""
    if references:
        replaced = f"the target faces that look like the {references} reference photo(s)"
    elif swap_all:
        replaced = "every target face"
    else:
        replaced = "target face " + (", ".join(str(index) for index in target_faces) or "(none picked)")
    return f"Swap uses **source face {source_face}** → **{replaced}**"


def default_choices(service: SwapService) -> tuple[int, tuple[int, ...]]:
    """The faces a swap uses before any click: the start-up --source_face_index and --target_face_index."""
    return service.options.source_face_index, (service.options.target_face_index,)


def start_up_values(service: SwapService) -> dict[OptionGroup, Any]:
    """The options each panel group shows when the page opens (webui.py's flags, else the dataclass defaults)."""
    return {MODEL_OPTIONS: service.options, FACE_OPTIONS: service.options, VIDEO_OPTIONS: service.video,
            SELECTION_OPTIONS: FaceSelection()}


def describe_option_changes(differences: list[str]) -> str:
    """The line under the advanced panel: which options differ from the start-up values (or why one is bad)."""
    if not differences:
        return "Advanced options: all at their start-up values"
    return "Advanced options changed: " + ", ".join(differences)


class PageHandlers:
    """The page's event functions, over one SwapService."""

    def __init__(self, service: SwapService, page: Page) -> None:
        self.service = service
        self.page = page
        self.default_source, self.default_target = default_choices(service)

    def changes(self, group: OptionGroup, values: dict) -> dict[str, Any]:
        return group.changes([values[widget] for widget in self.page.panels[group]])

    def show_option_changes(self, values: dict) -> str:
        """The advanced options that differ from the start-up ones, so the user sees what the next job uses."""
        differences = []
        for group, start in start_up_values(self.service).items():
            try:
                changes = self.changes(group, values)
            except GhostError as error:  # a half-typed value: say so here, the job itself refuses it
                differences.append(str(error))
                continue
            differences += [f"`{name}` = {value}" for name, value in changes.items() if value != getattr(start, name)]
        return describe_option_changes(differences)

    def show_source_faces(self, values: dict) -> tuple:
        """Gallery of every source photo's faces; the source face goes back to its start-up value."""
        page = self.page
        with refusals_as_messages():
            faces = source_gallery_faces(self.service, values[page.source_files] or [],
                                         self.changes(MODEL_OPTIONS, values))
        return (gallery_update(faces, {self.default_source}), faces, self.default_source,
                self.describe(values, source_face=self.default_source))

    def show_target_faces(self, values: dict) -> tuple:
        """Gallery of the target photo's (or video's first frame's) faces; the picked faces are reset."""
        page = self.page
        path = values[page.target_file]
        faces = []
        if path:
            with refusals_as_messages():
                for face in self.service.faces(path, self.changes(MODEL_OPTIONS, values), "target"):
                    faces.append(GalleryFace(face.index, f"face {face.index}", str(face.thumbnail), str(face.marked)))
        return (gallery_update(faces, set(self.default_target)), faces, self.default_target,
                self.describe(values, target_faces=self.default_target))

    def describe(self, values: dict, **current: Any) -> str:
        page = self.page
        return describe_selection(current.get("source_face", values[page.source_face]),
                                  current.get("target_faces", values[page.target_faces]),
                                  values[page.swap_all], len(values[page.reference_files] or []))

    def pick_source(self, values: dict, event: gr.SelectData) -> tuple:
        """A click on a source face: that face of each source photo gives the identity (and is framed)."""
        faces = values[self.page.source_map]
        choice = faces[event.index].index
        return gallery_update(faces, {choice}), choice, self.describe(values, source_face=choice)

    def toggle_target(self, values: dict, event: gr.SelectData) -> tuple:
        """A click on a target face adds it to the faces replaced, or takes it out; every face replaced is framed."""
        faces = values[self.page.target_map]
        chosen = set(values[self.page.target_faces])
        chosen.symmetric_difference_update({faces[event.index].index})
        choice = tuple(sorted(chosen))
        return gallery_update(faces, chosen), choice, self.describe(values, target_faces=choice)

    def refresh_selection(self, values: dict) -> str:
        return self.describe(values)

    def swap(self, values: dict, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008 (Gradio's marker)
        """Run one swap job; returns the before/after pair, result image or video, result file and a summary."""
        page = self.page
        target = values[page.target_file]
        with refusals_as_messages():
            if not target:
                raise GhostError("add a target photo or video (the picture whose faces are replaced)")
            selection = FaceSelection(
                target_face_indices=tuple(values[page.target_faces]), swap_all_faces=values[page.swap_all],
                reference_face_paths=tuple(values[page.reference_files] or ()),
                **self.changes(SELECTION_OPTIONS, values),
            )
            video = replace(self.service.video, **self.changes(VIDEO_OPTIONS, values))
            changes = {**self.changes(MODEL_OPTIONS, values), **self.changes(FACE_OPTIONS, values),
                       "source_face_index": values[page.source_face]}
            progress(0.0, desc="swapping")
            report = self.service.swap(values[page.source_files] or [], target, selection, changes, video,
                                       lambda done, total: progress((done, total), desc="swapping", unit="frames"))
        output = str(report.output_path)
        if report.kind == "video":
            summary = (f"{report.faces_swapped} face(s) swapped in {report.frames_swapped} of {report.frames} "
                       f"frame(s), {report.seconds:.1f} s")
            return (gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                    gr.update(value=output, visible=True), output, summary)
        summary = f"{report.faces_swapped} face(s) swapped, {report.seconds:.1f} s"
        return (gr.update(value=(str(Path(target)), output), visible=True), gr.update(value=output, visible=True),
                gr.update(value=None, visible=False), output, summary)
