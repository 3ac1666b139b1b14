"""utils.inference.pixel_boost: sub-pixel tiles, their reassembly, and the generator run on them (a fake generator)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.cli.test_inference import synthetic_landmarks
from utils import paste_back
from utils.errors import GhostError
from utils.inference.pixel_boost import PixelBoostOptions, assemble_tiles, pixel_boost, sub_pixel_tiles


class FakeGenerator:
    """A deterministic stand-in generator: each face becomes 255 − face shifted by its identity's first value."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, torch.Tensor]] = []

    def __call__(self, faces: list[np.ndarray], identities: torch.Tensor) -> list[np.ndarray]:
        assert all(face.shape == (256, 256, 3) and face.dtype == np.uint8 for face in faces)
        self.calls.append((len(faces), identities.clone()))
        return [((255 - face.astype(np.int64) + int(identity[0])) % 256).astype(np.uint8)
                for face, identity in zip(faces, identities)]


def faces(size: int, count: int = 1) -> list[np.ndarray]:
    random = np.random.default_rng(size + count)
    return [random.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize("size", [256, 512, 768, 1024])
def test_tiles_are_the_sub_sampled_crop_and_reassemble_it(size: int) -> None:
    face = faces(size)[0]
    k = size // 256
    tiles = sub_pixel_tiles(face)
    assert tiles.shape == (k * k, 256, 256, 3)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, k)
        np.testing.assert_array_equal(tile, face[row::k, column::k])
    np.testing.assert_array_equal(assemble_tiles(tiles, size), face)


def test_256_is_one_generator_call_on_the_faces_themselves() -> None:
    generator, targets = FakeGenerator(), faces(256, 2)
    identities = torch.tensor([[3.0] * 512, [9.0] * 512])
    boosted = pixel_boost(generator, targets, identities, 256)
    expected = FakeGenerator()(targets, identities)
    assert len(generator.calls) == 1 and generator.calls[0][0] == 2
    for got, want in zip(boosted, expected):
        np.testing.assert_array_equal(got, want)


def test_512_returns_a_512_face_whose_tiles_are_the_generators_outputs() -> None:
    generator, targets = FakeGenerator(), faces(512, 2)
    identities = torch.tensor([[3.0] * 512, [9.0] * 512])
    boosted = pixel_boost(generator, targets, identities, 512)
    assert len(generator.calls) == 1 and generator.calls[0][0] == 8  # the tiles of both faces in one batch
    np.testing.assert_array_equal(generator.calls[0][1][:, 0], [3, 3, 3, 3, 9, 9, 9, 9])
    for face, target, identity in zip(boosted, targets, identities):
        assert face.shape == (512, 512, 3) and face.dtype == np.uint8
        for index in range(4):
            row, column = divmod(index, 2)
            want = FakeGenerator()([target[row::2, column::2]], identity[None])[0]
            np.testing.assert_array_equal(face[row::2, column::2], want)


def test_tiles_go_through_the_generator_in_chunks() -> None:
    generator = FakeGenerator()
    boosted = pixel_boost(generator, faces(768), torch.zeros(1, 512), 768, max_batch=4)
    assert [count for count, _ in generator.calls] == [4, 4, 1]
    whole = pixel_boost(FakeGenerator(), faces(768), torch.zeros(1, 512), 768)
    np.testing.assert_array_equal(boosted[0], whole[0])


@pytest.mark.parametrize("size", [0, 128, 300, 640, 1280, 2048])
def test_sizes_other_than_multiples_of_256_up_to_1024_are_one_line(size: int) -> None:
    with pytest.raises(GhostError, match="multiple of 256") as caught:
        PixelBoostOptions(size)
    assert "\n" not in str(caught.value)


def test_options() -> None:
    assert not PixelBoostOptions().boosts_pixels and PixelBoostOptions().tiles_per_side == 1
    assert PixelBoostOptions(1024).tiles_per_side == 4 and PixelBoostOptions(512).boosts_pixels


def test_a_boosted_face_pastes_back_like_its_256_twin_in_every_mode() -> None:
    """The 512 crop of a face pastes back (with its own matrix and landmarks) nearly as its 256 crop does."""
    random = np.random.default_rng(5)
    target = cv2.GaussianBlur(random.integers(0, 256, (400, 500, 3), dtype=np.uint8), (0, 0), 3)
    matrix_256 = np.array([[0.9, 0.1, -60.0], [-0.1, 0.9, -40.0]])
    matrix_512 = matrix_256 * 2
    face_512 = cv2.GaussianBlur(random.integers(0, 256, (512, 512, 3), dtype=np.uint8), (0, 0), 4) // 2 + 128
    face_256 = cv2.resize(face_512, (256, 256), interpolation=cv2.INTER_AREA)
    landmarks = synthetic_landmarks()
    for mode in ("ghost", "basic", "insightface", "facexlib_without_parser", "facexlib_with_parser"):
        extra_256 = {"source_landmarks": landmarks, "target_landmarks": landmarks,
                     "face_parser": lambda face: np.ones(face.shape[:2], np.uint8)}
        extra_512 = {**extra_256, "source_landmarks": landmarks * 2, "target_landmarks": landmarks * 2}
        small, _ = paste_back.paste_back(mode, target, face_256, matrix_256, **extra_256)
        large, _ = paste_back.paste_back(mode, target, face_512, matrix_512, **extra_512)
        change = np.abs(small.astype(int) - target)
        assert (change.sum(2) > 0).sum() > 10000, mode
        # Differences come from the resampling (and the rim of the masks) only: a few % of the swap's change.
        assert np.abs(large.astype(int) - small.astype(int)).mean() < 0.05 * change.mean(), mode
