"""evaluate.py end to end with stand-in weights: photos, a short generated video, two generators, re-scoring.

Cost control: every run of this module shares one ModelCache (models and per-picture detections, so each
picture is detected once) through the same patch as tests/cli/test_inference.py; the main generator is
conditioned on FaceNet (the smallest stand-in); the video, comparison and no-face runs ask only for the metrics
they are about, with FaceNet as their identity model, on pictures already detected where possible. The swaps use the
insightface paste-back, which pastes the whole square (with stand-in landmarks the ghost mask can be empty).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from fractions import Fraction
from io import StringIO
from pathlib import Path

import cv2
import numpy as np
import pytest

import evaluate
import utils.inference.swap
from tests.cli.conftest import NO_FACE_THRESHOLD, STANDIN_THRESHOLD, snapshot
from utils.evaluation.media import LosslessVideoWriter, read_frames
from utils.evaluation.options import METRIC_NAMES
from utils.inference.model_cache import ModelCache

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_CACHE = ModelCache()
VIDEO_FRAMES = 3


@pytest.fixture(scope="module", autouse=True)
def shared_models() -> Iterator[None]:
    """One cache for the module (module-scoped: the shared photo run is a module fixture too)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(utils.inference.swap, "ModelCache", lambda: SHARED_CACHE)
        yield


def write_clip(path: Path, still: np.ndarray) -> Path:
    """A lossless 3-frame clip at 10 fps: ``still``, the same again, then shifted right by 4 pixels."""
    writer = LosslessVideoWriter(path, Fraction(10))
    for frame in (still, still, np.roll(still, 4, axis=1)):
        writer.write(frame)
    return writer.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> dict[str, Path]:
    """sources/ (astronaut, cameraman), targets/ (a cameraman crop), clips/ (a 3-frame clip of that crop)."""
    root = tmp_path_factory.mktemp("evaluation_inputs")
    for name in ("sources", "targets", "clips"):
        (root / name).mkdir()
    photos = {name: cv2.imread(str(path)) for name, path in example_images.items()}
    for name, photo in photos.items():
        cv2.imwrite(str(root / "sources" / f"{name}.png"), cv2.resize(photo, (112, 112), interpolation=cv2.INTER_AREA))
    portrait = cv2.resize(photos["cameraman"][:, 64:448], (96, 128), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "targets" / "portrait.png"), portrait)
    write_clip(root / "clips" / "drift.mkv", portrait)  # its first frames are the portrait: detected once
    return {name: root / name for name in ("sources", "targets", "clips")} | {"root": root}


@pytest.fixture(scope="module")
def swap_flags(standin_weights: Path, normal_nsfw_model: Path) -> list[str]:
    return ["--weights_dir", str(standin_weights), "--device", "cpu", "--detection_threshold", str(STANDIN_THRESHOLD),
            "--nsfw_model", str(normal_nsfw_model), "--face_embeddings", "facenet", "--paste_back_mode", "insightface",
            "--no-enhance_output", "--no-inpaint_output"]


