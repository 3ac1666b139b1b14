"""A running page: its private folder, its models and its local server; closing it stops all three.

Gradio is told to keep everything local: no share link, no analytics or version check, no MCP server,
its uploads in the page's own temporary folder (GRADIO_TEMP_DIR, read when Gradio builds its app).
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Self

from utils.errors import GhostError
from utils.inference.model_cache import ModelCache
from utils.inference.options import SwapOptions
from utils.inference.video import VideoOptions
from utils.webui.service import SwapService
from utils.webui.settings import WebUISettings
from utils.webui.workspace import Workspace

logger = logging.getLogger(__name__)

# Environment variables Gradio reads, set while a page runs (and put back when it stops).
GRADIO_ENVIRONMENT = {"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": None}
MEGABYTE = 1024 * 1024


class WebUI:
    """The page over the swap pipeline: ``with WebUI(options, settings) as page: page.url ...``.

    ``options`` and ``video`` are the start-up options (the advanced panel's initial values); ``models`` may be a
    shared ModelCache (tests reuse loaded models).
    """

    def __init__(self, options: SwapOptions, settings: WebUISettings | None = None, video: VideoOptions | None = None,
                 models: ModelCache | None = None) -> None:
        self.options = options
        self.video = video or VideoOptions()
        self.settings = settings or WebUISettings()
        self.models = models
        self.workspace: Workspace | None = None
        self.service: SwapService | None = None
        self.blocks = None
        self.url: str | None = None
        self._saved_environment: dict[str, str | None] = {}

    def start(self) -> str:
        """Create the folder, build the page and serve it; returns the page's address."""
        self.workspace = Workspace()
        values = {**GRADIO_ENVIRONMENT, "GRADIO_TEMP_DIR": str(self.workspace.uploads)}
        self._saved_environment = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            self._serve()
        except BaseException as error:  # Ctrl+C while starting too: stop the server thread, remove the folder
            self.close()
            if isinstance(error, OSError):
                raise GhostError(f"cannot serve the page on {self.settings.host}:{self.settings.port}: "
                                 f"{error}") from error
            raise
        self.url = self.blocks.local_url
        logger.info("serving %s (files in %s)", self.url, self.workspace.root)
        return self.url

    def _serve(self) -> None:
        from utils.webui.layout import CSS, build_page

        self.service = SwapService(self.options, self.settings, self.workspace, self.video, self.models)
        self.blocks = build_page(self.service)
        self.blocks.queue(default_concurrency_limit=1)
        self.blocks.launch(
            server_name=self.settings.host, server_port=self.settings.port, share=False, inbrowser=False,
            prevent_thread_lock=True, quiet=True, show_error=False, enable_monitoring=False, mcp_server=False,
            pwa=False, ssr_mode=False, css=CSS, max_file_size=int(self.settings.max_upload_mb * MEGABYTE),
            allowed_paths=[str(self.workspace.root)],
        )

    def wait(self) -> None:
        """Block until interrupted (Ctrl+C raises KeyboardInterrupt here)."""
        threading.Event().wait()

    def close(self) -> None:
        """Stop the server and remove the page's folder with every upload and result."""
        if self.blocks is not None:
            self.blocks.close()
            self.blocks = None
        if self.service is not None:
            self.service.live.close()
        self.service = None
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
