"""Every CLI turns the bad inputs a user can give into one ``error:`` line, a non-zero exit and no file written.

The cases: an output path under an existing file, an output folder that is not writable, a folder where a
file is expected, a corrupt weights file. Each CLI runs in-process (``main([...])``); the output checks run
before any model loads, and the corrupt file is the first model each CLI loads, so no case loads weights.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

import align
import convert
import demo
import embedding_distance
import inference
import preprocess_lagenda
import preprocess_laion
from tests.cli.conftest import STANDIN_THRESHOLD, snapshot, write_shard
from tests.utils.test_face_boxes import unwritable

CASES = ("output_under_a_file", "output_folder_not_writable", "folder_as_a_file", "corrupt_weights")


class Inputs:
    """A photo, a folder of photos, a LAION shard, a plain file, a folder, a corrupt checkpoint, a locked folder."""

    def __init__(self, root: Path, weights: Path, nsfw_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.weights, self.nsfw_model = weights, nsfw_model
        self.photos = root / "photos"
        self.photos.mkdir()
        image = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
        self.photo = self.photos / "face.png"
        cv2.imwrite(str(self.photo), image)
        self.laion = root / "laion"
        write_shard(self.laion / "laion_face_data" / "split_00000" / "00000.tar",
                    [("1", cv2.imencode(".jpg", image)[1].tobytes())])
        self.a_file = root / "notes.txt"
        self.a_file.write_text("not a folder\n")
        self.a_folder = root / "a_folder"
        self.a_folder.mkdir()
        self.corrupt = root / "corrupt.safetensors"
        self.corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        self.locked = unwritable(root / "locked", monkeypatch)

    def output_folder(self, case: str) -> Path:
        """Where the case's output goes: under a file, in the locked folder, else a fresh folder."""
        return {"output_under_a_file": self.a_file / "out", "output_folder_not_writable": self.locked / "out"}.get(
            case, self.a_folder.parent / "out")

    def common(self) -> list[str]:
        return ["--weights_dir", str(self.weights), "--device", "cpu"]


def swap_flags(inputs: Inputs) -> list[str]:
    return [*inputs.common(), "--nsfw_model", str(inputs.nsfw_model), "--detection_threshold",
            str(STANDIN_THRESHOLD), "--no-enhance_output", "--no-inpaint_output"]


def weights_flag(inputs: Inputs, case: str) -> list[str]:
    return ["--retina_face_model_path", str(inputs.corrupt)] if case == "corrupt_weights" else []


def source(inputs: Inputs, case: str) -> str:
    return str(inputs.a_folder if case == "folder_as_a_file" else inputs.photo)


def inference_argv(inputs: Inputs, case: str) -> list[str]:
    return [*swap_flags(inputs), *weights_flag(inputs, case), "--source_file_path", source(inputs, case),
            "--target_file_path", str(inputs.photo), "--output_file_path", str(inputs.output_folder(case) / "o.png")]


def demo_argv(inputs: Inputs, case: str) -> list[str]:
    return [*swap_flags(inputs), *weights_flag(inputs, case), "--sources", source(inputs, case),
            "--targets", str(inputs.photo), "--output_file_path", str(inputs.output_folder(case) / "grid.png")]


def align_argv(inputs: Inputs, case: str) -> list[str]:
    return [*inputs.common(), *weights_flag(inputs, case), "--source_image", source(inputs, case),
            "--aligned_folder", str(inputs.output_folder(case))]


def convert_argv(inputs: Inputs, case: str) -> list[str]:
    return ["--source_image", source(inputs, case), "--output_folder", str(inputs.output_folder(case))]


def embedding_distance_argv(inputs: Inputs, case: str) -> list[str]:
    out = inputs.output_folder(case)
    return [*inputs.common(), *weights_flag(inputs, case), "--source_image_path", source(inputs, case), "--debug",
            "--debug_source_face_path", str(out / "source.png"), "--debug_target_face_path", str(out / "target.png")]


def preprocess_flags(inputs: Inputs, case: str) -> list[str]:
    # A folder where the detector's weights file is expected, for the two dataset scripts.
    model = {"corrupt_weights": inputs.corrupt, "folder_as_a_file": inputs.a_folder}.get(case)
    out = inputs.output_folder(case)
    return [*inputs.common(), "--no-retargeting", "--output_dir", str(out / "full"), "--output_dir_resized",
            str(out / "faces"), *(["--retina_face_model_path", str(model)] if model else [])]


def lagenda_argv(inputs: Inputs, case: str) -> list[str]:
    return ["--lagenda_base_dir", str(inputs.photos), *preprocess_flags(inputs, case)]


def laion_argv(inputs: Inputs, case: str) -> list[str]:
    return ["--laion_face_base_dir", str(inputs.laion), *preprocess_flags(inputs, case)]


CLIS: dict[str, tuple[Callable[[list[str]], int], Callable[[Inputs, str], list[str]]]] = {
    "inference": (inference.main, inference_argv),
    "demo": (demo.main, demo_argv),
    "align": (align.main, align_argv),
    "convert": (convert.main, convert_argv),
    "embedding_distance": (embedding_distance.main, embedding_distance_argv),
    "preprocess_lagenda": (preprocess_lagenda.main, lagenda_argv),
    "preprocess_laion": (preprocess_laion.main, laion_argv),
}
# convert.py loads no model: it has no weights file to corrupt.
PAIRS = [(cli, case) for cli in CLIS for case in CASES if not (cli == "convert" and case == "corrupt_weights")]


@pytest.mark.parametrize("cli, case", PAIRS)
def test_bad_input_is_one_error_line_and_writes_nothing(
    cli: str, case: str, tmp_path: Path, standin_weights: Path, normal_nsfw_model: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    inputs = Inputs(tmp_path, standin_weights, normal_nsfw_model, monkeypatch)
    main, argv = CLIS[cli]
    before = snapshot(tmp_path)
    code = main(argv(inputs, case))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code != 0, err
    assert len(errors) == 1 and "Traceback" not in err, err
    expected = {"output_under_a_file": "is a file, not a folder", "output_folder_not_writable": "not writable",
                "folder_as_a_file": "folder", "corrupt_weights": str(inputs.corrupt)}[case]
    assert expected in errors[0]
    assert snapshot(tmp_path) == before  # nothing written, no input touched
