"""run_live with a camera faster than the swap: nothing queues, delay and memory stay bounded, every frame is
counted, and the recorded file decodes after any stop (end of the camera, Ctrl+C, an NSFW verdict)."""
from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest

from utils.errors import NSFWContentError
from utils.live.camera import FrameListCamera, frame_number
from utils.live.options import LiveOptions
from utils.live.run import run_live

SIZE = (96, 64)  # width, height
CAMERA_FPS = 200
SWAP_SECONDS = 0.04  # 8x slower than the camera


class SlowSwap:
    """Stands in for a FrameStream: takes ``seconds`` per frame and paints a white square (the "face")."""

    def __init__(self, seconds: float = SWAP_SECONDS, fail_at: int | None = None,
                 error: BaseException | None = None) -> None:
        self.seconds, self.fail_at, self.error = seconds, fail_at, error
        self.frames_in: list[int] = []
        self.closed = False

    def swap(self, image: np.ndarray, seconds: float) -> np.ndarray:
        if self.fail_at is not None and len(self.frames_in) == self.fail_at:
            raise self.error
        self.frames_in.append(frame_number(image))
        time.sleep(self.seconds)
        output = image.copy()
        output[24:56, 32:64] = 255
        return output

    def close(self) -> None:
        self.closed = True


def camera(frames: int, fps: float = CAMERA_FPS) -> FrameListCamera:
    image = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    return FrameListCamera([image], fps=fps, repeat=frames, stamp=True)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def test_a_fast_camera_and_a_slow_swap_drop_frames_and_keep_the_delay_bounded(tmp_path: Path) -> None:
    output = tmp_path / "live.mp4"
    swap = SlowSwap()
    options = LiveOptions(output_file_path=str(output), max_latency_ms=1000)
    tracemalloc.start()
    try:
        stats = run_live(options, lambda: swap, camera(600))  # 3 s of camera
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.stopped_by == "camera ended or disconnected"
    assert swap.closed
    assert stats.files_written == {str(output): stats.frames_swapped}  # the summary says what the file holds
    # Every captured frame was swapped or counted as dropped (the queue was empty at the end).
    assert stats.frames_captured == 600
    assert stats.frames_swapped + stats.dropped == stats.frames_captured
    assert stats.dropped_queue > 400 and stats.frames_swapped == len(swap.frames_in)
    # Nothing piled up: at most one frame waited, and each frame was shown within one swap of its capture.
    assert stats.max_waiting <= options.queue_size
    assert stats.latency_ms(95) < (SWAP_SECONDS + 0.06) * 1000
    # Memory: a backlog of 600 frames would take 11 MB; the loop keeps a few frames and the encoder's buffers.
    assert peak < 4 * 1024 * 1024
    # The file decodes: one frame per swapped frame, in camera order, with the swap's square and the camera's
    # pixels elsewhere (H.264 at CRF 20: within a few levels).
    frames = decoded(output)
    assert len(frames) == stats.frames_swapped
    numbers = [frame_number(frame) for frame in frames]
    assert numbers == swap.frames_in and numbers == sorted(numbers) and numbers[-1] >= 598
    assert np.abs(frames[-1][30:50, 38:58].astype(int) - 255).max() < 8
    assert np.abs(frames[-1][8:, :24].astype(int) - 128).max() < 8


def test_latency_budget_and_frames_per_second_limit(tmp_path: Path) -> None:
    # Two frames queue; a swap of 0.15 s makes the second one older than a 0.1 s budget: it is dropped.
    swap = SlowSwap(seconds=0.15)
    stats = run_live(LiveOptions(output_file_path=str(tmp_path / "a.mkv"), queue_size=2, max_latency_ms=100),
                     lambda: swap, camera(200, fps=100))
    assert stats.dropped_late > 0
    assert stats.max_latency < 0.1 + 0.15 + 0.05
    # A 100 frames/s camera limited to 10 frames/s for 1.5 s.
    swap = SlowSwap(seconds=0.0)
    stats = run_live(LiveOptions(output_file_path=str(tmp_path / "b.mkv"), fps=10), lambda: swap,
                     camera(150, fps=100))
    assert 13 <= stats.frames_swapped <= 17 and stats.dropped_rate >= 130
    assert len(decoded(tmp_path / "b.mkv")) == stats.frames_swapped


def test_the_file_is_playable_after_ctrl_c(tmp_path: Path) -> None:
    output = tmp_path / "stopped.mp4"
    swap = SlowSwap(seconds=0.01, fail_at=5, error=KeyboardInterrupt())
    stats = run_live(LiveOptions(output_file_path=str(output)), lambda: swap, camera(1000, fps=50))
    assert stats.stopped_by == "Ctrl+C" and stats.frames_swapped == 5 and swap.closed
    assert stats.files_written == {str(output): 5}
    assert [frame_number(frame) for frame in decoded(output)] == swap.frames_in


def test_an_nsfw_frame_stops_the_stream_and_leaves_no_file(tmp_path: Path) -> None:
    output = tmp_path / "stopped.mp4"
    error = NSFWContentError("the camera frame at 0.1 s was classified as NSFW; nothing was written")
    swap = SlowSwap(seconds=0.01, fail_at=5, error=error)
    with pytest.raises(NSFWContentError, match="classified as NSFW"):
        run_live(LiveOptions(output_file_path=str(output)), lambda: swap, camera(1000, fps=50))
    assert swap.closed and not output.exists()


def test_duration_and_stop_event(tmp_path: Path) -> None:
    swap = SlowSwap(seconds=0.0)
    start = time.monotonic()
    stats = run_live(LiveOptions(output_file_path=str(tmp_path / "d.mp4"), duration_seconds=0.5), lambda: swap,
                     camera(10_000, fps=50))
    assert stats.stopped_by == "0.5 s elapsed" and time.monotonic() - start < 2.0
    assert 15 <= stats.frames_swapped <= 30
