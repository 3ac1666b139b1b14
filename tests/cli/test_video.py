"""inference.py on videos and on several faces, with PyAV-made clips and stand-ins whose outputs are known.

Clips (tests/video_clips.py) show a crop of an example photo, or coloured patches, moving over a grey
background, with a 440 Hz tone. tests/cli/fakes.py replaces the detector (a face = a blob on the background),
the embedder (identity = colour direction) and the generator (a flat square of the identity's colour), so a
test can tell which source replaced which face; one test runs the real stand-in models end to end.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import inference
from tests.cli.conftest import STANDIN_THRESHOLD, snapshot
from tests.cli.fakes import NSFWStub, PatchDetector, expected_colour_bgr, use_fakes
from tests.video_clips import (
    coloured_patch,
    compose,
    face_crop,
    read_clip,
    write_audio_only,
    write_clip,
    write_empty_video,
)
from utils.inference.options import SwapOptions
from utils.inference.run import swap_media
from utils.inference.selection import FaceSelection
from utils.inference.swap import FaceSwapper
from utils.inference.video import VideoOptions

RED, BLUE, GREEN, YELLOW, CYAN = (40, 40, 220), (220, 60, 40), (40, 200, 40), (30, 210, 230), (230, 220, 40)
FLAGS = ["--device", "cpu", "--paste_back_mode", "basic", "--no-enhance_output", "--no-inpaint_output",
         "--batch_size", "3"]


@pytest.fixture(scope="module")
def photo_face(example_images: dict[str, Path]) -> np.ndarray:
    return face_crop(example_images["astronaut"], 28)


def moving_face_frames(face: np.ndarray, count: int, size: tuple[int, int] = (96, 64)) -> list[np.ndarray]:
    return [compose(size, [(face, (8 + 5 * index, 16 + index))]) for index in range(count)]


def run(argv: list[str], capsys: pytest.CaptureFixture | None = None) -> tuple[int, list[str]]:
    code = inference.main([*FLAGS, *argv])
    errors = []
    if capsys is not None:
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    return code, errors


def source_image(folder: Path, colour: tuple[int, int, int], name: str) -> Path:
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), compose((64, 64), [(coloured_patch(colour, 24), (20, 20))]))
    return path


def centre(image: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """Mean BGR of the middle of the face whose top-left corner is (x, y) and side is s."""
    x, y, side = box
    quarter = side // 4
    return image[y + quarter:y + side - quarter, x + quarter:x + side - quarter].reshape(-1, 3).mean(axis=0)


# ------------------------------------------------------------------------------------------------ containers


CONTAINERS = {
    "h264_aac_mp4": {"extension": "mp4", "codec": "libx264", "audio_codec": "aac"},
    "vp9_opus_webm": {"extension": "webm", "codec": "libvpx-vp9", "audio_codec": "libopus"},
    "h264_flac_mkv": {"extension": "mkv", "codec": "libx264", "audio_codec": "flac"},
    "no_audio": {"extension": "mp4", "codec": "libx264", "audio_codec": None},
    "variable_frame_rate": {"extension": "mp4", "codec": "libx264", "audio_codec": "aac",
                            "times_ms": [0, 30, 100, 110, 190, 260]},
    "rotated_phone": {"extension": "mp4", "codec": "libx264", "audio_codec": "aac", "rotation": 90,
                      "size": (64, 96), "sample_aspect_ratio": Fraction(4, 3)},
    "one_frame": {"extension": "mp4", "codec": "libx264", "audio_codec": "aac", "frames": 1},
}


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_output_keeps_frames_timestamps_size_rotation_and_audio(
    name: str, photo_face: np.ndarray, example_images: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = dict(CONTAINERS[name])
    extension, frames = settings.pop("extension"), settings.pop("frames", 6)
    size = settings.pop("size", (96, 64))
    clip_path = write_clip(tmp_path / f"clip.{extension}", moving_face_frames(photo_face, frames, size), **settings)
    use_fakes(monkeypatch)
    output = tmp_path / "out" / f"swapped.{extension}"
    code, _ = run(["--source_file_path", str(example_images["cameraman"]), "--target_file_path", str(clip_path),
                   "--output_file_path", str(output)])
    assert code == 0
    source, result = read_clip(clip_path), read_clip(output)
    assert len(result.frames) == len(source.frames) == frames
    assert result.times == source.times
    assert (result.width, result.height, result.rotation) == (source.width, source.height, source.rotation)
    assert result.sample_aspect_ratio == source.sample_aspect_ratio
    assert result.video_codec == source.video_codec  # the container's default: H.264, VP9 for .webm
    if source.audio is None:
        assert result.audio is None
    else:
        assert result.audio_codec == source.audio_codec
        np.testing.assert_array_equal(result.audio, source.audio)  # copied, not re-encoded
    changed = [not np.allclose(a, b, atol=12) for a, b in zip(result.frames, source.frames)]
    assert all(changed)
    assert sorted(path.name for path in output.parent.iterdir()) == [output.name]  # no partial file left


def test_audio_the_output_container_cannot_hold_is_re_encoded(
    photo_face: np.ndarray, example_images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clip_path = write_clip(tmp_path / "clip.mp4", moving_face_frames(photo_face, 3))  # AAC, which WebM refuses
    use_fakes(monkeypatch)
    output = tmp_path / "swapped.webm"
    code, _ = run(["--source_file_path", str(example_images["cameraman"]), "--target_file_path", str(clip_path),
                   "--output_file_path", str(output)])
    assert code == 0
    result = read_clip(output)
    assert (result.video_codec, result.audio_codec) == ("vp9", "opus")
    assert "re-encoding it as libopus" in caplog.text


def test_no_keep_audio_drops_the_audio(photo_face: np.ndarray, example_images: dict[str, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clip_path = write_clip(tmp_path / "clip.mp4", moving_face_frames(photo_face, 2))
    use_fakes(monkeypatch)
    output = tmp_path / "silent.mp4"
    assert run(["--source_file_path", str(example_images["cameraman"]), "--target_file_path", str(clip_path),
                "--output_file_path", str(output), "--no-keep_audio"])[0] == 0
    assert read_clip(output).audio is None


def test_lossless_output_keeps_frames_without_a_face_pixel_for_pixel(
    photo_face: np.ndarray, example_images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = compose((96, 64), [])
    noisy = [np.clip(empty + np.random.default_rng(index).integers(-20, 20, empty.shape), 0, 255).astype(np.uint8)
             for index in range(3)]
    frames = moving_face_frames(photo_face, 3) + noisy
    clip_path = write_clip(tmp_path / "clip.mkv", frames, codec="ffv1", audio_codec="flac")
    use_fakes(monkeypatch)
    output = tmp_path / "lossless.mkv"
    assert run(["--source_file_path", str(example_images["cameraman"]), "--target_file_path", str(clip_path),
                "--output_file_path", str(output), "--video_codec", "ffv1"])[0] == 0
    source, result = read_clip(clip_path), read_clip(output)
    assert result.video_codec == "ffv1" and result.pix_fmt == source.pix_fmt
    for index in range(3):
        assert not np.array_equal(result.frames[index], source.frames[index])
    for index in range(3, 6):
        np.testing.assert_array_equal(result.frames[index], source.frames[index])


# ------------------------------------------------------------------------------------------------ several faces

FACE_SIDE = 24
FACES_AT = {"red": (16, 30), "blue": (112, 30), "green": (208, 30)}  # far apart: pasted squares do not overlap


def three_faces(shift: int = 0) -> np.ndarray:
    colours = {"red": RED, "blue": BLUE, "green": GREEN}
    return compose((256, 96), [(coloured_patch(colours[name], FACE_SIDE), (x + shift, y))
                               for name, (x, y) in FACES_AT.items()])


@pytest.fixture
def references(tmp_path: Path) -> dict[str, Path]:
    """Sources (yellow, cyan) and reference photos of the red and blue target faces."""
    folder = tmp_path / "people"
    folder.mkdir()
    return {"yellow": source_image(folder, YELLOW, "yellow"), "cyan": source_image(folder, CYAN, "cyan"),
            "red": source_image(folder, RED, "red_reference"), "blue": source_image(folder, BLUE, "blue_reference")}


def check_faces(image: np.ndarray, original: np.ndarray, expected: dict[str, tuple | None], shift: int = 0,
                tolerance: float = 0) -> None:
    """Each face's centre shows its expected source colour, or (None) is left as it was."""
    for name, colour in expected.items():
        x, y = FACES_AT[name]
        box = (x + shift, y, FACE_SIDE)
        if colour is None:
            np.testing.assert_allclose(centre(image, box), centre(original, box), atol=tolerance)
        else:
            painted = expected_colour_bgr(coloured_patch(colour, FACE_SIDE))
            np.testing.assert_allclose(centre(image, box), painted, atol=6 + tolerance)


