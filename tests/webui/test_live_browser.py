"""The live tab in headless Chromium with a fake camera (a .y4m clip the test writes), on stand-in weights.

Chromium's fake capture device plays the clip as the webcam; Gradio's streaming webcam sends its frames to the
page's server, which swaps them and sends them back. The tests check what holds for any weights: swapped frames
come back into the page, pixels outside the swapped face are the camera's, the frames/s control acts while the
stream runs, stopping the camera frees the models' queue slot, and an NSFW frame stops the stream with a message.
"""
from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.video_clips import compose, face_crop
from tests.webui.conftest import BROWSER_TIMEOUT_MS, FACES_SHOWN, launch_chromium
from tests.webui.test_browser import set_option, upload
from utils.webui.live import LiveSession
from utils.webui.live_tab import DEFAULT_DETECTION_SIZE

CLIP_SIZE, CLIP_FPS, FACE_SIZE = (320, 240), 10, 96
JPEG_TOLERANCE = 6.0  # mean absolute difference the browser's JPEG coding of a camera frame may add
REGION_MARGIN = 10  # pixels around the aligned face's square a paste-back may blend into


def write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """An uncompressed YUV 4:2:0 clip Chromium's fake camera plays (and loops)."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            file.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> tuple[Path, np.ndarray]:
    """The clip and its frame (H×W×3 BGR): the astronaut's face on the grey background, still."""
    face = face_crop(example_images["astronaut"], FACE_SIZE)
    frame = compose(CLIP_SIZE, [(face, ((CLIP_SIZE[0] - FACE_SIZE) // 2, (CLIP_SIZE[1] - FACE_SIZE) // 2))])
    return write_y4m(tmp_path_factory.mktemp("camera") / "clip.y4m", [frame, frame], CLIP_FPS), frame


@pytest.fixture(scope="module")
def camera_browser(playwright_driver, camera_clip: tuple[Path, np.ndarray]) -> Iterator:
    """Headless Chromium whose webcam is the clip (the camera permission granted without a prompt)."""
    browser = launch_chromium(playwright_driver, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                              f"--use-file-for-fake-video-capture={camera_clip[0]}")
    yield browser
    browser.close()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Every frame the server swaps: (RGB frame received, BGR frame returned, file name sent to the page)."""
    frames: list[tuple[np.ndarray, np.ndarray, str]] = []
    swap = LiveSession.swap

    def recording_swap(self, rgb_frame, fps):
        path = swap(self, rgb_frame, fps)
        if path is not None:
            frames.append((rgb_frame.copy(), cv2.imread(str(path), cv2.IMREAD_COLOR), path.name))
        return path

    monkeypatch.setattr(LiveSession, "swap", recording_swap)
    return frames


def open_live_tab(browser, url: str, source: Path):
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    context.grant_permissions(["camera"])
    tab = context.new_page()
    tab.set_default_timeout(BROWSER_TIMEOUT_MS)
    tab.goto(url)
    return context, tab


def start_camera(tab, source: Path) -> None:
    tab.get_by_role("tab", name="Live camera").click()
    upload(tab, "live_source_files", source)
    tab.locator("#live_source_faces button img").nth(FACES_SHOWN - 1).wait_for()
    tab.locator("#live_camera").get_by_text("Click to Access Webcam").click()
    tab.locator("#live_camera").get_by_text("Record").click()


def stop_camera(tab) -> None:
    tab.locator("#live_camera").get_by_text("Stop").click()


def displayed_frame(tab, image) -> tuple[str, np.ndarray]:
    """The ``src`` of an ``<img>`` and its pixels as the page decoded them (H×W×3 uint8 BGR), read together."""
    source, data_url = tab.evaluate("""image => {
        const canvas = document.createElement('canvas');
        canvas.width = image.naturalWidth;
        canvas.height = image.naturalHeight;
        canvas.getContext('2d').drawImage(image, 0, 0);
        return [image.src, canvas.toDataURL('image/png')];
    }""", image.element_handle())
    png = base64.b64decode(data_url.split(",", 1)[1])
    return source, cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def swapped_region(swapper, image: np.ndarray) -> np.ndarray:
    """H×W bool: the square of face 0's aligned crop in ``image`` (BGR), grown by REGION_MARGIN pixels."""
    face = swapper.stages.detect.frames([image], upscale=False)[0][0]  # as the stream detects
    aligned = swapper.align(image, np.asarray(face.box, np.float32), np.asarray(face.keypoints, np.float32))
    size = aligned.face.shape[0]
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    inverse = cv2.invertAffineTransform(aligned.matrix)
    polygon = corners @ inverse[:, :2].T + inverse[:, 2]
    region = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(region, [np.round(polygon).astype(np.int32)], 1)
    return cv2.dilate(region, np.ones((2 * REGION_MARGIN + 1,) * 2, np.uint8)).astype(bool)


def test_live_frames_come_back_swapped_and_stopping_frees_the_queue(
        camera_browser, served_page, camera_clip, photos_for_live, recorded, page_options) -> None:
    from utils.inference.swap import FaceSwapper

    _, camera_frame = camera_clip
    context, tab = open_live_tab(camera_browser, served_page.url, photos_for_live["source"])
    other = None
    try:
        posted = []  # the browser's frame uploads (Gradio posts each stream chunk to .../stream/<event id>)
        tab.on("request", lambda request: posted.append(request.url) if "/stream/" in request.url
               and request.method == "POST" and not request.url.endswith("/close") else None)
        start_camera(tab, photos_for_live["source"])
        output = tab.locator("#live_output img")
        output.wait_for()
        tab.locator("#live_status").get_by_text("not sent while a swap ran").wait_for()
        assert served_page.service.live.open_count == 1, tab.locator("body").inner_text()[-2000:]

        # The frame shown is the server's swapped frame, pixel for pixel (PNG): read back from the page itself.
        tab.wait_for_function("element => element.complete && element.naturalWidth > 0", arg=output.element_handle())
        source, shown = displayed_frame(tab, output)
        received, returned = next((frame, swapped) for frame, swapped, name in recorded if source.endswith(name))
        assert np.array_equal(shown, returned)
        # What the server received is the camera's frame (mirrored like a selfie view, JPEG-coded by the browser).
        received_bgr = np.ascontiguousarray(received[:, :, ::-1])
        assert received.shape == camera_frame.shape
        assert np.abs(received_bgr.astype(int) - camera_frame[:, ::-1].astype(int)).mean() < JPEG_TOLERANCE
        # The face was swapped, and every pixel outside it is the camera's.
        region = swapped_region(FaceSwapper(replace(page_options, detection_max_size=DEFAULT_DETECTION_SIZE)),
                                received_bgr)
        changed = np.any(shown != received_bgr, axis=2)
        assert changed.sum() > 500
        assert not changed[~region].any()

        # No backlog anywhere: the browser sends a frame only when the server has taken the last one.
        (session,) = served_page.service.live.open_sessions()
        received_before, posted_before = session.stats.frames_captured, len(posted)
        time.sleep(4.0)
        received, sent = session.stats.frames_captured - received_before, len(posted) - posted_before
        assert sent <= received + 2, (sent, received)

        # The frames/s control acts while the stream runs.
        tab.locator("#live_fps input[type=number]").fill("1")
        tab.locator("#live_fps input[type=number]").press("Enter")
        deadline = time.monotonic() + BROWSER_TIMEOUT_MS / 1000
        while session.rate.fps != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert session.rate.fps == 1  # the next frame the server took came with the new limit
        before = len(recorded)
        time.sleep(4.0)
        assert len(recorded) - before <= 4 + 1

        # While the camera runs it holds the models' queue slot: another visitor's upload waits for it.
        other, other_tab = open_live_tab(camera_browser, served_page.url, photos_for_live["source"])
        upload(other_tab, "target_file", photos_for_live["target"])
        time.sleep(3.0)
        assert other_tab.locator("#target_faces button img").count() == 0
        stop_camera(tab)
        tab.locator("#live_status").get_by_text("Camera off. Last stream").wait_for()
        assert served_page.service.live.open_count == 0
        other_tab.locator("#target_faces button img").first.wait_for(timeout=60_000)  # the slot is free again
        assert not list((served_page.workspace.uploads / "live").glob("*/*.png"))  # the stream's frames are gone
    finally:
        if other is not None:
            other.close()
        context.close()


def test_nsfw_frame_stops_the_stream_with_a_message(camera_browser, served_page, photos_for_live,
                                                     nsfw_nsfw_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []
    open_live_stream = served_page.service.open_live_stream
    monkeypatch.setattr(served_page.service.live, "open_stream",
                        lambda settings: (opened.append(settings), open_live_stream(settings))[1])
    context, tab = open_live_tab(camera_browser, served_page.url, photos_for_live["source"])
    try:
        set_option(tab, "nsfw_model", str(nsfw_nsfw_model))
        start_camera(tab, photos_for_live["source"])
        tab.locator("#live_status").get_by_text(re.compile(r"Stopped: .* classified as NSFW")).wait_for()
        assert served_page.service.live.open_count == 0
        # The stream stays stopped: the page keeps sending frames until the camera is stopped, and none of them
        # opens the stream again (one message, no loop of reloads and refusals).
        time.sleep(5.0)
        assert len(opened) == 1 and served_page.service.live.open_count == 0
        assert tab.locator("#live_output img").count() == 0
        assert tab.get_by_text(re.compile("classified as NSFW")).count() == 2  # the message and the status line
    finally:
        context.close()


@pytest.fixture(scope="module")
def photos_for_live(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("live_photos")
    target = folder / "cameraman_small.png"
    cameraman = cv2.imread(str(example_images["cameraman"]), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(target), cv2.resize(cameraman, (160, 160), interpolation=cv2.INTER_AREA))
    return {"source": example_images["astronaut"], "target": target}
