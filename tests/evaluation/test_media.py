"""Frames of pictures and videos (PyAV), and the lossless result videos."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from utils.inference.media import MediaReadError
from utils.evaluation.media import LosslessVideoWriter, list_media, read_frames, video_fps


def random_frames(count: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    generator = np.random.default_rng(0)
    return [generator.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 12) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(stream.encode())
    return path


def test_an_mp4_is_read_frame_by_frame_with_step_and_limit(tmp_path: Path) -> None:
    clip = write_mp4(tmp_path / "clip.mp4", random_frames(5))
    frames = list(read_frames(clip))
    assert [index for index, _ in frames] == [0, 1, 2, 3, 4]
    assert all(frame.shape == (48, 64, 3) and frame.dtype == np.uint8 for _, frame in frames)
    assert [index for index, _ in read_frames(clip, step=2)] == [0, 2, 4]
    assert [index for index, _ in read_frames(clip, step=2, max_frames=2)] == [0, 2]
    assert video_fps(clip) == 12


def test_results_are_written_losslessly_and_only_when_complete(tmp_path: Path) -> None:
    frames = random_frames(3, 37, 51)  # odd sizes too
    path = tmp_path / "out" / "result.mkv"
    writer = LosslessVideoWriter(path, Fraction(25, 2))
    for frame in frames:
        writer.write(frame)
    assert not path.exists()
    assert writer.close() == path
    read = [frame for _, frame in read_frames(path)]
    assert len(read) == 3 and all(np.array_equal(a, b) for a, b in zip(frames, read))
    assert video_fps(path) == Fraction(25, 2)
    assert [item.name for item in path.parent.iterdir()] == ["result.mkv"]
    assert LosslessVideoWriter(tmp_path / "empty.mkv", Fraction(1)).close() is None


def test_a_broken_video_is_a_read_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(MediaReadError, match="broken.mp4"):
        list(read_frames(broken))


def test_media_listing_keeps_pictures_and_videos_of_the_folder_only(tmp_path: Path) -> None:
    for name in ("b.png", "a.mp4", "notes.txt", "sub/c.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in list_media(tmp_path)] == ["a.mp4", "b.png"]
    assert list_media(tmp_path / "b.png") == [tmp_path / "b.png"]
