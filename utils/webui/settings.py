"""Settings of the web page itself (address, refusal limits), each default written once; webui.py's flags come from it."""
from __future__ import annotations

from dataclasses import dataclass

from utils.errors import GhostError

LOCAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class WebUISettings:
    """Where the page is served and what it refuses; field names are webui.py's flags."""

    host: str = LOCAL_HOST
    port: int = 7860
    max_upload_mb: float = 200.0
    max_video_seconds: float = 300.0
    max_faces_shown: int = 24

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_video_seconds", "max_faces_shown"):
            if getattr(self, name) <= 0:
                raise GhostError(f"--{name} must be positive; got {getattr(self, name)}")


WEBUI_HELP = {
    "host": "address to listen on; only this machine can reach the page unless you give e.g. 0.0.0.0",
    "port": "port to listen on",
    "max_upload_mb": "largest file the page accepts, in megabytes",
    "max_video_seconds": "longest target video the page accepts, in seconds",
    "max_faces_shown": "most faces shown per picture to pick from (the best-scoring ones, numbered in CLI order)",
}
