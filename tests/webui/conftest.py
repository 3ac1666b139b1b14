"""Fixtures of the browser tests: the page served in-process on stand-in weights, and headless Chromium.

The browser is Debian's chromium (/usr/bin/chromium, which .ci/run installs) driven by Playwright for Python;
Playwright never downloads a browser of its own. Outside CI a machine without it (or without Gradio or Playwright)
skips these tests, saying what to install; under CI=true a missing browser or package fails them.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import STANDIN_THRESHOLD
from utils.inference.options import SwapOptions

CHROMIUM = Path(os.environ.get("GHOSTV2_CHROMIUM", "/usr/bin/chromium"))
FACES_SHOWN = 4  # stand-in weights find hundreds of faces: show the 4 best
MAX_VIDEO_SECONDS = 1.0
MAX_UPLOAD_MB = 1.0  # above the example photos (under 0.8 MB)
BROWSER_TIMEOUT_MS = 240_000  # model loading and a CPU swap on 2 shared cores


def missing(what: str, install: str) -> None:
    """Skip for ``what`` outside CI; fail under CI=true, where the test command must provide it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing under CI=true; install it with: {install}")
    pytest.skip(f"{what} is missing (install it with: {install}) to run the browser tests")


def free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save screenshots: $GHOSTV2_TEST_ARTIFACTS, else a temporary folder (never the repository)."""
    folder = os.environ.get("GHOSTV2_TEST_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def gradio_available() -> None:
    try:
        import gradio  # noqa: F401
    except ImportError:
        missing("the gradio package", "python -m pip install --no-deps -r requirements-webui.txt")


@pytest.fixture(scope="module")
def page_options(standin_weights: Path, normal_nsfw_model: Path) -> SwapOptions:
    """Start-up options of the page under test: stand-in weights, the cheapest models, no GFPGAN or SDXL.

    Detection at the pictures' own size (not scaled up to 1280 pixels) keeps the small test pictures cheap.
    """
    return SwapOptions(weights_dir=str(standin_weights), device="cpu", detection_threshold=STANDIN_THRESHOLD,
                       detection_max_size=None,
                       nsfw_model=str(normal_nsfw_model), face_embeddings="facenet", paste_back_mode="basic",
                       enhance_output=False, inpaint_output=False)


@pytest.fixture(scope="module")
def served_page(gradio_available: None, page_options: SwapOptions) -> Iterator:
    """The page served in this process on a free port (default host), stopped after the module."""
    from utils.webui.app import WebUI
    from utils.webui.settings import WebUISettings

    settings = WebUISettings(port=free_port(), max_faces_shown=FACES_SHOWN, max_video_seconds=MAX_VIDEO_SECONDS,
                             max_upload_mb=MAX_UPLOAD_MB)
    with WebUI(page_options, settings) as page:
        yield page


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator:
    """Playwright's driver, once per session (its sync API cannot be started twice at a time)."""
    if not CHROMIUM.exists():
        missing(f"the browser {CHROMIUM}", "apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package", "python -m pip install -r requirements-test.txt")
    with sync_playwright() as playwright:
        yield playwright


def launch_chromium(playwright_driver, *arguments: str):
    """Headless Debian chromium with extra command-line ``arguments``."""
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    return playwright_driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", *arguments])


@pytest.fixture(scope="session")
def chromium(playwright_driver) -> Iterator:
    """Headless Debian chromium under Playwright."""
    browser = launch_chromium(playwright_driver)
    yield browser
    browser.close()


@pytest.fixture
def browser_page(chromium, served_page) -> Iterator:
    """A fresh browser tab on the served page, with every requested URL recorded in ``tab.requested``."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(BROWSER_TIMEOUT_MS)
    tab.requested = []
    tab.on("request", lambda request: tab.requested.append(request.url))
    tab.goto(served_page.url)
    yield tab
    context.close()