def run(capsys: pytest.CaptureFixture, *flags: str) -> str:
    assert evaluate.main(list(flags)) == 0
    return capsys.readouterr().out


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def photo_run(inputs: dict[str, Path], swap_flags: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both sources into the portrait with every metric; the table printed and the output folder."""
    output = tmp_path_factory.mktemp("photo_run")
    buffer = StringIO()  # capsys is per test; this run is shared by several
    with redirect_stdout(buffer):
        code = evaluate.main(["--sources", str(inputs["sources"]), "--targets", str(inputs["targets"]),
                              "--output_dir", str(output), *swap_flags])
    assert code == 0
    return {"output": output, "table": buffer.getvalue()}


def test_photos_give_table_csv_json_and_picture(photo_run: dict, inputs: dict[str, Path]) -> None:
    output, table = photo_run["output"], photo_run["table"]
    rows = read_rows(output / "pairs.csv")
    assert [(row["source"], row["target"], row["frame"]) for row in rows] == [
        ("astronaut.png", "portrait.png", "0"), ("cameraman.png", "portrait.png", "0")]
    summary = json.loads((output / "summary.json").read_text())
    assert list(summary) == list(METRIC_NAMES)
    for name in ("id_similarity", "id_retrieval", "pose_error", "expression_error", "eye_error", "outside_face_change"):
        assert summary[name]["count"] == 2, name
        values = [float(row[name]) for row in rows]
        assert summary[name]["mean"] == pytest.approx(np.mean(values), rel=1e-4, abs=1e-6)
        assert summary[name]["std"] == pytest.approx(np.std(values), rel=1e-3, abs=1e-5)
    assert summary["temporal_flicker"] == {"mean": None, "std": None, "count": 0}  # pictures only
    assert {float(row["id_retrieval"]) for row in rows} <= {0.0, 100.0}
    # The insightface paste-back keeps the target beyond its blur reach, which the margin covers.
    assert summary["outside_face_change"]["mean"] == 0.0
    picture = cv2.imread(str(output / "worst_pairs.png"))
    assert picture is not None and picture.shape[0] >= 6 * 96
    for name in ("astronaut__portrait.png", "cameraman__portrait.png"):
        swapped = cv2.imread(str(output / "swapped" / name))
        assert swapped.shape == cv2.imread(str(inputs["targets"] / "portrait.png")).shape
    for name in METRIC_NAMES:
        assert name in table
    assert "identity measured with adaface" in table  # not facenet, the generator's own identity model
    assert "HifiFace 98.48" in table and "GHOST not found" in table
    assert not any(path.name.endswith(".partial") for path in output.rglob("*"))


def test_rescoring_the_written_results_gives_the_same_numbers(
    photo_run: dict, inputs: dict[str, Path], swap_flags: list[str], tmp_path: Path, capsys
) -> None:
    before = snapshot(inputs["root"])
    table = run(capsys, "--sources", str(inputs["sources"]), "--targets", str(inputs["targets"]),
                "--swapped_dir", str(photo_run["output"] / "swapped"), "--output_dir", str(tmp_path),
                "--eye_landmarks_model_path", str(tmp_path / "absent.safetensors"), *swap_flags)
    assert snapshot(inputs["root"]) == before
    original, rescored = read_rows(photo_run["output"] / "pairs.csv"), read_rows(tmp_path / "pairs.csv")
    for first, second in zip(original, rescored, strict=True):
        for name in ("id_similarity", "id_retrieval", "pose_error", "expression_error", "outside_face_change"):
            assert float(second[name]) == pytest.approx(float(first[name]), rel=1e-4, abs=1e-5), name
        assert second["eye_error"] == ""
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["eye_error"]["count"] == 0 and "download_all_models.sh" in summary["eye_error"]["unavailable"]
    missing = [line for line in table.splitlines() if line.startswith("eye_error: not computed")]
    assert len(missing) == 1 and "download_all_models.sh" in missing[0]
    assert not (tmp_path / "swapped").exists()


def test_a_video_counts_frame_by_frame(photo_run: dict, inputs: dict[str, Path], swap_flags: list[str],
                                       tmp_path: Path, capsys) -> None:
    table = run(capsys, "--sources", str(inputs["sources"] / "cameraman.png"), "--targets", str(inputs["clips"]),
                "--output_dir", str(tmp_path), "--metrics", "id_similarity", "outside_face_change",
                "temporal_flicker", "--eval_face_embeddings", "facenet", *swap_flags)
    rows = read_rows(tmp_path / "pairs.csv")
    assert [row["frame"] for row in rows] == [str(index) for index in range(VIDEO_FRAMES)]
    # Frame 1 repeats frame 0: the same swap, so no flicker at all; frame 2 moved.
    assert rows[0]["temporal_flicker"] == "" and float(rows[1]["temporal_flicker"]) == 0.0
    assert float(rows[2]["temporal_flicker"]) >= 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["id_similarity"]["count"] == VIDEO_FRAMES
    assert summary["temporal_flicker"]["count"] == VIDEO_FRAMES - 1
    assert "pose_error" not in summary
    assert "temporal_flicker" in table and "pose_error" not in table
    written = [frame for _, frame in read_frames(tmp_path / "swapped" / "cameraman__drift.mkv")]
    assert len(written) == VIDEO_FRAMES
    # A video frame is swapped exactly like the same picture (and written losslessly).
    np.testing.assert_array_equal(written[0], cv2.imread(str(photo_run["output"] / "swapped" / "cameraman__portrait.png")))
    np.testing.assert_array_equal(written[1], written[0])
    assert cv2.imread(str(tmp_path / "worst_pairs.png")) is not None


def test_two_generators_side_by_side(inputs: dict[str, Path], swap_flags: list[str], standin_weights: Path,
                                     tmp_path: Path, capsys) -> None:
    ghostv1 = standin_weights / "GhostV1" / "G_unet_2blocks.safetensors"
    table = run(capsys, "--sources", str(inputs["sources"] / "astronaut.png"), "--targets", str(inputs["targets"]),
                "--output_dir", str(tmp_path), "--metrics", "id_similarity", "--eval_face_embeddings", "facenet",
                "--compare_G_path", f"{ghostv1}:align_mode=insightface_v1", *swap_flags)
    labels = ["GhostV2_G_unet_2blocks", "GhostV1_G_unet_2blocks"]
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert list(comparison) == labels
    header = table.splitlines()[0]
    assert header.index(labels[0]) < header.index(labels[1])
    for label in labels:
        assert comparison[label]["id_similarity"]["count"] == 1
        assert len(read_rows(tmp_path / label / "pairs.csv")) == 1
        assert json.loads((tmp_path / label / "summary.json").read_text()) == comparison[label]
    # Different generators, different pictures.
    first, second = (cv2.imread(str(tmp_path / label / "swapped" / "astronaut__portrait.png")) for label in labels)
    assert not np.array_equal(first, second)


def test_pose_and_expression_error_with_the_restorer_off_and_at_80(
    inputs: dict[str, Path], swap_flags: list[str], tmp_path: Path, capsys
) -> None:
    table = run(capsys, "--sources", str(inputs["sources"] / "astronaut.png"), "--targets", str(inputs["targets"]),
                "--output_dir", str(tmp_path), "--metrics", "pose_error", "expression_error",
                "--compare_expression_restorer", "80", *swap_flags)
    labels = ["GhostV2_G_unet_2blocks", "GhostV2_G_unet_2blocks_expression_80"]
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert list(comparison) == labels
    header = table.splitlines()[0]
    assert header.index(labels[0]) < header.index(labels[1])
    for label in labels:
        for name in ("pose_error", "expression_error"):
            assert comparison[label][name]["count"] == 1 and comparison[label][name]["mean"] >= 0, (label, name)
    # The restorer re-renders the face: another picture, other errors.
    off, restored = (cv2.imread(str(tmp_path / label / "swapped" / "astronaut__portrait.png")) for label in labels)
    assert not np.array_equal(off, restored)
    assert comparison[labels[0]]["expression_error"] != comparison[labels[1]]["expression_error"]


def test_frames_without_a_face_are_skipped_and_counted(inputs: dict[str, Path], swap_flags: list[str],
                                                        tmp_path: Path, capsys) -> None:
    table = run(capsys, "--sources", str(inputs["sources"] / "astronaut.png"), "--targets", str(inputs["targets"]),
                "--output_dir", str(tmp_path), "--metrics", "outside_face_change", *swap_flags,
                "--detection_threshold", str(NO_FACE_THRESHOLD))
    assert read_rows(tmp_path / "pairs.csv") == []
    assert "0 frame(s) scored" in table


def test_a_failed_run_leaves_no_report_behind(inputs: dict[str, Path], swap_flags: list[str], tmp_path: Path,
                                              capsys) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "broken.mp4").write_bytes(b"not a video")
    output = tmp_path / "out"
    assert evaluate.main(["--sources", str(inputs["sources"] / "astronaut.png"), "--targets", str(targets),
                          "--output_dir", str(output), "--metrics", "outside_face_change", *swap_flags]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot read") and "broken.mp4" in errors[0]
    assert not [path for path in output.rglob("*") if path.is_file()]


def test_bad_inputs_give_one_error_line(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run([sys.executable, "evaluate.py", "--sources", str(tmp_path / "absent"), "--targets",
                                str(tmp_path), "--output_dir", str(tmp_path / "out")], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines() == [f"error: {tmp_path / 'absent'} does not exist"]
    assert not (tmp_path / "out").exists()


def test_missing_sources_flag_is_reported(capsys) -> None:
    assert evaluate.main(["--targets", "x"]) == 1
    assert "--sources and --targets are both needed" in capsys.readouterr().err


def test_help_explains_every_flag(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: evaluate.py") and "Examples:" in text
    parser = evaluate.make_parser("evaluate.py", evaluate.__doc__)
    evaluate.add_evaluate_arguments(parser)
    for action in parser._actions:
        if action.option_strings:
            assert action.help and len(action.help.strip()) >= 8, action.option_strings
            assert action.option_strings[0] in text