@pytest.fixture
def three_faces_photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A picture of the red, blue and green faces; the stand-in models in place."""
    target = tmp_path / "three.png"
    cv2.imwrite(str(target), three_faces())
    use_fakes(monkeypatch)
    return target


def test_reference_faces_pick_which_source_replaces_which_face_in_an_image(
    references: dict[str, Path], three_faces_photo: Path, tmp_path: Path,
) -> None:
    target = three_faces_photo
    output = tmp_path / "swapped.png"
    assert run(["--source_file_path", str(references["yellow"]), str(references["cyan"]),
                "--target_faces_paths", str(references["red"]), str(references["blue"]),
                "--target_file_path", str(target), "--output_file_path", str(output)])[0] == 0
    check_faces(cv2.imread(str(output)), three_faces(), {"red": YELLOW, "blue": CYAN, "green": None})


def test_swap_all_faces_replaces_every_face_with_the_first_source(
    references: dict[str, Path], three_faces_photo: Path, tmp_path: Path,
) -> None:
    target = three_faces_photo
    output = tmp_path / "all.png"
    assert run(["--source_file_path", str(references["cyan"]), "--swap_all_faces", "--target_file_path", str(target),
                "--output_file_path", str(output)])[0] == 0
    check_faces(cv2.imread(str(output)), three_faces(), {"red": CYAN, "blue": CYAN, "green": CYAN})
    index_output = tmp_path / "index2.png"
    assert run(["--source_file_path", str(references["cyan"]), "--target_face_index", "2",
                "--target_file_path", str(target), "--output_file_path", str(index_output)])[0] == 0
    check_faces(cv2.imread(str(index_output)), three_faces(), {"red": None, "blue": None, "green": CYAN})


def test_reference_faces_in_a_video(references: dict[str, Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [three_faces(shift=2 * index) for index in range(5)]
    clip_path = write_clip(tmp_path / "three.mp4", frames)
    use_fakes(monkeypatch)
    output = tmp_path / "three_swapped.mp4"
    assert run(["--source_file_path", str(references["yellow"]), str(references["cyan"]),
                "--target_faces_paths", str(references["red"]), str(references["blue"]),
                "--target_file_path", str(clip_path), "--output_file_path", str(output)])[0] == 0
    source, result = read_clip(clip_path), read_clip(output)
    for index, (image, original) in enumerate(zip(result.frames, source.frames)):
        check_faces(image, original, {"red": YELLOW, "blue": CYAN, "green": None}, shift=2 * index, tolerance=4)


@pytest.mark.parametrize("problem, message", [
    ("lengths", "2 source image(s) but 1 reference face photo(s)"),
    ("faceless", "no face found in the reference photo"),
    ("two_sources", "several sources, give one --target_faces_paths photo per source"),
])
def test_sources_and_references_that_do_not_pair_give_one_error(
    problem: str, message: str, references: dict[str, Path], three_faces_photo: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    target = three_faces_photo
    faceless = tmp_path / "faceless.png"
    cv2.imwrite(str(faceless), compose((64, 64), []))
    sources = [str(references["yellow"]), str(references["cyan"])]
    argv = {"lengths": [*sources, "--target_faces_paths", str(references["red"])],
            "faceless": [sources[0], "--target_faces_paths", str(faceless)],
            "two_sources": sources}[problem]
    output = tmp_path / "out.png"
    code, errors = run(["--target_file_path", str(target), "--output_file_path", str(output),
                        "--source_file_path", *argv], capsys)
    assert code == 1 and len(errors) == 1 and message in errors[0]
    assert not output.exists()


# ------------------------------------------------------------------------------------------------ stability


def crop_steps(monkeypatch: pytest.MonkeyPatch, clip_path: Path, source: Path, tmp_path: Path,
               smooth_window: int) -> float:
    """Mean frame-to-frame change of the target crop matrix (scale-free part and translation) over a clip."""
    matrices: list[np.ndarray] = []
    align = FaceSwapper.align

    def recording_align(self, image, box, keypoints):
        face = align(self, image, box, keypoints)
        matrices.append(face.matrix)
        return face

    use_fakes(monkeypatch, detector=PatchDetector(jitter=1.0, seed=1))
    monkeypatch.setattr(FaceSwapper, "align", recording_align)
    swapper = FaceSwapper(SwapOptions(device="cpu", paste_back_mode="basic", enhance_output=False,
                                      inpaint_output=False))
    report = swap_media(swapper, [source], clip_path, tmp_path / f"smooth{smooth_window}.mp4",
                        video=VideoOptions(batch_size=4, smooth_window=smooth_window))
    target_matrices = np.array(matrices[1:])  # the first alignment is the source's
    assert len(target_matrices) == report.frames_swapped == 16
    return float(np.abs(np.diff(target_matrices, axis=0)).mean())


def test_smoothing_steadies_the_crop_of_a_jittery_detector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    face = coloured_patch(RED, 32)
    frames = [compose((128, 80), [(face, (10 + 4 * index, 20))]) for index in range(16)]
    clip_path = write_clip(tmp_path / "moving.mp4", frames, audio_codec=None)
    source = source_image(tmp_path, CYAN, "source")
    raw = crop_steps(monkeypatch, clip_path, source, tmp_path, smooth_window=0)
    smoothed = crop_steps(monkeypatch, clip_path, source, tmp_path, smooth_window=2)
    assert smoothed < 0.7 * raw, (raw, smoothed)


# ------------------------------------------------------------------------------------------------ safety, bad input


def test_a_flagged_frame_writes_nothing_and_frames_are_sampled(
    photo_face: np.ndarray, example_images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    clip_path = write_clip(tmp_path / "clip.mp4", moving_face_frames(photo_face, 10))  # 25 frames/s
    nsfw = NSFWStub()
    use_fakes(monkeypatch, nsfw=nsfw)
    argv = ["--source_file_path", str(example_images["cameraman"]), "--target_file_path", str(clip_path),
            "--nsfw_check_seconds", "0.1"]
    assert run([*argv, "--output_file_path", str(tmp_path / "ok.mp4")])[0] == 0
    # Frames 0, 3 (0.12 s), 6 (0.24 s), 9 (0.36 s): the targets, then the same outputs after the swap.
    checked = [what for what in nsfw.checked if "video frame" in what]
    assert sorted(checked) == sorted([f"target video frame {index}" for index in (0, 3, 6, 9)]
                                     + [f"swapped video frame {index}" for index in (0, 3, 6, 9)])
    for flagged in ("target video frame 6", "swapped video frame 9"):
        nsfw.flag = (flagged,)
        before = snapshot(tmp_path)
        output = tmp_path / "flagged.mp4"
        code, errors = run([*argv, "--output_file_path", str(output)], capsys)
        assert code == 1 and len(errors) == 1 and "NSFW" in errors[0]
        assert snapshot(tmp_path) == before  # nothing written, no partial file


@pytest.mark.parametrize("problem", ["truncated", "text", "no_frames", "audio_only", "output_is_input",
                                     "unwritable_folder"])
def test_bad_video_input_gives_one_line_and_no_output(
    problem: str, photo_face: np.ndarray, example_images: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    target = tmp_path / "input.mp4"
    output = tmp_path / "out" / "swapped.mp4"
    if problem in ("truncated", "output_is_input", "unwritable_folder"):
        write_clip(target, moving_face_frames(photo_face, 6))
    if problem == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[:len(data) // 2])
    elif problem == "text":
        target.write_text("this is not a video\n")
    elif problem == "no_frames":
        write_empty_video(target)
    elif problem == "audio_only":
        write_audio_only(target)
    elif problem == "output_is_input":
        output = target
    elif problem == "unwritable_folder":
        (tmp_path / "a_file").write_text("a file where the output folder should be\n")
        output = tmp_path / "a_file" / "swapped.mp4"
    use_fakes(monkeypatch)
    before = snapshot(tmp_path)
    code, errors = run(["--source_file_path", str(example_images["cameraman"]), "--target_file_path", str(target),
                        "--output_file_path", str(output)], capsys)
    assert code == 1 and len(errors) == 1, errors
    expected = {"truncated": "input.mp4", "text": "not a supported image or video", "no_frames": "no video frames",
                "audio_only": "audio only", "output_is_input": "is an input file",
                "unwritable_folder": "is a file, not a folder"}[problem]
    assert expected in errors[0]
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------ folders


def test_a_folder_tree_of_images_and_videos(
    photo_face: np.ndarray, example_images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tree = tmp_path / "shots"
    (tree / "day1").mkdir(parents=True)
    cv2.imwrite(str(tree / "still.png"), moving_face_frames(photo_face, 1)[0])
    write_clip(tree / "day1" / "clip.mp4", moving_face_frames(photo_face, 3))
    (tree / "day1" / "broken.mp4").write_text("not a video\n")
    (tree / "notes.txt").write_text("not media\n")
    detector, _ = use_fakes(monkeypatch)
    output = tmp_path / "swapped"
    argv = ["--source_file_path", str(example_images["cameraman"]), "--target_folder", str(tree),
            "--output_folder", str(output)]
    assert run(argv)[0] == 1  # broken.mp4 failed (logged, skipped); the rest is written
    written = sorted(str(path.relative_to(output)) for path in output.rglob("*") if path.is_file())
    assert written == ["day1/clip.mp4", "still.png"]
    assert len(read_clip(output / "day1" / "clip.mp4").frames) == 3
    assert "2 file(s) written (4 frame(s), 4 face(s) swapped)" in caplog.text and "1 failed" in caplog.text
    seen = detector.images_seen
    caplog.clear()
    assert run(argv)[0] == 1
    assert "2 already present" in caplog.text and detector.images_seen == seen  # only broken.mp4 was tried
    assert run([*argv, "--overwrite"])[0] == 1
    assert detector.images_seen > seen


# ------------------------------------------------------------------------------------------------ real stand-ins


def test_the_stand_in_models_run_a_video_end_to_end(
    standin_weights: Path, normal_nsfw_model: Path, photo_face: np.ndarray, example_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    """RetinaFace, FAN, the embedder, AEI-Net and GFPGAN (batched) with stand-in weights, ghost paste-back."""
    clip_path = write_clip(tmp_path / "clip.mp4", moving_face_frames(photo_face, 3))
    options = SwapOptions(weights_dir=str(standin_weights), device="cpu", detection_threshold=STANDIN_THRESHOLD,
                          detection_max_size=160, nsfw_model=str(normal_nsfw_model), enhance_output=True,
                          inpaint_output=False)
    progress: list[tuple[int, int | None]] = []
    report = swap_media(FaceSwapper(options), [example_images["cameraman"]], clip_path, tmp_path / "out.mp4",
                        FaceSelection(), VideoOptions(batch_size=2), lambda done, total: progress.append((done, total)))
    assert (report.kind, report.frames) == ("video", 3)
    assert report.faces_swapped == report.frames_swapped == 3
    assert progress[-1] == (3, 3)
    assert {"detect", "generate", "enhance", "paste", "read", "write"} <= set(report.timings)
    assert len(read_clip(tmp_path / "out.mp4").frames) == 3


def test_video_frames_keep_the_weights_and_hand_them_back_at_the_end(
    standin_weights: Path, normal_nsfw_model: Path, photo_face: np.ndarray, example_images: dict[str, Path],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--release_weights releases after the source's stages and once at the end, never per frame: a longer clip
    makes no more release calls, and afterwards the generator holds no resident weight pages."""
    import utils.inference.model_set as model_set_module
    from utils.checkpoint import release_weight_pages, resident_mapped_bytes

    calls: list[int] = []

    def counted_release(module):
        calls.append(1)
        return release_weight_pages(module)

    monkeypatch.setattr(model_set_module, "release_weight_pages", counted_release)
    options = SwapOptions(weights_dir=str(standin_weights), device="cpu", detection_threshold=STANDIN_THRESHOLD,
                          detection_max_size=160, nsfw_model=str(normal_nsfw_model), paste_back_mode="basic",
                          enhance_output=False, inpaint_output=False)
    swapper = FaceSwapper(options)
    counts = []
    for frames in (2, 6):
        clip_path = write_clip(tmp_path / f"clip{frames}.mp4", moving_face_frames(photo_face, frames))
        calls.clear()
        report = swap_media(swapper, [example_images["cameraman"]], clip_path, tmp_path / f"out{frames}.mp4",
                            FaceSelection(), VideoOptions(batch_size=1))
        assert report.frames_swapped == frames
        counts.append(len(calls))
        assert resident_mapped_bytes(swapper.generator) == 0
    assert counts[0] == counts[1] > 0
