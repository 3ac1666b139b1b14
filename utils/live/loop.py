"""The live loop: take the newest camera frame, drop it if it is too old or over the frames/s limit, swap it, send
it to every output; count what was dropped and how long each shown frame took from capture to display.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from utils.live.capture import FrameGrabber
from utils.live.options import LiveOptions
from utils.live.outputs import FrameOutput
from utils.live.stream import FrameSwap

logger = logging.getLogger(__name__)

LATENCY_WINDOW = 1000  # latencies kept for the percentiles (the newest ones: memory stays flat on long streams)
TAKE_TIMEOUT = 0.1  # seconds the loop waits for a frame before it looks at the stop flags again
RATE_SLACK = 0.005  # seconds of camera timing jitter the frames/s limit forgives


class RateLimiter:
    """Lets frames through at ``fps`` at most (0: all), judged by their capture times, without catching up bursts.

    A 30 frames/s camera limited to 20 passes 2 frames of every 3, not 1 of 2.
    """

    def __init__(self, fps: float = 0.0) -> None:
        self.fps = fps
        self._due: float | None = None

    def admit(self, captured_at: float) -> bool:
        """Whether the frame captured at ``captured_at`` (monotonic seconds) may be swapped."""
        if not self.fps:
            return True
        if self._due is not None and captured_at < self._due - RATE_SLACK:
            return False
        interval = 1.0 / self.fps
        # The schedule may lag the clock by half an interval at most: after a slow swap no burst catches up.
        self._due = max(self._due or captured_at, captured_at - interval / 2) + interval
        return True


@dataclass
class LiveStats:
    """What a live stream did: frames seen, swapped, dropped (and why), and capture-to-display latencies."""

    frames_captured: int = 0
    frames_swapped: int = 0
    dropped_queue: int = 0  # replaced in the capture queue by a newer frame before the swap could take them
    dropped_late: int = 0  # older than the latency budget when their swap would have started
    dropped_rate: int = 0  # over the frames/s limit
    max_waiting: int = 0  # most frames ever waiting between camera and swap
    started_at: float = field(default_factory=time.monotonic)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    max_latency: float = 0.0
    stopped_by: str = ""
    files_written: dict[str, int] = field(default_factory=dict)  # recorded file -> frames in it

    @property
    def dropped(self) -> int:
        return self.dropped_queue + self.dropped_late + self.dropped_rate

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def fps(self) -> float:
        """Swapped frames per second since the start."""
        return self.frames_swapped / self.seconds if self.seconds > 0 else 0.0

    def record(self, latency: float) -> None:
        self.frames_swapped += 1
        self.latencies.append(latency)
        self.max_latency = max(self.max_latency, latency)

    def latency_ms(self, percentile: float) -> float:
        """A percentile (0-100) of the recent capture-to-display latencies, in milliseconds (0 before any)."""
        return float(np.percentile(np.asarray(self.latencies), percentile)) * 1000 if self.latencies else 0.0

    def summary(self) -> str:
        """One line: frames swapped and dropped, frames/s, latency (and the frames of each recorded file)."""
        files = "".join(f"; {frames} frame(s) written to {path}" for path, frames in self.files_written.items())
        return (f"{self.frames_swapped} frame(s) swapped of {self.frames_captured} captured, {self.dropped} dropped "
                f"({self.dropped_queue} replaced by newer ones, {self.dropped_late} too late, {self.dropped_rate} "
                f"over the frames/s limit); {self.fps:.1f} frames/s, latency median "
                f"{self.latency_ms(50):.0f} ms, p95 {self.latency_ms(95):.0f} ms, max {self.max_latency * 1000:.0f} ms"
                + files)


class LiveLoop:
    """Ties a :class:`FrameGrabber`, a frame swap and the outputs; ``stats`` stays readable after any stop."""

    def __init__(self, grabber: FrameGrabber, frame_swap: FrameSwap, outputs: Sequence[FrameOutput],
                 options: LiveOptions) -> None:
        self.grabber, self.frame_swap, self.outputs, self.options = grabber, frame_swap, list(outputs), options
        self.stats = LiveStats()
        self.rate = RateLimiter(options.fps)

    def run(self, stop: threading.Event | None = None) -> LiveStats:
        """Swap frames until ``stop`` is set, the duration is over, an output asks to stop, the camera ends or
        Ctrl+C; returns the stats (``stopped_by`` says why). Our errors (an NSFW frame) propagate after the
        stats are updated."""
        stats = self.stats
        stats.started_at = time.monotonic()
        try:
            while not stats.stopped_by:
                stats.stopped_by = self._step(stop)
        except KeyboardInterrupt:
            stats.stopped_by = "Ctrl+C"
        finally:
            self._update_counts()
            stats.stopped_by = stats.stopped_by or "an error"
        logger.debug("live stream stopped (%s): %s", stats.stopped_by, stats.summary())
        return stats

    def _step(self, stop: threading.Event | None) -> str:
        """One frame: taken, maybe dropped, else swapped and shown. Returns why to stop, or ''."""
        if stop is not None and stop.is_set():
            return "stop requested"
        duration = self.options.duration_seconds
        if duration is not None and self.stats.seconds >= duration:
            return f"{duration:g} s elapsed"
        stats = self.stats
        stats.max_waiting = max(stats.max_waiting, self.grabber.waiting)
        frame = self.grabber.take(TAKE_TIMEOUT)
        self._update_counts()
        if frame is None:
            return "camera ended or disconnected" if self.grabber.ended else ""
        if time.monotonic() - frame.captured_at > self.options.max_latency_ms / 1000:
            stats.dropped_late += 1
            return ""
        if not self.rate.admit(frame.captured_at):
            stats.dropped_rate += 1
            return ""
        swapped = self.frame_swap(frame.image, frame.seconds)
        for output in self.outputs:
            output.write(swapped, frame.seconds)
        stats.record(time.monotonic() - frame.captured_at)
        if any(output.stop_requested for output in self.outputs):
            return "the window was closed"
        return ""

    def _update_counts(self) -> None:
        self.stats.frames_captured = self.grabber.captured
        self.stats.dropped_queue = self.grabber.dropped
