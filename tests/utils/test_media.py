"""What a target file is (probed from its content) and how its frames come out of the decoder."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.video_clips import (
    coloured_patch,
    compose,
    write_audio_only,
    write_clip,
    write_empty_video,
)
from utils.inference.media import MediaReadError, decode_frames, open_video, probe_media


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = [compose((64, 48), [(coloured_patch((40, 40, 220), 16), (4 * index, 8))]) for index in range(3)]
    return write_clip(tmp_path_factory.mktemp("media") / "clip.mp4", frames)


def test_images_and_videos_are_told_apart_by_content(clip: Path, tmp_path: Path) -> None:
    picture = tmp_path / "picture.png"
    cv2.imwrite(str(picture), np.zeros((8, 8, 3), np.uint8))
    assert probe_media(picture) == "image"
    assert probe_media(clip) == "video"
    disguised_picture, disguised_video = tmp_path / "picture.mp4", tmp_path / "clip.png"
    shutil.copy(picture, disguised_picture)
    shutil.copy(clip, disguised_video)
    assert probe_media(disguised_picture) == "image"
    assert probe_media(disguised_video) == "video"


@pytest.mark.parametrize("problem, message", [
    ("missing", "no such file"), ("empty", "empty"), ("text", "not a supported image or video"),
    ("audio", "audio only"), ("folder", "folder"),
])
def test_unusable_targets_name_the_file_and_the_reason(tmp_path: Path, problem: str, message: str) -> None:
    path = tmp_path / "target.mp4"
    if problem == "empty":
        path.write_bytes(b"")
    elif problem == "text":
        path.write_text("not a video\n")
    elif problem == "audio":
        write_audio_only(tmp_path / "target.m4a")
        path = tmp_path / "target.m4a"
    elif problem == "folder":
        path.mkdir()
    with pytest.raises(MediaReadError, match=message) as error:
        probe_media(path)
    assert path.name in str(error.value)


@pytest.mark.parametrize("extension", ["mp4", "mkv"])
def test_a_video_without_frames_is_an_error(tmp_path: Path, extension: str) -> None:
    path = write_empty_video(tmp_path / f"empty.{extension}")
    with pytest.raises(MediaReadError, match="no video frames|not a supported image or video") as error:
        probe_media(path)
    assert path.name in str(error.value)


def test_frames_come_out_upright_with_their_times(tmp_path: Path) -> None:
    # A phone-style clip: stored sideways with a 90° display rotation.
    stored = compose((48, 64), [(coloured_patch((40, 40, 220), 12), (4, 40))])
    path = write_clip(tmp_path / "phone.mp4", [stored, stored], rotation=90, times_ms=[0, 70])
    container, info = open_video(path)
    with container:
        frames = list(decode_frames(container, info, path))
    assert (info.width, info.height) == (48, 64)
    assert [frame.rotation for frame in frames] == [90, 90]
    assert frames[0].image.shape == (48, 64, 3)  # upright: the stored frame turned 90° counter-clockwise
    np.testing.assert_allclose(frames[0].image, np.rot90(frames[0].frame.to_ndarray(format="bgr24")), atol=0)
    assert [round(frame.seconds, 3) for frame in frames] == [0.0, 0.07]
