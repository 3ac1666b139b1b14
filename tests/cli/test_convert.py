"""convert.py end to end: one image, a nested folder, --overwrite, inputs untouched."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

import convert
from tests.cli.conftest import snapshot


def test_single_image_is_reencoded_with_the_same_pixels(tmp_path: Path, image_tree: Path) -> None:
    source = image_tree / "astronaut.png"
    assert convert.main(["--source_image", str(source), "--output_folder", str(tmp_path / "out"),
                         "--output_extension", ".png"]) == 0
    written = cv2.imread(str(tmp_path / "out" / "astronaut.png"))
    np.testing.assert_array_equal(written, cv2.imread(str(source)))


def test_folder_keeps_its_structure_and_inputs_are_untouched(tmp_path: Path, image_tree: Path) -> None:
    before = snapshot(image_tree)
    output = tmp_path / "converted"
    assert convert.main(["--source_folder", str(image_tree), "--output_folder", str(output)]) == 0
    assert sorted(str(path.relative_to(output)) for path in output.rglob("*") if path.is_file()) == [
        "astronaut.jpg", "people/cameraman.jpg", "people/nasa/collins.jpg",
    ]
    grey = cv2.imread(str(output / "people" / "cameraman.jpg"), cv2.IMREAD_UNCHANGED)
    assert grey.shape == (128, 128, 3)  # grey input comes out as 3-channel BGR
    assert snapshot(image_tree) == before


def test_existing_outputs_are_kept_unless_overwrite(tmp_path: Path, image_tree: Path) -> None:
    output = tmp_path / "converted"
    args = ["--source_folder", str(image_tree), "--output_folder", str(output)]
    assert convert.main(args) == 0
    marker = output / "astronaut.jpg"
    marker.write_bytes(b"old")
    assert convert.main(args) == 0
    assert marker.read_bytes() == b"old"
    assert convert.main(args + ["--overwrite"]) == 0
    assert cv2.imread(str(marker)).shape == (128, 128, 3)


def test_converting_a_folder_into_itself_never_touches_an_input(image_tree: Path) -> None:
    before = snapshot(image_tree)
    # .png → .png in place: every output would be its own input, so each one is refused.
    code = convert.main(["--source_folder", str(image_tree), "--output_folder", str(image_tree),
                         "--output_extension", ".png", "--overwrite"])
    assert code == 1
    after = snapshot(image_tree)
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {"people/nasa/collins.png"}  # the .jpg input gets its .png twin


def test_missing_source_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:
    assert convert.main(["--source_image", str(tmp_path / "missing.png"), "--output_folder", str(tmp_path)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("error: ") and "missing.png" in error[-1]
