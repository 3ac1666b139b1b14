"""The page end to end in headless Chromium, on stand-in weights: upload, pick a face, swap, see the result.

Stand-in weights make the pictures meaningless, so the tests check what holds for any weights: the faces
offered are numbered, the result has the target's size and differs from it, refusals are messages in the page,
the page asks nothing of the network, and the server listens on 127.0.0.1 only.
"""
from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest

from tests.cli.conftest import NO_FACE_THRESHOLD
from tests.video_clips import compose, face_crop, write_clip
from tests.webui.conftest import (
    BROWSER_TIMEOUT_MS,
    FACES_SHOWN,
    MAX_UPLOAD_MB,
    MAX_VIDEO_SECONDS,
    free_port,
)

TARGET_SIZE = (192, 256)  # width, height: not square, so a transposed or resized result shows
CLIP_SIZE, CLIP_FRAMES, CLIP_FPS = (128, 96), 3, 10
RETYPES, RETYPE_AFTER_MS = 2, 10_000  # see set_option


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> dict[str, Path]:
    """The astronaut (source), a portrait crop of the cameraman (target), and a text file named like a photo."""
    folder = tmp_path_factory.mktemp("webui_photos")
    cameraman = cv2.imread(str(example_images["cameraman"]), cv2.IMREAD_UNCHANGED)
    target = folder / "cameraman_portrait.png"
    cv2.imwrite(str(target), cv2.resize(cameraman[:, 64:448], TARGET_SIZE, interpolation=cv2.INTER_AREA))
    not_a_photo = folder / "notes.png"
    not_a_photo.write_text("these are notes, not a picture\n")
    face = face_crop(example_images["astronaut"], 48)
    frames = [compose(CLIP_SIZE, [(face, (8 + 8 * index, 16))]) for index in range(CLIP_FRAMES)]
    clip = write_clip(folder / "clip.mp4", frames, fps=CLIP_FPS)
    long_clip = write_clip(folder / "long_clip.mp4", frames[:1] * round(MAX_VIDEO_SECONDS * CLIP_FPS + 2),
                           fps=CLIP_FPS, audio_codec=None)
    return {"source": example_images["astronaut"], "target": target, "text": not_a_photo, "clip": clip,
            "long_clip": long_clip}


def upload(tab, component: str, *paths: Path) -> None:
    tab.locator(f"#{component} input[type=file]").set_input_files([str(path) for path in paths])


def natural_size(image) -> tuple[int, int]:
    return tuple(image.evaluate("element => [element.naturalWidth, element.naturalHeight]"))


def test_swap_a_picked_face(browser_page, photos: dict[str, Path], served_page, artifacts_dir: Path) -> None:
    tab = browser_page
    upload(tab, "source_files", photos["source"])
    upload(tab, "target_file", photos["target"])
    source_faces = tab.locator("#source_faces button img")
    target_faces = tab.locator("#target_faces button img")
    source_faces.nth(FACES_SHOWN - 1).wait_for()
    target_faces.nth(FACES_SHOWN - 1).wait_for()
    assert source_faces.count() == target_faces.count() == FACES_SHOWN
    captions = [target_faces.nth(position).get_attribute("alt") for position in range(FACES_SHOWN)]
    indices = [int(re.fullmatch(r"face (\d+)(?: · selected)?", caption).group(1)) for caption in captions]
    assert indices == sorted(indices) and len(set(indices)) == FACES_SHOWN  # CLI order, left to right

    # Clicks toggle faces: add face indices[1] to the start-up face 0, then take face 0 out again.
    target_faces.nth(1).click()
    selection = tab.locator("#selection")
    selection.get_by_text(f"target face 0, {indices[1]}").wait_for()
    target_faces.nth(0).click()
    selection.get_by_text(re.compile(rf"target face {indices[1]}$")).wait_for()
    tab.locator("#swap").click()
    result = tab.locator("#result_image img")
    result.wait_for()
    tab.wait_for_function("element => element.complete && element.naturalWidth > 0", arg=result.element_handle())
    assert natural_size(result) == TARGET_SIZE
    assert tab.locator("#before_after img").count() == 2
    download = tab.locator("#result_file a").first.get_attribute("href")
    assert download.endswith("/cameraman_portrait_swapped.png")
    swapped = cv2.imdecode(np.frombuffer(tab.request.get(download).body(), np.uint8), cv2.IMREAD_COLOR)
    target = cv2.imread(str(photos["target"]), cv2.IMREAD_COLOR)
    assert swapped.shape == target.shape and not np.array_equal(swapped, target)
    tab.locator("#result_info").get_by_text("1 face(s) swapped").wait_for()
    tab.screenshot(path=str(artifacts_dir / "webui_after_swap.png"), full_page=True)

    # Everything the page loaded came from the page's own server (no CDN fonts or scripts).
    hosts = {urlparse(url).hostname for url in tab.requested if url.startswith("http")}
    assert hosts == {"127.0.0.1"}


