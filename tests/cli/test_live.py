"""live.py: bad input is one line and a non-zero exit; a video file as the camera, on stand-in weights, records a
file that decodes and a summary that counts every frame."""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import av
import pytest

import live
from tests.cli.conftest import NO_FACE_THRESHOLD, STANDIN_THRESHOLD
from tests.video_clips import compose, face_crop, write_clip
from tests.conftest import REPO_ROOT

CLIP_FRAMES, CLIP_FPS = 8, 10


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> Path:
    face = face_crop(example_images["astronaut"], 40)
    frames = [compose((128, 96), [(face, (20 + 4 * index, 24))]) for index in range(CLIP_FRAMES)]
    return write_clip(tmp_path_factory.mktemp("camera") / "camera.mp4", frames, fps=CLIP_FPS, audio_codec=None)


def model_flags(weights: Path, nsfw_model: Path, threshold: float = STANDIN_THRESHOLD) -> list[str]:
    return ["--weights_dir", str(weights), "--device", "cpu", "--nsfw_model", str(nsfw_model), "--face_embeddings",
            "facenet", "--paste_back_mode", "basic", "--detection_threshold", str(threshold),
            "--detection_max_size", "-1"]


def error_lines(capsys: pytest.CaptureFixture) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_a_camera_that_does_not_exist(capsys, example_images, tmp_path) -> None:
    source = str(example_images["astronaut"])
    assert live.main(["--source_file_path", source, "--camera", str(tmp_path / "video9")]) == 1
    assert error_lines(capsys) == [f"error: camera {tmp_path / 'video9'} does not exist (give an OpenCV index such "
                                   "as 0, a device path such as /dev/video0, a stream URL or a video file)"]
    assert live.main(["--source_file_path", source, "--camera", "97"]) == 1
    assert error_lines(capsys) == ["error: cannot open camera 97 (OpenCV index) (no camera with that index, or it "
                                   "is in use)"]


def test_a_camera_that_does_not_exist_through_a_subprocess(example_images, tmp_path) -> None:
    result = subprocess.run([sys.executable, str(REPO_ROOT / "live.py"), "--source_file_path",
                             str(example_images["astronaut"]), "--camera", str(tmp_path / "video9")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: camera {tmp_path / 'video9'} does not exist (give an OpenCV "
                                          "index such as 0, a device path such as /dev/video0, a stream URL or a "
                                          "video file)"]


def test_virtual_camera_without_its_package_or_backend(capsys, monkeypatch, example_images, camera_clip) -> None:
    argv = ["--source_file_path", str(example_images["astronaut"]), "--camera", str(camera_clip), "--virtual_camera"]
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # not installed
    assert live.main(argv) == 1
    assert error_lines(capsys) == ["error: --virtual_camera needs the pyvirtualcam package, which is not installed: "
                                   "python -m pip install -r requirements-live.txt"]

    def no_device(*arguments, **keywords):
        raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99].")

    fake = types.SimpleNamespace(Camera=no_device, PixelFormat=types.SimpleNamespace(BGR="BGR"))
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)  # installed, but no v4l2loopback device
    from utils.live.outputs import LiveOutputError, VirtualCameraOutput

    with pytest.raises(LiveOutputError, match=r"^no virtual camera backend: 'v4l2loopback' backend: No v4l2 "
                                              r"loopback device found .*modprobe v4l2loopback"):
        VirtualCameraOutput(64, 48, 30)


def test_a_source_photo_without_a_face(capsys, tmp_path, example_images, camera_clip, standin_weights,
                                       normal_nsfw_model) -> None:
    output = tmp_path / "live.mp4"
    argv = ["--source_file_path", str(example_images["astronaut"]), "--camera", str(camera_clip), "--no-window",
            "--output_file_path", str(output), *model_flags(standin_weights, normal_nsfw_model, NO_FACE_THRESHOLD)]
    assert live.main(argv) == 1
    errors = [line for line in error_lines(capsys) if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: no face found in the source")
    assert not output.exists()


def test_a_video_file_as_the_camera_records_a_playable_file(capsys, tmp_path, example_images, camera_clip,
                                                             standin_weights, normal_nsfw_model) -> None:
    output = tmp_path / "live.mp4"
    argv = ["--source_file_path", str(example_images["astronaut"]), "--camera", str(camera_clip), "--no-window",
            "--output_file_path", str(output), "--max_latency_ms", "5000",
            *model_flags(standin_weights, normal_nsfw_model)]
    assert live.main(argv) == 0
    captured = capsys.readouterr()
    summary = captured.out.strip().splitlines()[-1]
    assert summary.startswith("stopped (camera ended or disconnected): ")
    swapped = int(summary.split(": ")[1].split(" frame(s) swapped of ")[0])
    assert f"swapped of {CLIP_FRAMES} captured" in summary and swapped >= 1
    assert summary.endswith(f"; {swapped} frame(s) written to {output}")
    with av.open(str(output)) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    assert len(frames) == swapped and frames[0].shape == (96, 128, 3)
