"""The capture thread: reads the camera as fast as it delivers, keeps at most ``queue_size`` frames, and drops the
oldest when a newer frame arrives and the queue is full. So a slow swap never builds a backlog: it always gets the
newest frames, and every frame it never saw is counted.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from utils.live.camera import Camera

logger = logging.getLogger(__name__)

STOP_JOIN_SECONDS = 2.0  # a camera blocked in read() longer than this is left to its daemon thread


@dataclass(frozen=True)
class CapturedFrame:
    """One camera frame and when it arrived."""

    image: np.ndarray  # H×W×3 uint8 BGR
    number: int  # 0-based capture order, dropped frames included
    captured_at: float  # time.monotonic() when the camera returned it
    seconds: float  # since the first frame (the stream's clock)


class FrameGrabber:
    """Runs ``camera.read()`` in a thread into a bounded queue that drops its oldest frame.

    ``take()`` hands the oldest waiting frame to the swap loop; ``captured`` and ``dropped`` count frames read and
    frames discarded unread. ``ended`` turns true once the camera returns no more frames (end of a file, a
    disconnected device). ``stop()`` ends the thread; the caller closes the camera afterwards.
    """

    def __init__(self, camera: Camera, queue_size: int) -> None:
        self.camera = camera
        self.captured = 0
        self.dropped = 0
        self.ended = False
        self.error: BaseException | None = None
        self._frames: deque[CapturedFrame] = deque()
        self._queue_size = queue_size
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._start_time: float | None = None
        self._thread = threading.Thread(target=self._run, name="live-capture", daemon=True)

    def start(self) -> FrameGrabber:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                image = self.camera.read()
                now = time.monotonic()
                if image is None:
                    break
                if self._start_time is None:
                    self._start_time = now
                self._put(CapturedFrame(image, self.captured, now, now - self._start_time))
        except BaseException as error:  # noqa: BLE001 - re-raised in the swap loop by take()
            self.error = error
        with self._ready:
            self.ended = True
            self._ready.notify_all()

    def _put(self, frame: CapturedFrame) -> None:
        with self._ready:
            if len(self._frames) >= self._queue_size:
                self._frames.popleft()  # the oldest: a newer frame is worth more than a complete sequence
                self.dropped += 1
            self._frames.append(frame)
            self.captured += 1
            self._ready.notify_all()

    @property
    def waiting(self) -> int:
        """Frames in the queue now (never more than ``queue_size``)."""
        with self._ready:
            return len(self._frames)

    def take(self, timeout: float | None = None) -> CapturedFrame | None:
        """The oldest waiting frame; waits up to ``timeout`` seconds. None on a timeout or once the camera ended.

        Re-raises an error the camera raised in the capture thread.
        """
        with self._ready:
            self._ready.wait_for(lambda: self._frames or self.ended, timeout)
            if self._frames:
                return self._frames.popleft()
        if self.error is not None:
            raise self.error
        return None

    def stop(self) -> None:
        """End the capture thread (it finishes the read in progress)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_JOIN_SECONDS)
            if self._thread.is_alive():
                logger.warning("the camera did not return within %.0f s; leaving it to close with the process",
                               STOP_JOIN_SECONDS)