def gallery_state(tab, gallery: str) -> list[tuple[str, bool]]:
    """Each thumbnail of a gallery: its caption, and whether it shows the green frame of a selected face."""
    return tab.locator(f"#{gallery} button img").evaluate_all(
        "images => images.map(image => [image.alt, image.src.endsWith('_selected.png')])")


def wait_for_marks(tab, gallery: str, selected: set[int]) -> list[tuple[str, bool]]:
    """The gallery once exactly the faces ``selected`` (CLI indices) are captioned as selected."""
    expected = sorted(selected)
    tab.wait_for_function(
        """([gallery, expected]) => {
            const marked = [...document.querySelectorAll(`#${gallery} button img`)]
                .filter(image => image.alt.endsWith(' · selected'))
                .map(image => Number(image.alt.match(/face (\\d+)/)[1]));
            return JSON.stringify(marked) === JSON.stringify(expected);
        }""", arg=[gallery, expected])
    return gallery_state(tab, gallery)


@pytest.mark.parametrize("target", ["target", "clip"])
def test_galleries_mark_every_selected_face(browser_page, photos: dict[str, Path], target: str) -> None:
    # A click toggles a target face; every face in the selection is framed and captioned, and the face whose
    # click removed it is not highlighted (Gradio's own highlight follows the last click: it is cleared).
    tab = browser_page
    upload(tab, "target_file", photos[target])
    target_faces = tab.locator("#target_faces button img")
    target_faces.nth(FACES_SHOWN - 1).wait_for()
    indices = [int(re.match(r"face (\d+)", alt).group(1)) for alt, _ in gallery_state(tab, "target_faces")]
    shown_default = {0} & set(indices)
    wait_for_marks(tab, "target_faces", shown_default)
    target_faces.nth(2).click()
    state = wait_for_marks(tab, "target_faces", shown_default | {indices[2]})
    target_faces.nth(3).click()
    state = wait_for_marks(tab, "target_faces", shown_default | {indices[2], indices[3]})
    assert [framed for _, framed in state] == [index in shown_default | {indices[2], indices[3]} for index in indices]
    tab.locator("#selection").get_by_text(
        "target face " + ", ".join(str(index) for index in sorted(shown_default | {indices[2], indices[3]}))).wait_for()
    target_faces.nth(2).click()  # removes face indices[2]: the last click is on a face no longer selected
    state = wait_for_marks(tab, "target_faces", shown_default | {indices[3]})
    assert [framed for _, framed in state] == [index in shown_default | {indices[3]} for index in indices]
    tab.mouse.move(0, 0)  # off the thumbnails: a hovered one is ringed too
    rings = tab.locator("#target_faces .thumbnail-item").evaluate_all(
        "items => items.map(item => getComputedStyle(item).borderColor + ' ' + getComputedStyle(item).boxShadow)")
    assert len(set(rings)) == 1  # no thumbnail stands out by Gradio's ring, the last one clicked included
    tab.locator("#selection").get_by_text(
        "target face " + ", ".join(str(index) for index in sorted(shown_default | {indices[3]}))).wait_for()

    # The source gallery frames the one face used (face 0 of each photo until another is clicked).
    upload(tab, "source_files", photos["source"])
    source_faces = tab.locator("#source_faces button img")
    source_faces.nth(FACES_SHOWN - 1).wait_for()
    sources = [int(re.match(r"face (\d+)", alt).group(1)) for alt, _ in gallery_state(tab, "source_faces")]
    wait_for_marks(tab, "source_faces", {0} & set(sources))
    source_faces.nth(1).click()
    state = wait_for_marks(tab, "source_faces", {sources[1]})
    assert [framed for _, framed in state] == [index == sources[1] for index in sources]
    tab.locator("#selection").get_by_text(f"source face {sources[1]}").wait_for()


