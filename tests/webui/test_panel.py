"""The advanced panel's widgets: built from the options dataclasses, their start-up values read back unchanged."""
from __future__ import annotations

import pytest

from utils.errors import GhostError
from utils.inference.options import SwapOptions
from utils.inference.video import VideoOptions
from utils.webui.panel import FACE_OPTIONS, MODEL_OPTIONS, UNSET, VIDEO_OPTIONS


def optional_options() -> SwapOptions:
    """Start-up options whose optional numbers are unset (detect at native size, seed derived from the inputs)."""
    return SwapOptions(detection_max_size=None, inpainting_seed=None, precision=None)


@pytest.mark.parametrize("options", [SwapOptions(), optional_options(), SwapOptions(detection_max_size=640,
                                                                                   inpainting_seed=7)])
def test_start_up_values_read_back_unchanged(gradio_available: None, options: SwapOptions) -> None:
    import gradio as gr

    with gr.Blocks():
        widgets = MODEL_OPTIONS.build(options)
    changes = MODEL_OPTIONS.changes([widget.value for widget in widgets])
    assert changes == {name: getattr(options, name) for name in MODEL_OPTIONS.helps}


@pytest.mark.parametrize("video", [VideoOptions(), VideoOptions(batch_size=4, smooth_window=0)])
def test_video_values_read_back_unchanged(gradio_available: None, video: VideoOptions) -> None:
    import gradio as gr

    with gr.Blocks():
        widgets = VIDEO_OPTIONS.build(video)
    assert VIDEO_OPTIONS.changes([widget.value for widget in widgets]) == {
        name: getattr(video, name) for name in VIDEO_OPTIONS.helps}


def test_unset_numbers_are_blank_text_boxes(gradio_available: None) -> None:
    # The page's Number widget sends 0 for an empty box, which would make "unset" a real value (a seed of 0,
    # a detection size of 0); optional numbers are text boxes, blank meaning the field's None.
    import gradio as gr

    with gr.Blocks():
        widgets = dict(zip(MODEL_OPTIONS.helps, MODEL_OPTIONS.build(optional_options()), strict=True))
    for name in ("detection_max_size", "inpainting_seed"):
        assert isinstance(widgets[name], gr.Textbox) and widgets[name].value == UNSET


def test_typed_values_are_converted_and_bad_ones_are_messages() -> None:
    values = {name: getattr(SwapOptions(), name) for name in MODEL_OPTIONS.helps}
    typed = MODEL_OPTIONS.changes(list({**values, "detection_max_size": " 640 ", "inpainting_seed": ""}.values()))
    assert typed["detection_max_size"] == 640 and typed["inpainting_seed"] is None
    with pytest.raises(GhostError, match="detection_max_size needs a whole number, not 'big'"):
        MODEL_OPTIONS.changes(list({**values, "detection_max_size": "big"}.values()))
    with pytest.raises(GhostError, match="detection_threshold needs a value"):
        MODEL_OPTIONS.changes(list({**values, "detection_threshold": None}.values()))


@pytest.mark.parametrize("options", [SwapOptions(), SwapOptions(
    face_mask_types=("box", "occlusion", "region"), face_mask_padding=(5, 10), face_mask_blur=0.25,
    face_mask_regions=("lips", "nose"), keep_target_mouth=True, expression_restorer_factor=80,
    expression_restorer_areas=("lower",), pixel_boost=512)])
def test_face_option_values_read_back_unchanged(gradio_available: None, options: SwapOptions) -> None:
    import gradio as gr

    with gr.Blocks():
        widgets = FACE_OPTIONS.build(options)
    assert FACE_OPTIONS.changes([widget.value for widget in widgets]) == {
        name: getattr(options, name) for name in FACE_OPTIONS.helps}


def test_face_option_lists_are_typed_and_bad_ones_are_messages() -> None:
    values = {name: getattr(SwapOptions(), name) for name in FACE_OPTIONS.helps}
    typed = FACE_OPTIONS.changes(list({**values, "face_mask_padding": " 5  10 ", "face_mask_types": ["box", "region"],
                                       "face_mask_regions": ["skin", "lips"]}.values()))
    assert typed["face_mask_padding"] == (5.0, 10.0) and typed["face_mask_types"] == ("box", "region")
    assert SwapOptions(**typed).face_mask_padding == (5, 10, 5, 10)
    with pytest.raises(GhostError, match="face_mask_padding needs numbers separated by spaces, not 'wide'"):
        FACE_OPTIONS.changes(list({**values, "face_mask_padding": "wide"}.values()))
