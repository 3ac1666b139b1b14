"""The page's live streams, one per browser session: frames from the browser's camera go through a LiveStream and
come back as files the page shows. No Gradio here (utils/webui/live_tab.py wires it).

Gradio's streaming webcam keeps at most one frame in flight: while a frame is being swapped the browser does not
send another, and the server only ever takes the newest. So nothing queues and the delay is one swap plus the
transfer. The frames/s limit, which the user can move while the stream runs, skips frames on the server; skipped
frames are counted and shown.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from utils.errors import GhostError
from utils.live.loop import LiveStats, RateLimiter
from utils.live.stream import LiveStream

logger = logging.getLogger(__name__)

FRAMES_KEPT = 8  # swapped frames kept on disk per stream: the browser fetches each a moment after it is sent
PNG_COMPRESSION = 1  # fast PNG: the page shows exactly the swapped pixels, without a second lossy coding


@dataclass(frozen=True)
class LiveSettings:
    """What a live stream swaps with; a change (another source face, ...) opens a new stream."""

    source_paths: tuple[str, ...]
    selection: Hashable
    changes: tuple[tuple[str, Hashable], ...]
    enhance_every: int


class LiveSession:
    """One browser's stream: its LiveStream, frames/s limit, counters and the last frames written.

    ``run`` identifies the page's stream event that opened it (each click on Record starts a new one).
    """

    def __init__(self, stream: LiveStream, settings: LiveSettings, folder: Path, run: object) -> None:
        self.stream, self.settings, self.folder, self.run = stream, settings, folder, run
        self.stats = LiveStats()
        self.rate = RateLimiter()
        self._files: deque[Path] = deque()
        self._lock = threading.Lock()  # a frame being swapped finishes before the stream closes
        self.closed = False

    def swap(self, rgb_frame: np.ndarray, fps: float) -> Path | None:
        """Swap one H×W×3 uint8 RGB browser frame; the PNG file of the result, or None when ``fps`` skips it.

        Raises the stream's GhostErrors (an NSFW frame).
        """
        received = time.monotonic()
        stats = self.stats
        with self._lock:
            if self.closed:
                return None
            stats.frames_captured += 1
            self.rate.fps = fps
            if not self.rate.admit(received):
                stats.dropped_rate += 1
                return None
            return self._swap(rgb_frame, received)

    def _swap(self, rgb_frame: np.ndarray, received: float) -> Path:
        stats = self.stats
        swapped = self.stream.swap(np.ascontiguousarray(rgb_frame[:, :, ::-1]), received - stats.started_at)
        path = self.folder / f"frame_{stats.frames_swapped:08d}.png"
        if not cv2.imwrite(str(path), swapped, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]):
            raise GhostError(f"cannot write the live frame {path}")
        self._files.append(path)
        while len(self._files) > FRAMES_KEPT:
            self._files.popleft().unlink(missing_ok=True)
        stats.record(time.monotonic() - received)
        return path

    def describe(self, offer_interval: float) -> str:
        """The status line under the stream; the browser offers a frame every ``offer_interval`` seconds.

        Frames the browser did not send because a swap was running never reach the server; their number is
        estimated from the time the stream has run.
        """
        stats = self.stats
        not_sent = max(0, round(stats.seconds / offer_interval) - stats.frames_captured)
        return (f"**{stats.fps:.1f} frames/s** · swap latency median {stats.latency_ms(50):.0f} ms, p95 "
                f"{stats.latency_ms(95):.0f} ms · {stats.frames_swapped} swapped; dropped: {stats.dropped_rate} "
                f"by the frames/s limit, about {not_sent} not sent while a swap ran")

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._close()
        logger.info("live stream stopped: %s", self.stats.summary())

    def _close(self) -> None:
        try:
            self.stream.close()
        finally:
            while self._files:
                self._files.popleft().unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.folder.rmdir()


class LiveSessions:
    """The open live streams of a page, by browser session; ``open_stream(settings)`` builds a LiveStream."""

    def __init__(self, open_stream: Callable[[LiveSettings], LiveStream], folder: Path) -> None:
        self.open_stream = open_stream
        self.folder = folder
        self._sessions: dict[str, LiveSession] = {}
        self._stopped_runs: dict[str, object] = {}  # browser session -> the stream run stopped last
        self._lock = threading.Lock()

    def session(self, key: str, settings: LiveSettings, run: object) -> LiveSession | None:
        """The stream of browser session ``key``, (re)opened when it has none or its settings changed.

        None for a frame of a ``run`` already stopped: the page may deliver one last frame after its Stop.
        """
        with self._lock:
            current = self._sessions.get(key)
            if self._stopped_runs.get(key) is run:
                return None
        if current is not None and current.settings == settings and not current.closed:
            return current
        if current is not None:
            logger.info("live settings changed: opening a new stream")
            self._close(key, stopped=False)
        folder = self.folder / f"live_{abs(hash(key)):x}_{time.monotonic_ns():x}"
        folder.mkdir(parents=True)
        session = LiveSession(self.open_stream(settings), settings, folder, run)
        with self._lock:
            self._sessions[key] = session
        return session

    def stop(self, key: str) -> LiveStats | None:
        """Close the stream of browser session ``key`` (if any) for good: later frames of its run are ignored."""
        return self._close(key, stopped=True)

    def refuse(self, key: str, run: object) -> None:
        """End ``run`` of browser session ``key`` after an error (an NSFW frame, no source face): its stream, if
        one opened, is closed, and its later frames are ignored instead of opening it again for each frame."""
        self.stop(key)
        with self._lock:
            self._stopped_runs[key] = run

    def _close(self, key: str, stopped: bool) -> LiveStats | None:
        with self._lock:
            session = self._sessions.pop(key, None)
            if session is not None and stopped:
                self._stopped_runs[key] = session.run
        if session is None:
            return None
        session.close()
        return session.stats

    def open_sessions(self) -> list[LiveSession]:
        """The streams open now."""
        with self._lock:
            return list(self._sessions.values())

    @property
    def open_count(self) -> int:
        return len(self.open_sessions())

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()