def test_one_job_at_a_time_and_models_stay_loaded(chromium, served_page, photos: dict[str, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Two visitors upload a target at once: the second detection waits for the first (one job on the device),
    # and the models the first loads (the detector, if no earlier test did) are not loaded again.
    service = served_page.service
    detect_faces, get_model = service.faces, service.models.get
    jobs, loads = [], []

    def timed_faces(*arguments, **keywords):
        started = time.monotonic()
        try:
            return detect_faces(*arguments, **keywords)
        finally:
            jobs.append((started, time.monotonic()))

    def counted_get(key, load):
        return get_model(key, lambda: (loads.append(key), load())[1])

    monkeypatch.setattr(service, "faces", timed_faces)
    monkeypatch.setattr(service.models, "get", counted_get)
    contexts = [chromium.new_context() for _ in range(2)]
    try:
        tabs = [context.new_page() for context in contexts]
        for tab in tabs:
            tab.set_default_timeout(BROWSER_TIMEOUT_MS)
            tab.goto(served_page.url)
        for tab in tabs:
            upload(tab, "target_file", photos["target"])
        for tab in tabs:
            tab.locator("#target_faces button img").nth(FACES_SHOWN - 1).wait_for()
    finally:
        for context in contexts:
            context.close()
    assert len(jobs) == 2
    (_, first_end), (second_start, _) = sorted(jobs)
    assert second_start >= first_end
    assert len(loads) == len(set(loads)) <= 1


def test_text_file_as_image_is_a_message(browser_page, photos: dict[str, Path]) -> None:
    tab = browser_page
    upload(tab, "target_file", photos["text"])
    message = tab.get_by_text(re.compile(r"cannot read image .*notes\.png"))
    message.wait_for()
    assert "Traceback" not in tab.content()


def option_input(tab, name: str):
    """The text field of the advanced panel's widget for option ``name``."""
    return tab.locator(f"#option_{name}").locator("input, textarea").first


def set_option(tab, name: str, value: str) -> None:
    """Type ``value`` into the advanced panel's widget for option ``name`` (the panel is opened first).

    Returns once the server has the value: the line under the panel names it. An event fired before that
    (an upload right after typing) could still carry the old value. Text typed into a panel that has only
    just opened can be lost (Playwright types within milliseconds, before the widget listens), so it is
    typed again if the server has not named it within a few seconds.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    widget = option_input(tab, name)
    if not widget.is_visible():
        tab.locator("#advanced").get_by_text("Advanced").click()
    named = tab.locator("#option_changes").get_by_text(f"{name} = {value}")
    for _ in range(RETYPES):
        widget.fill(value)
        try:
            named.wait_for(timeout=RETYPE_AFTER_MS)
            return
        except PlaywrightTimeout:
            widget.fill("")
    widget.fill(value)
    named.wait_for()


def test_no_face_at_the_panels_threshold_is_a_message(browser_page, photos: dict[str, Path]) -> None:
    tab = browser_page
    set_option(tab, "detection_threshold", str(NO_FACE_THRESHOLD))
    upload(tab, "target_file", photos["target"])
    tab.get_by_text(f"no face found in the target cameraman_portrait.png (detection threshold "
                    f"{NO_FACE_THRESHOLD})").wait_for()


def test_nsfw_verdict_is_a_message(browser_page, photos: dict[str, Path], nsfw_nsfw_model: Path) -> None:
    tab = browser_page
    set_option(tab, "nsfw_model", str(nsfw_nsfw_model))
    upload(tab, "source_files", photos["source"])
    upload(tab, "target_file", photos["target"])
    tab.locator("#target_faces button img").first.wait_for()
    tab.locator("#swap").click()
    tab.get_by_text(re.compile(r"classified as NSFW; nothing was written")).wait_for()
    assert tab.locator("#result_image img").count() == 0


def test_panel_names_changed_options_and_bad_values(browser_page) -> None:
    tab = browser_page
    changes = tab.locator("#option_changes")
    changes.get_by_text("all at their start-up values").wait_for()
    set_option(tab, "detection_max_size", "640")
    option_input(tab, "detection_max_size").fill("big")
    changes.get_by_text("detection_max_size needs a whole number, not 'big'").wait_for()
    option_input(tab, "detection_max_size").fill("")
    changes.get_by_text("all at their start-up values").wait_for()


def test_upload_over_the_limit_is_a_message(browser_page, tmp_path: Path) -> None:
    tab = browser_page
    big = tmp_path / "big.png"
    big.write_bytes(bytes(int(MAX_UPLOAD_MB * 1024 * 1024) + 1))
    upload(tab, "target_file", big)
    tab.get_by_text(re.compile(r"exceed the maximum allowed size.*big\.png")).wait_for()


def test_video_renders_and_plays(browser_page, photos: dict[str, Path]) -> None:
    tab = browser_page
    upload(tab, "source_files", photos["source"])
    upload(tab, "target_file", photos["clip"])
    tab.locator("#target_faces button img").nth(FACES_SHOWN - 1).wait_for()
    tab.locator("#swap").click()
    video = tab.locator("#result_video video")
    video.wait_for()
    duration = tab.wait_for_function("element => element.readyState >= 1 && element.duration > 0 && element.duration",
                                     arg=video.element_handle()).json_value()
    assert abs(duration - CLIP_FRAMES / CLIP_FPS) < 0.1
    tab.locator("#result_info").get_by_text(f"in {CLIP_FRAMES} of {CLIP_FRAMES} frame(s)").wait_for()
    assert tab.locator("#result_file a").first.get_attribute("href").endswith("/clip_swapped.mp4")


def test_video_over_the_limit_is_a_message(browser_page, photos: dict[str, Path]) -> None:
    tab = browser_page
    upload(tab, "target_file", photos["long_clip"])
    tab.get_by_text(re.compile(r"long_clip\.mp4 lasts .* longer than this page's limit")).wait_for()


def test_serves_on_localhost_only_and_cleans_up(gradio_available: None, page_options) -> None:
    from utils.webui.app import WebUI
    from utils.webui.settings import WebUISettings

    port = free_port()
    with WebUI(page_options, WebUISettings(port=port)) as page:
        assert urlparse(page.url).hostname == "127.0.0.1"
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # Any other address of this machine (127.0.0.2 reaches it too, on Linux) is refused.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", port), timeout=5).close()
        folder = page.workspace.root
        assert folder.is_dir()
    assert not folder.exists()
