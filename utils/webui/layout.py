"""The page: inputs and face galleries on the left, the advanced panel, the result on the right; events wired.

Every event that runs a model shares one queue slot (``concurrency_id="models"``, limit 1): one job at a time
on the device, the others wait in Gradio's queue and see their place in it.
"""
from __future__ import annotations

import gradio as gr

from utils.webui.handlers import Page, PageHandlers, default_choices, describe_selection
from utils.webui.panel import build_panel
from utils.webui.service import SwapService

TITLE = "GhostV2 face swap"
INTRO = (f"# {TITLE}\nAdd one or more **source photos** (the face to put in) and a **target photo** (the picture "
         "whose face is replaced), click the faces to use, then **Swap**. Faces are numbered left to right, as "
         "`inference.py` counts them. Everything stays on this computer.")
IMAGE_TYPES = ["image"]
MODEL_QUEUE = {"concurrency_id": "models", "concurrency_limit": 1}


def build_page(service: SwapService) -> gr.Blocks:
    """The Gradio Blocks of the page, its events bound to ``service``."""
    default_source, default_target = default_choices(service)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column():
                source_files = gr.File(label="Source photos", file_count="multiple", file_types=IMAGE_TYPES,
                                       type="filepath", elem_id="source_files")
                source_gallery = gr.Gallery(label="Source faces: click the one to use", columns=6, height=220,
                                            allow_preview=False, interactive=False, elem_id="source_faces")
                target_file = gr.File(label="Target photo", file_count="single", file_types=IMAGE_TYPES,
                                      type="filepath", elem_id="target_file")
                target_gallery = gr.Gallery(label="Target faces: click the one to replace", columns=6, height=220,
                                            allow_preview=False, interactive=False, elem_id="target_faces")
                selection = gr.Markdown(describe_selection(default_source, default_target), elem_id="selection")
                with gr.Accordion("Advanced (inference.py's model options)", open=False, elem_id="advanced"):
                    panel = build_panel(service.options)
                swap_button = gr.Button("Swap", variant="primary", elem_id="swap")
            with gr.Column():
                before_after = gr.ImageSlider(label="Before / after", type="filepath", interactive=False,
                                              elem_id="before_after")
                result_image = gr.Image(label="Result", type="filepath", interactive=False, format="png",
                                        elem_id="result_image")
                result_file = gr.File(label="Download", interactive=False, elem_id="result_file")
        page = Page(source_files, source_gallery, gr.State([]), gr.State(default_source), target_file, target_gallery,
                    gr.State([]), gr.State(default_target), selection, panel, before_after, result_image,
                    result_file)
        wire(page, PageHandlers(service, page), swap_button)
    return blocks


def wire(page: Page, handlers: PageHandlers, swap_button: gr.Button) -> None:
    """Bind the page's events to the handlers."""
    source_outputs = [page.source_gallery, page.source_map, page.source_choice, page.selection]
    target_outputs = [page.target_gallery, page.target_map, page.target_choice, page.selection]
    page.source_files.change(handlers.show_source_faces, inputs={page.source_files, page.target_choice, *page.panel},
                             outputs=source_outputs, **MODEL_QUEUE)
    page.target_file.change(handlers.show_target_faces, inputs={page.target_file, page.source_choice, *page.panel},
                            outputs=target_outputs, **MODEL_QUEUE)
    page.source_gallery.select(handlers.pick_source, inputs=[page.source_map, page.target_choice],
                               outputs=[page.source_choice, page.selection])
    page.target_gallery.select(handlers.pick_target, inputs=[page.target_map, page.source_choice],
                               outputs=[page.target_choice, page.selection])
    swap_button.click(handlers.swap,
                      inputs={page.source_files, page.source_choice, page.target_file, page.target_choice,
                              *page.panel},
                      outputs=[page.before_after, page.result_image, page.result_file], **MODEL_QUEUE)
