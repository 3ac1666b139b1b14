"""The page's live tab: the browser's camera streams to the server, swapped frames come back into the page.

Gradio's streaming webcam (``gr.Image(sources=["webcam"], streaming=True)`` and its ``stream`` event) carries the
frames; the stream takes the models' queue slot while it runs, like any other job, and frees it when the user
stops the camera (or leaves the page). Sources and faces are picked as on the photo/video tab; the advanced
panel's model and face options apply, except the detection size and GFPGAN, which the tab sets for speed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from utils.errors import GhostError
from utils.inference.selection import FaceSelection
from utils.webui.handlers import (
    describe_selection,
    gallery_update,
    refusals_as_messages,
    source_gallery_faces,
)
from utils.webui.live import LiveSettings
from utils.webui.panel import FACE_OPTIONS, MODEL_OPTIONS, OptionGroup
from utils.webui.service import SwapService

logger = logging.getLogger(__name__)

# The browser offers a frame this often at most (Gradio's stream_every, fixed once the page is built); the
# frames/s slider, which can move while the stream runs, picks among them on the server.
STREAM_EVERY = 1 / 30
MAX_FPS, DEFAULT_FPS = 30, 10
DETECTION_SIZES, DEFAULT_DETECTION_SIZE = [320, 640, 1280], 640
STOPPED = "Camera off: add a source photo, then start the camera (click the camera area and allow it)."
INTRO = ("Your camera's frames go to this computer's GhostV2 and come back swapped; nothing leaves the machine. "
         "A frame is swapped only when the last one is back, so a slow swap lowers the frames/s instead of adding "
         "delay.")


@dataclass
class LiveTab:
    """The live tab's components (built by :func:`build_live_tab`)."""

    source_files: gr.File
    source_gallery: gr.Gallery
    source_map: gr.State  # gallery position -> GalleryFace
    source_face: gr.State
    target_faces: gr.Textbox
    swap_all: gr.Checkbox
    reference_files: gr.File
    selection: gr.Markdown
    fps: gr.Slider
    detection_max_size: gr.Radio
    enhance_every: gr.Number
    camera: gr.Image
    output: gr.Image
    status: gr.Markdown


def build_live_tab(faces_gallery: Any) -> LiveTab:
    """The tab's components; call inside a ``gr.Tab``. ``faces_gallery(label, elem_id)`` makes a face gallery."""
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column():
            source_files = gr.File(label="Source photos", file_count="multiple", file_types=["image"],
                                   type="filepath", elem_id="live_source_files")
            source_gallery = faces_gallery("Source faces: click the one to use", "live_source_faces")
            target_faces = gr.Textbox(label="Camera faces replaced", value="0", elem_id="live_target_faces",
                                      info="numbers counted from the left in each frame, e.g. 0 or 0, 1")
            swap_all = gr.Checkbox(label="Replace every face", value=False, elem_id="live_swap_all")
            reference_files = gr.File(label="Reference photos (optional): photo k shows the face source k replaces",
                                      file_count="multiple", file_types=["image"], type="filepath", height=120,
                                      elem_id="live_reference_files")
            selection = gr.Markdown(describe_selection(0, (0,), False, 0), elem_id="live_selection")
            fps = gr.Slider(1, MAX_FPS, value=DEFAULT_FPS, step=1, label="Frames per second (most swapped)",
                            info="can be changed while the camera runs; frames in between are skipped",
                            elem_id="live_fps")
            detection_max_size = gr.Radio(DETECTION_SIZES, value=DEFAULT_DETECTION_SIZE, elem_id="live_detection",
                                          label="Detection size (long side, pixels): smaller is faster")
            enhance_every = gr.Number(value=0, precision=0, minimum=0, label="GFPGAN on every Nth frame (0: off)",
                                      elem_id="live_enhance_every")
        with gr.Column():
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                              elem_id="live_camera")
            output = gr.Image(label="Swapped", type="filepath", interactive=False, format="png",
                              elem_id="live_output")
            status = gr.Markdown(STOPPED, elem_id="live_status")
    return LiveTab(source_files, source_gallery, gr.State([]), gr.State(0), target_faces, swap_all, reference_files,
                   selection, fps, detection_max_size, enhance_every, camera, output, status)


def parse_face_indices(text: str) -> tuple[int, ...]:
    """``"0, 2"`` -> ``(0, 2)``; a GhostError for anything but comma-separated whole numbers."""
    try:
        indices = tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))
    except ValueError:
        raise GhostError(f"camera faces are numbers counted from the left, separated by commas (e.g. 0, 2); "
                         f"not {text!r}") from None
    return indices


