"""The page's live streams without a browser: one per browser session, reopened when the settings change, closed
for good by Stop (a late frame of the stopped run does not reopen it), frames/s changeable between frames."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from utils.webui.live import FRAMES_KEPT, LiveSessions, LiveSettings


class FakeStream:
    def __init__(self, settings: LiveSettings) -> None:
        self.settings, self.frames, self.closed = settings, 0, False

    def swap(self, image: np.ndarray, seconds: float) -> np.ndarray:
        self.frames += 1
        output = image.copy()
        output[:8, :8] = (0, 0, 255)  # red in BGR
        return output

    def close(self) -> None:
        self.closed = True


def settings(source: str = "a.png") -> LiveSettings:
    return LiveSettings((source,), ("face", 0), (("detection_max_size", 640),), 1)


@pytest.fixture
def sessions(tmp_path: Path) -> tuple[LiveSessions, list[FakeStream]]:
    opened: list[FakeStream] = []

    def open_stream(live_settings: LiveSettings) -> FakeStream:
        opened.append(FakeStream(live_settings))
        return opened[-1]

    return LiveSessions(open_stream, tmp_path / "live"), opened


def frame() -> np.ndarray:
    return np.full((48, 64, 3), 100, np.uint8)  # RGB, as the browser sends it


def test_frames_come_back_as_files_and_stop_cleans_up(sessions) -> None:
    live, opened = sessions
    run = object()
    session = live.session("browser", settings(), run)
    paths = [session.swap(frame(), fps=0) for _ in range(FRAMES_KEPT + 3)]
    assert len(opened) == 1 and opened[0].frames == FRAMES_KEPT + 3
    saved = cv2.imread(str(paths[-1]), cv2.IMREAD_COLOR)
    assert tuple(saved[0, 0]) == (0, 0, 255) and tuple(saved[20, 20]) == (100, 100, 100)  # lossless, BGR on disk
    assert sum(path.exists() for path in paths) == FRAMES_KEPT  # older frames are deleted as new ones come
    assert live.session("browser", settings(), run) is session  # same run, same settings: same stream
    stats = live.stop("browser")
    assert stats.frames_swapped == FRAMES_KEPT + 3 and opened[0].closed and live.open_count == 0
    assert not any(path.exists() for path in paths) and not session.folder.exists()
    # A frame the page sends after Stop, from the run that was stopped, does not open a new stream ...
    assert live.session("browser", settings(), run) is None and len(opened) == 1
    # ... while the next Record (a new run) does.
    assert live.session("browser", settings(), object()) is not None and len(opened) == 2
    live.close()
    assert opened[1].closed


def test_new_settings_open_a_new_stream_and_frames_per_second_apply_at_once(sessions) -> None:
    live, opened = sessions
    run = object()
    first = live.session("browser", settings("a.png"), run)
    second = live.session("browser", settings("b.png"), run)
    assert second is not first and opened[0].closed and not opened[1].closed
    assert second.swap(frame(), fps=1) is not None
    assert second.swap(frame(), fps=1) is None  # 1 frame/s: the next frame, a moment later, is skipped
    assert second.swap(frame(), fps=0) is not None  # the limit lifted between two frames: it passes
    assert second.stats.dropped_rate == 1 and second.stats.frames_swapped == 2
    assert "2 swapped; dropped: 1 by the frames/s limit, about " in second.describe(1 / 30)
    other = live.session("another browser", settings("a.png"), object())
    assert live.open_count == 2 and other is not second
    live.close()
    assert all(stream.closed for stream in opened)
