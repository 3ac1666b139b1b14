"""Pixel boost: run the 256 px generator on the sub-pixel tiles of a larger aligned crop and reassemble them.

A ``S×S`` crop (S = k·256) is cut into k² tiles of 256×256: tile ``i·k + j`` holds the pixels
``(i + k·y, j + k·x)``, i.e. the crop sub-sampled with offset (i, j). Each tile is a whole, slightly shifted
256 px view of the face, so the generator swaps it as usual; putting the k² swapped tiles back in place gives a
S×S face that keeps the target's resolution (FaceFusion's "pixel boost"). k = 1 is today's swap exactly: the one
tile is the crop itself.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from utils.errors import GhostError

MODEL_SIZE = 256  # the generator's input and output side
PIXEL_BOOST_SIZES = (256, 512, 768, 1024)

# A generator call: aligned faces (256×256×3 uint8 BGR) and their identities [N, 512] → N swapped faces.
Generate = Callable[[list[np.ndarray], torch.Tensor], list[np.ndarray]]


@dataclass(frozen=True)
class PixelBoostOptions:
    """``--pixel_boost``: the side (a multiple of 256, at most 1024) the target face is aligned at.

    256 is today's swap; 512 runs the generator on 4 tiles per face, 768 on 9, 1024 on 16.
    """

    pixel_boost: int = MODEL_SIZE

    def __post_init__(self) -> None:
        if self.pixel_boost not in PIXEL_BOOST_SIZES:
            sizes = ", ".join(map(str, PIXEL_BOOST_SIZES))
            raise GhostError(f"--pixel_boost must be a multiple of 256 up to 1024 ({sizes}), got {self.pixel_boost}")

    @property
    def tiles_per_side(self) -> int:
        """k: the crop is cut into k × k tiles."""
        return self.pixel_boost // MODEL_SIZE

    @property
    def boosts_pixels(self) -> bool:
        return self.pixel_boost != MODEL_SIZE


def boosted_crop(image: np.ndarray, matrix: np.ndarray, size: int, align_mode: str,
                 face: np.ndarray | None = None) -> np.ndarray:
    """The target face aligned at ``size``: the 256 px alignment ``matrix`` (image → crop, 2×3) scaled by
    size/256, so the crop is the same face at a finer pixel grid. ``H×W×3 uint8 BGR`` image → ``size×size×3``.

    ``face`` (the 256 px crop already made) is returned as it is at 256. The border outside the image is the
    align mode's (facexlib's grey, else black), as utils.align.align_face fills it.
    """
    from utils.align import FACEXLIB_BORDER_VALUE

    if size == MODEL_SIZE and face is not None:
        return face
    border = FACEXLIB_BORDER_VALUE if align_mode == "facexlib" else (0, 0, 0)
    return cv2.warpAffine(image, scaled_matrix(matrix, size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def scaled_matrix(matrix: np.ndarray, size: int) -> np.ndarray:
    """The image → crop matrix of a ``size`` px crop, from the 256 px crop's ``matrix``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix if size == MODEL_SIZE else matrix * (size / MODEL_SIZE)


def sub_pixel_tiles(face: np.ndarray, tile_size: int = MODEL_SIZE) -> np.ndarray:
    """The k² sub-sampled tiles of a ``S×S×C`` face (S = k·``tile_size``): ``k²×t×t×C``, tile ``i·k + j`` =
    ``face[i::k, j::k]``. Raises ValueError when S is not a multiple of ``tile_size``."""
    size = face.shape[0]
    if face.shape[1] != size or size % tile_size:
        raise ValueError(f"pixel boost needs a square face whose side is a multiple of {tile_size}, got "
                         f"{face.shape[1]}x{size}")
    k = size // tile_size
    channels = face.shape[2:]
    # Row y·k + i of the face is row y of the tiles with offset i: axes (y, i, x, j, C...) → (i, j, y, x, C...).
    tiles = face.reshape(tile_size, k, tile_size, k, *channels).transpose(1, 3, 0, 2, *range(4, 4 + len(channels)))
    return np.ascontiguousarray(tiles.reshape(k * k, tile_size, tile_size, *channels))


def assemble_tiles(tiles: np.ndarray | list[np.ndarray], size: int) -> np.ndarray:
    """The inverse of :func:`sub_pixel_tiles`: k² tiles ``t×t×C`` back into a ``size×size×C`` face (k·t)."""
    tiles = np.asarray(tiles)
    tile_size = tiles.shape[1]
    k = size // tile_size
    if k * tile_size != size or tiles.shape[0] != k * k:
        raise ValueError(f"{tiles.shape[0]} tiles of {tile_size} px cannot make a {size} px face")
    face = np.empty((size, size, *tiles.shape[3:]), dtype=tiles.dtype)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, k)
        face[row::k, column::k] = tile
    return face


def pixel_boost(generate: Generate, target_faces: list[np.ndarray], identities: torch.Tensor, size: int,
                max_batch: int | None = None) -> list[np.ndarray]:
    """Swap ``size×size×3 uint8 BGR`` aligned faces tile by tile with a 256 px generator.

    ``identities``: ``[N, 512]``, one per face. The tiles of every face go through ``generate`` together
    (in chunks of ``max_batch`` tiles when given). Returns N ``size×size×3 uint8 BGR`` faces; at 256 this is
    ``generate(target_faces, identities)`` itself.
    """
    if size == MODEL_SIZE:
        return generate(list(target_faces), identities)
    tiles = [tile for face in target_faces for tile in sub_pixel_tiles(face)]
    per_face = (size // MODEL_SIZE) ** 2
    tile_identities = identities.repeat_interleave(per_face, dim=0)
    step = max_batch or len(tiles)
    swapped: list[np.ndarray] = []
    for start in range(0, len(tiles), step):
        swapped += generate(tiles[start:start + step], tile_identities[start:start + step])
    return [assemble_tiles(swapped[index * per_face:(index + 1) * per_face], size)
            for index in range(len(target_faces))]
