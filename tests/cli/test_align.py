"""align.py end to end with stand-in weights: nested folders, --overwrite, inputs untouched, faceless images."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

import align
from tests.cli.conftest import NO_FACE_THRESHOLD, STANDIN_THRESHOLD, snapshot


def run_align(weights: Path, *args: str) -> int:
    return align.main(["--weights_dir", str(weights), "--device", "cpu", *args])


@pytest.mark.parametrize("mode", ["insightface_v2", "facexlib"])
def test_folder_keeps_its_structure_and_inputs_are_untouched(
    tmp_path: Path, image_tree: Path, standin_weights: Path, mode: str
) -> None:
    before = snapshot(image_tree)
    output = tmp_path / "aligned"
    code = run_align(standin_weights, "--source_folder", str(image_tree), "--aligned_folder", str(output),
                     "--align_mode", mode, "--final_crop_size", "112",
                     "--detection_threshold", str(STANDIN_THRESHOLD))
    assert code == 0
    written = sorted(str(path.relative_to(output)) for path in output.rglob("*") if path.is_file())
    assert written == ["astronaut.png", "people/cameraman.png", "people/nasa/collins.jpg"]
    assert all(cv2.imread(str(output / name)).shape == (112, 112, 3) for name in written)
    assert snapshot(image_tree) == before


def test_overwrite_and_output_extension(tmp_path: Path, image_tree: Path, standin_weights: Path) -> None:
    output = tmp_path / "aligned"
    args = ["--source_image", str(image_tree / "people" / "nasa" / "collins.jpg"), "--aligned_folder", str(output),
            "--output_extension", ".png", "--detection_threshold", str(STANDIN_THRESHOLD)]
    assert run_align(standin_weights, *args) == 0
    crop = output / "collins.png"
    assert cv2.imread(str(crop)).shape == (256, 256, 3)
    crop.write_bytes(b"old")
    assert run_align(standin_weights, *args) == 0
    assert crop.read_bytes() == b"old"
    assert run_align(standin_weights, *args, "--overwrite") == 0
    assert cv2.imread(str(crop)).shape == (256, 256, 3)


def test_faceless_image_writes_nothing(tmp_path: Path, image_tree: Path, standin_weights: Path) -> None:
    output = tmp_path / "aligned"
    code = run_align(standin_weights, "--source_image", str(image_tree / "astronaut.png"),
                     "--aligned_folder", str(output), "--detection_threshold", str(NO_FACE_THRESHOLD))
    assert code == 0
    assert not output.exists() or not any(output.rglob("*.*"))


def test_missing_weights_names_the_download_script(tmp_path: Path, image_tree: Path, capsys) -> None:
    code = run_align(tmp_path / "no_weights", "--source_image", str(image_tree / "astronaut.png"),
                     "--aligned_folder", str(tmp_path / "aligned"))
    assert code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "download_inference_models.sh" in last
