"""The camera, pacing and output settings of a live swap, each default written once (live.py's flags come from it).

How frames are swapped (smoothing, NSFW sampling, GFPGAN every Nth frame) is utils.inference.stream.StreamOptions.
"""
from __future__ import annotations

from dataclasses import dataclass

from utils.errors import GhostError

# live.py's defaults for swap options that cost latency: detection at a 640 px long side (not 1280) without
# scaling smaller frames up, no GFPGAN unless asked (then see --enhance_every), no SDXL inpainting (not run on
# stream frames).
LIVE_SWAP_DEFAULTS = {"detection_max_size": 640, "detection_upscale": False, "enhance_output": False,
                      "inpaint_output": False}
MAX_QUEUE_SIZE = 2  # frames waiting for the swap: more would only add delay (Deep-Live-Cam keeps 2)


class LiveOptionsError(GhostError):
    """A live setting out of range, or no output chosen."""


@dataclass(frozen=True)
class LiveOptions:
    """How frames are captured, paced and shown or written; field names are live.py's flags.

    ``camera`` is an OpenCV index (``0``), a device path (``/dev/video2``), a stream URL or a video file (played
    at its own rate, as a camera would deliver it).
    """

    camera: str = "0"
    camera_width: int | None = None  # asked of the camera; it may deliver another size
    camera_height: int | None = None
    fps: float = 0.0  # most frames swapped per second; 0: as many as the swap manages
    max_latency_ms: float = 500.0  # a frame older than this when its swap would start is dropped
    queue_size: int = 1  # frames kept between camera and swap; the oldest is dropped when it is full
    window: bool = False
    virtual_camera: bool = False
    output_file_path: str | None = None
    duration_seconds: float | None = None  # stop after this long (None: until Ctrl+C or the camera ends)

    def __post_init__(self) -> None:
        if self.fps < 0:
            raise LiveOptionsError(f"--fps must be 0 (no limit) or positive; got {self.fps}")
        if self.max_latency_ms <= 0:
            raise LiveOptionsError(f"--max_latency_ms must be positive; got {self.max_latency_ms}")
        if not 1 <= self.queue_size <= MAX_QUEUE_SIZE:
            raise LiveOptionsError(f"--queue_size must be 1 or {MAX_QUEUE_SIZE}; got {self.queue_size}")
        if self.duration_seconds is not None and self.duration_seconds <= 0:
            raise LiveOptionsError(f"--duration_seconds must be positive; got {self.duration_seconds}")
        for name in ("camera_width", "camera_height"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise LiveOptionsError(f"--{name} must be positive; got {getattr(self, name)}")

    @property
    def has_output(self) -> bool:
        return self.window or self.virtual_camera or self.output_file_path is not None


LIVE_HELP = {
    "camera": "camera to read: an OpenCV index (0), a device path (/dev/video2), a stream URL (rtsp://..., "
              "http://...) or a video file (played at its own frame rate, like a camera)",
    "camera_width": "frame width to ask the camera for [default: the camera's]",
    "camera_height": "frame height to ask the camera for [default: the camera's]",
    "fps": "most frames swapped per second; camera frames in between are dropped (0: as many as the swap manages)",
    "max_latency_ms": "latency budget: a camera frame older than this when its swap would start is dropped "
                      "(counted), so the output never shows a frame later than this plus one swap",
    "queue_size": "camera frames waiting for the swap (1 or 2); when full the oldest is dropped, never queued",
    "window": "show the swapped frames in a window (q or Esc stops; the default when no other output is given)",
    "virtual_camera": "send the swapped frames to a virtual camera (pyvirtualcam: v4l2loopback on Linux, OBS on "
                      "Windows and macOS)",
    "output_file_path": "also write the swapped frames to this video file (.mp4, .mkv, .webm); it stays playable "
                        "after Ctrl+C or a camera disconnect",
    "duration_seconds": "stop after this many seconds [default: run until Ctrl+C or the camera ends]",
}
