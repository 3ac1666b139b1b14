"""The capture queue drops its oldest frame instead of growing; the frames/s limit; the test camera's stamps."""
from __future__ import annotations

import time

import numpy as np
import pytest

from utils.live.camera import CameraError, FrameListCamera, frame_number, open_camera, stamp_frame_number
from utils.live.capture import FrameGrabber
from utils.live.loop import RateLimiter


def grey_frames(count: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    return [np.full((size[1], size[0], 3), 128, np.uint8) for _ in range(count)]


@pytest.mark.parametrize("queue_size", [1, 2])
def test_a_slow_reader_gets_the_newest_frames_and_the_rest_are_counted(queue_size: int) -> None:
    camera = FrameListCamera(grey_frames(1), fps=400, repeat=200, stamp=True)
    grabber = FrameGrabber(camera, queue_size).start()
    taken, most_waiting = [], 0
    try:
        while True:
            most_waiting = max(most_waiting, grabber.waiting)
            frame = grabber.take(timeout=1.0)
            if frame is None:
                break
            taken.append(frame)
            time.sleep(0.02)  # a swap 8x slower than the camera
    finally:
        grabber.stop()
    assert grabber.ended and grabber.captured == 200
    assert most_waiting <= queue_size
    assert len(taken) + grabber.dropped == grabber.captured  # every frame is either swapped or counted
    assert grabber.dropped > 100
    numbers = [frame.number for frame in taken]
    assert numbers == sorted(numbers) and numbers[-1] == 199  # the last frame is never the one dropped
    assert [frame_number(frame.image) for frame in taken] == numbers
    assert all(later.captured_at >= earlier.captured_at for earlier, later in zip(taken, taken[1:]))


def test_an_error_of_the_camera_reaches_the_reader() -> None:
    class Broken:
        description, size, fps = "broken", (8, 8), 0.0

        def read(self):
            raise OSError("unplugged")

        def close(self) -> None:
            pass

    grabber = FrameGrabber(Broken(), 1).start()
    with pytest.raises(OSError, match="unplugged"):
        grabber.take(timeout=2.0)
    grabber.stop()


def test_rate_limiter_passes_two_of_three_frames_of_a_30_fps_camera_at_20() -> None:
    limiter = RateLimiter(20)
    times = [index / 30 for index in range(30)]
    assert sum(limiter.admit(at) for at in times) == 20
    assert all(RateLimiter(0).admit(at) for at in times)


def test_rate_limiter_does_not_catch_up_after_a_slow_swap() -> None:
    limiter = RateLimiter(10)
    assert limiter.admit(0.0)
    assert limiter.admit(1.0)  # the swap took a second: the next frame passes ...
    assert not limiter.admit(1.04)  # ... but no burst follows to make up for the lost ones
    assert limiter.admit(1.1)


def test_stamp_survives_lossy_coding() -> None:
    frame = np.full((32, 128, 3), 128, np.uint8)
    stamp_frame_number(frame, 12345)
    noisy = np.clip(frame.astype(np.int16) + np.random.default_rng(0).integers(-40, 40, frame.shape), 0, 255)
    assert frame_number(noisy.astype(np.uint8)) == 12345


def test_missing_cameras_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(CameraError, match=r"camera .*nothing_here does not exist"):
        open_camera(str(tmp_path / "nothing_here"))
    with pytest.raises(CameraError, match=r"cannot open camera 97 \(OpenCV index\)"):
        open_camera("97")
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video\n")
    with pytest.raises(CameraError, match="notes.mp4"):
        open_camera(str(not_a_video))


def test_a_video_file_plays_at_its_own_rate(tmp_path) -> None:
    from tests.video_clips import write_clip

    clip = write_clip(tmp_path / "clip.mp4", grey_frames(6), fps=20, audio_codec=None)
    camera = open_camera(str(clip))
    try:
        assert camera.size == (64, 48) and camera.fps == pytest.approx(20)
        start = time.monotonic()
        frames = []
        while (frame := camera.read()) is not None:
            frames.append(frame)
        elapsed = time.monotonic() - start
    finally:
        camera.close()
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3)
    assert elapsed >= 5 / 20 * 0.9  # paced like a camera, not decoded as fast as possible
