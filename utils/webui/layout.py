"""The page: inputs and face galleries on the left, the advanced panel, the result on the right; events wired.

Every event that runs a model shares one queue slot (``concurrency_id="models"``, limit 1): one job at a time
on the device, the others wait in Gradio's queue and see their place in it.
"""
from __future__ import annotations

import gradio as gr

from utils.webui.handlers import (
    Page,
    PageHandlers,
    default_choices,
    describe_option_changes,
    describe_selection,
    start_up_values,
)
from utils.webui.live_tab import LiveHandlers, build_live_tab, wire_live
from utils.webui.panel import MODEL_OPTIONS
from utils.webui.service import SwapService

TITLE = "GhostV2 face swap"
INTRO = (f"# {TITLE}\nAdd a **source photo** (the face to put in) and a **target photo or video** (whose faces are "
         "replaced), click the faces to use, then **Swap**. Faces are numbered left to right, as `inference.py` "
         "counts them; in a video they are counted in each frame, or matched to **reference photos** (one per "
         "source photo, same order). Everything stays on this computer.")
MODEL_QUEUE = {"concurrency_id": "models", "concurrency_limit": 1}
# Gradio rings the last thumbnail clicked, even when that click took the face out of the selection; the face
# galleries show the selection themselves (a green frame and "· selected" on every selected face), so that
# ring is turned off in them (WebUI passes CSS to Gradio's launch()).
CSS = """
.face-gallery .thumbnail-item.selected { --ring-color: transparent !important;
                                         border-color: var(--border-color-primary) !important; }
"""


def build_page(service: SwapService) -> gr.Blocks:
    """The Gradio Blocks of the page, its events bound to ``service``."""
    source_face, target_faces = default_choices(service)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.Markdown(INTRO)
        with gr.Tab("Photo or video", id="media", elem_id="media_tab"), gr.Row():
            with gr.Column():
                source_files = gr.File(label="Source photos", file_count="multiple", file_types=["image"],
                                       type="filepath", elem_id="source_files")
                source_gallery = faces_gallery("Source faces: click the one to use", "source_faces")
                target_file = gr.File(label="Target photo or video", file_count="single",
                                      file_types=["image", "video"], type="filepath", elem_id="target_file")
                target_gallery = faces_gallery("Target faces (a video's first frame): click each one to replace",
                                               "target_faces")
                swap_all = gr.Checkbox(label="Replace every face", value=False, elem_id="swap_all")
                reference_files = gr.File(label="Reference photos (optional): photo k shows the face source k "
                                                "replaces", file_count="multiple", file_types=["image"],
                                          type="filepath", height=120, elem_id="reference_files")
                selection = gr.Markdown(describe_selection(source_face, target_faces, False, 0), elem_id="selection")
                with gr.Accordion("Advanced: inference.py's options", open=False, elem_id="advanced"):
                    panels = {}
                    for group, values in start_up_values(service).items():
                        gr.Markdown(f"### {group.title}")
                        panels[group] = group.build(values)
                option_changes = gr.Markdown(describe_option_changes([]), elem_id="option_changes")
                swap_button = gr.Button("Swap", variant="primary", elem_id="swap")
            with gr.Column():
                before_after = gr.ImageSlider(label="Before / after", type="filepath", interactive=False,
                                              elem_id="before_after")
                result_image = gr.Image(label="Result", type="filepath", interactive=False, format="png",
                                        elem_id="result_image")
                result_video = gr.Video(label="Result video", format=None, interactive=False, visible=False,
                                        elem_id="result_video")
                result_file = gr.File(label="Download", interactive=False, elem_id="result_file")
                result_info = gr.Markdown(elem_id="result_info")
        page = Page(source_files, source_gallery, gr.State([]), gr.State(source_face), target_file, target_gallery,
                    gr.State([]), gr.State(target_faces), swap_all, reference_files, selection, panels, before_after,
                    result_image, result_video, result_file, result_info, option_changes)
        wire(page, PageHandlers(service, page), swap_button)
        with gr.Tab("Live camera", id="live", elem_id="live_tab"):
            live = build_live_tab(faces_gallery)
        wire_live(live, LiveHandlers(service, live, panels), blocks, MODEL_QUEUE)
    return blocks


def faces_gallery(label: str, elem_id: str) -> gr.Gallery:
    return gr.Gallery(label=label, columns=6, height=220, allow_preview=False, interactive=False, elem_id=elem_id,
                      elem_classes=["face-gallery"])


def wire(page: Page, handlers: PageHandlers, swap_button: gr.Button) -> None:
    """Bind the page's events to the handlers."""
    chosen = {page.source_face, page.target_faces, page.swap_all, page.reference_files}
    models = set(page.panels[MODEL_OPTIONS])
    page.source_files.change(handlers.show_source_faces, inputs={page.source_files, *chosen, *models},
                             outputs=[page.source_gallery, page.source_map, page.source_face, page.selection],
                             **MODEL_QUEUE)
    page.target_file.change(handlers.show_target_faces, inputs={page.target_file, *chosen, *models},
                            outputs=[page.target_gallery, page.target_map, page.target_faces, page.selection],
                            **MODEL_QUEUE)
    page.source_gallery.select(handlers.pick_source, inputs={page.source_map, *chosen},
                               outputs=[page.source_gallery, page.source_face, page.selection])
    page.target_gallery.select(handlers.toggle_target, inputs={page.target_map, *chosen},
                               outputs=[page.target_gallery, page.target_faces, page.selection])
    for component in (page.swap_all, page.reference_files):
        component.change(handlers.refresh_selection, inputs=chosen, outputs=page.selection)
    every_option = {widget for widgets in page.panels.values() for widget in widgets}
    for widget in every_option:  # cheap and model-free: outside the models' queue slot
        widget.change(handlers.show_option_changes, inputs=every_option, outputs=page.option_changes)
    swap_button.click(handlers.swap, inputs={page.source_files, page.target_file, *chosen, *every_option},
                      outputs=[page.before_after, page.result_image, page.result_video, page.result_file,
                               page.result_info], **MODEL_QUEUE)