class LiveHandlers:
    """The live tab's events, over the page's SwapService and its advanced panel's model options."""

    def __init__(self, service: SwapService, tab: LiveTab, panels: dict[OptionGroup, list[Any]]) -> None:
        self.service, self.tab, self.panels = service, tab, panels

    def selection(self, values: dict) -> FaceSelection:
        tab = self.tab
        return FaceSelection(target_face_indices=parse_face_indices(values[tab.target_faces]),
                             swap_all_faces=values[tab.swap_all],
                             reference_face_paths=tuple(values[tab.reference_files] or ()))

    def describe(self, values: dict, source_face: int | None = None) -> str:
        tab = self.tab
        try:
            target_faces = parse_face_indices(values[tab.target_faces])
        except GhostError as error:
            return str(error)
        return describe_selection(values[tab.source_face] if source_face is None else source_face, target_faces,
                                  values[tab.swap_all], len(values[tab.reference_files] or []))

    def model_changes(self, values: dict) -> dict[str, Any]:
        changes = {name: value for group in (MODEL_OPTIONS, FACE_OPTIONS)
                   for name, value in group.changes([values[widget] for widget in self.panels[group]]).items()}
        enhance_every = int(values[self.tab.enhance_every] or 0)
        return {**changes, "source_face_index": values[self.tab.source_face],
                "detection_max_size": int(values[self.tab.detection_max_size]), "enhance_output": enhance_every > 0,
                "inpaint_output": False}

    def show_source_faces(self, values: dict) -> tuple:
        """Gallery of the source photos' faces (face 0 framed as the one used)."""
        with refusals_as_messages():
            changes = MODEL_OPTIONS.changes([values[widget] for widget in self.panels[MODEL_OPTIONS]])
            faces = source_gallery_faces(self.service, values[self.tab.source_files] or [], changes)
        return gallery_update(faces, {0}), faces, 0, self.describe(values, source_face=0)

    def pick_source(self, values: dict, event: gr.SelectData) -> tuple:
        faces = values[self.tab.source_map]
        choice = faces[event.index].index
        return gallery_update(faces, {choice}), choice, self.describe(values, source_face=choice)

    def refresh_selection(self, values: dict) -> str:
        return self.describe(values)

    def stream(self, values: dict, request: gr.Request) -> tuple:
        """One camera frame: the swapped frame's file and the status line (unchanged when the frame is skipped)."""
        tab = self.tab
        frame = values[tab.camera]
        if frame is None:
            return gr.skip(), gr.skip()
        key = request.session_hash
        run = getattr(request, "request", None) or request  # one Gradio request per Record click, for all its frames
        try:
            settings = LiveSettings(tuple(values[tab.source_files] or ()), self.selection(values),
                                    tuple(sorted(self.model_changes(values).items())),
                                    max(1, int(values[tab.enhance_every] or 0)))
            session = self.service.live.session(key, settings, run)
            path = None if session is None else session.swap(frame, float(values[tab.fps]))
        except GhostError as error:
            # The run ends here; its later frames are skipped until the user stops the camera. Raising would end
            # Gradio's stream event, and the page would start a new one at once, hitting the same error each time.
            logger.warning("live stream refused: %s", error)
            self.service.live.refuse(key, run)
            gr.Warning(str(error), duration=None)
            return gr.update(value=None), f"**Stopped:** {error}. Stop the camera, then start it again."
        if path is None:
            return gr.skip(), gr.skip()
        return str(path), session.describe(STREAM_EVERY)

    def stop(self, request: gr.Request) -> str:
        """The camera was stopped (or the page left): close the stream, free its memory and the queue slot."""
        stats = self.service.live.stop(request.session_hash)
        if stats is None:
            return STOPPED
        return f"Camera off. Last stream: {stats.summary()}."

    def leave(self, request: gr.Request) -> None:
        """The page was closed: close its stream, if one is open."""
        self.service.live.stop(request.session_hash)


def wire_live(tab: LiveTab, handlers: LiveHandlers, blocks: gr.Blocks, model_queue: dict[str, Any]) -> None:
    """Bind the live tab's events; the stream shares the models' queue slot with every other job."""
    chosen = {tab.source_face, tab.target_faces, tab.swap_all, tab.reference_files}
    models = set(handlers.panels[MODEL_OPTIONS])
    faces = set(handlers.panels[FACE_OPTIONS])
    tab.source_files.change(handlers.show_source_faces, inputs={tab.source_files, *chosen, *models},
                            outputs=[tab.source_gallery, tab.source_map, tab.source_face, tab.selection],
                            **model_queue)
    tab.source_gallery.select(handlers.pick_source, inputs={tab.source_map, *chosen},
                              outputs=[tab.source_gallery, tab.source_face, tab.selection])
    for component in (tab.target_faces, tab.swap_all, tab.reference_files):
        component.change(handlers.refresh_selection, inputs=chosen, outputs=tab.selection)
    inputs = {tab.camera, tab.source_files, *chosen, tab.fps, tab.detection_max_size, tab.enhance_every, *models,
              *faces}
    streaming = tab.camera.stream(handlers.stream, inputs=inputs, outputs=[tab.output, tab.status],
                                  stream_every=STREAM_EVERY, time_limit=None, show_progress="hidden", **model_queue)
    streaming.then(handlers.stop, outputs=tab.status)
    blocks.unload(handlers.leave)
