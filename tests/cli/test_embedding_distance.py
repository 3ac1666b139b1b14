"""embedding_distance.py end to end with stand-in weights: the printed distance, its symmetry, debug crops, errors.

The stand-in detector finds faces at the low threshold of tests/cli/conftest.py. FaceNet (the smallest
embedding checkpoint) keeps the model loads cheap; one case pairs it with ArcFace to cover two models. The
in-process runs keep their loaded models for the module (``models_loaded_once``); two runs are real processes.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

import embedding_distance
from tests.cli.conftest import NO_FACE_THRESHOLD, STANDIN_THRESHOLD

REPO_ROOT = Path(__file__).resolve().parents[2]
DISTANCE_LINE = re.compile(r"^Distance between embeddings is: (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module", autouse=True)
def models_loaded_once() -> Iterator[None]:
    """Keep each (model, settings) loaded by the in-process runs for the whole module: fewer weight loads."""
    import models.embeddings
    import models.retinaface

    patch = pytest.MonkeyPatch()
    for module, name in ((models.embeddings, "load_face_embedder"), (models.retinaface, "load_face_detector")):
        original, loaded = getattr(module, name), {}

        def load_once(*args, _original=original, _loaded=loaded, **kwargs):
            key = repr((args, sorted(kwargs.items())))
            if key not in _loaded:
                _loaded[key] = _original(*args, **kwargs)
            return _loaded[key]

        patch.setattr(module, name, load_once)
    yield
    patch.undo()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> Path:
    """The astronaut at 256 pixels: the same photo, with cheaper detection."""
    path = tmp_path_factory.mktemp("embedding") / "astronaut.png"
    cv2.imwrite(str(path), cv2.resize(cv2.imread(str(example_images["astronaut"])), (256, 256),
                                      interpolation=cv2.INTER_AREA))
    return path


def side_flags(side: str, model: str, mode: str, size: int) -> list[str]:
    return [f"--{side}_face_embeddings", model, f"--{side}_align_mode", mode, f"--{side}_crop_size", str(size)]


def measure(capsys: pytest.CaptureFixture, weights: Path, photo: Path, *flags: str) -> float:
    """Run main() in-process and return the one distance it printed."""
    code = embedding_distance.main(["--weights_dir", str(weights), "--device", "cpu", "--source_image_path",
                                    str(photo), "--detection_threshold", str(STANDIN_THRESHOLD), *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    distances = DISTANCE_LINE.findall(captured.out)
    assert len(distances) == 1, captured.out
    distance = float(distances[0])
    assert math.isfinite(distance) and -1e-6 <= distance <= 2 + 1e-6
    return distance


def test_same_model_same_crop_gives_zero(capsys, standin_weights: Path, photo: Path) -> None:
    distance = measure(capsys, standin_weights, photo, *side_flags("source", "facenet", "insightface_v2", 112),
                       *side_flags("target", "facenet", "insightface_v2", 112))
    assert distance == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("models", [("facenet", "facenet"), ("facenet", "arcface")])
def test_distance_is_symmetric_and_finite(capsys, standin_weights: Path, photo: Path, models: tuple[str, str]) -> None:
    first = (models[0], "insightface_v1", 256)
    second = (models[1], "facexlib", 112)
    forward = measure(capsys, standin_weights, photo, *side_flags("source", *first), *side_flags("target", *second))
    backward = measure(capsys, standin_weights, photo, *side_flags("source", *second), *side_flags("target", *first))
    assert forward == pytest.approx(backward, abs=1e-5)
    assert forward > 1e-6, "another alignment (or model) moves the embedding"


def test_debug_writes_both_crops_at_their_sizes(capsys, standin_weights: Path, photo: Path, tmp_path: Path) -> None:
    source_crop, target_crop = tmp_path / "debug" / "source.png", tmp_path / "debug" / "target.png"
    distance = measure(capsys, standin_weights, photo, *side_flags("source", "facenet", "insightface_v1", 256),
                       *side_flags("target", "facenet", "insightface_v2", 112), "--debug",
                       "--debug_source_face_path", str(source_crop), "--debug_target_face_path", str(target_crop))
    assert cv2.imread(str(source_crop)).shape == (256, 256, 3)
    assert cv2.imread(str(target_crop)).shape == (112, 112, 3)
    assert distance > 1e-6, "different alignments of one face give slightly different embeddings"


def test_no_face_is_one_error_line(capsys, standin_weights: Path, photo: Path) -> None:
    code = embedding_distance.main(["--weights_dir", str(standin_weights), "--device", "cpu",
                                    "--source_image_path", str(photo), "--detection_threshold",
                                    str(NO_FACE_THRESHOLD), "--source_face_embeddings", "facenet",
                                    "--target_face_embeddings", "facenet"])
    captured = capsys.readouterr()
    assert code == 1
    assert not DISTANCE_LINE.search(captured.out)
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "no face found" in errors[0]


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "embedding_distance.py", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_prints_the_distance(standin_weights: Path, photo: Path) -> None:
    completed = run_script("--weights_dir", str(standin_weights), "--device", "cpu", "--source_image_path",
                           str(photo), "--detection_threshold", str(STANDIN_THRESHOLD),
                           *side_flags("source", "facenet", "mtcnn", 160),
                           *side_flags("target", "facenet", "mtcnn", 160))
    assert completed.returncode == 0, completed.stderr
    distances = DISTANCE_LINE.findall(completed.stdout)
    assert len(distances) == 1 and float(distances[0]) == pytest.approx(0.0, abs=1e-5)


def test_cli_missing_image_exits_1_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nobody.jpg"
    completed = run_script("--source_image_path", str(missing), "--weights_dir", str(tmp_path))
    assert completed.returncode == 1
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nobody.jpg" in lines[0]
