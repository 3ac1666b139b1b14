"""Image reading and conversion: one convention at module boundaries, clear errors for bad files."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from utils.errors import GhostError, ImageReadError
from utils.image import (
    bgr_to_tensor,
    list_images,
    read_image,
    tensor_to_bgr_rounded,
    tensor_to_bgr_uint8,
    tensor_to_uint8_truncated,
    write_image,
)


@pytest.fixture
def colour_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)


def test_png_round_trip(tmp_path: Path, colour_image: np.ndarray) -> None:
    path = write_image(tmp_path / "sub" / "a.png", colour_image)
    assert np.array_equal(read_image(path), colour_image)
    assert not list(tmp_path.rglob("*.partial"))


def test_grey_rgba_and_16_bit_become_bgr_uint8(tmp_path: Path, colour_image: np.ndarray) -> None:
    grey = colour_image[:, :, 0]
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    assert np.array_equal(read_image(tmp_path / "grey.png"), np.repeat(grey[:, :, None], 3, axis=2))
    rgba = np.dstack([colour_image, np.full(grey.shape, 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    assert np.array_equal(read_image(tmp_path / "rgba.png"), colour_image)
    deep = colour_image.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert np.array_equal(read_image(tmp_path / "deep.png"), colour_image)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda path: None, "no such file"),
        (lambda path: path.write_bytes(b""), "empty"),
        (lambda path: path.write_text("this is text, not a picture"), "not a supported image"),
        (lambda path: path.mkdir(), "folder"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, setup, reason: str) -> None:
    path = tmp_path / "photo.jpg"
    setup(path)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_write_refuses_to_overwrite_an_input(tmp_path: Path, colour_image: np.ndarray) -> None:
    source = write_image(tmp_path / "in.png", colour_image)
    before = source.read_bytes()
    with pytest.raises(GhostError, match="refusing to overwrite"):
        write_image(tmp_path / "." / "in.png", np.zeros_like(colour_image), protect=(source,))
    assert source.read_bytes() == before


def test_bgr_to_tensor_convention(colour_image: np.ndarray) -> None:
    tensor = bgr_to_tensor(colour_image)
    assert tensor.shape == (1, 3, 12, 10) and tensor.dtype == torch.float32
    expected_red = (colour_image[:, :, 2] / 255.0 - 0.5) / 0.5
    assert torch.allclose(tensor[0, 0], torch.from_numpy(expected_red).float(), atol=1e-6)
    assert tensor.min() >= -1 and tensor.max() <= 1


def test_tensor_back_to_bgr(colour_image: np.ndarray) -> None:
    tensor = bgr_to_tensor(colour_image)
    assert np.array_equal(tensor_to_bgr_rounded(tensor), colour_image)
    truncated = tensor_to_bgr_uint8(tensor)
    assert np.abs(truncated.astype(int) - colour_image).max() <= 1
    batch = torch.cat([tensor] * 10)
    assert tensor_to_uint8_truncated(batch).shape == (12, 10 * 8, 3)


def test_list_images_is_recursive_and_sorted(tmp_path: Path, colour_image: np.ndarray) -> None:
    for name in ("b/2.png", "a.jpg", "b/c/1.png"):
        write_image(tmp_path / name, colour_image)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a.jpg", "b/2.png", "b/c/1.png"]
