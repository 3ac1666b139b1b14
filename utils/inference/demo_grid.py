"""The demo grid of demo.py: every source × every target, with the models loaded once.

Layout (as the original demo): cell (0, 0) is a legend picture, row 0 holds the targets, column 0 the
sources, cell (i, j) the swap of source i into target j. Every cell except (0, 0) shows the aligned
256×256 face of its picture (re-detected, highest-score face, ``--align_mode``), except result cells
when the paste-back mode is ``none`` (they already are 256×256 faces). The swaps detect as inference.py
does (``--detection_max_size``); the re-detection of the cells, like the original demo's, sees each picture
at its own size (faces/README.md §1.3: no max_size).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from utils.errors import NoFaceFoundError
from utils.image import check_output_file, read_image, write_image
from utils.inference.options import ALIGNED_FACE_SIZE
from utils.inference.swap import FaceSwapper

logger = logging.getLogger(__name__)

CELL = ALIGNED_FACE_SIZE


def legend_cell(size: int = CELL) -> np.ndarray:
    """The corner cell: a white square reading "source ↓ / target →" (``size×size×3 uint8 BGR``)."""
    cell = np.full((size, size, 3), 255, dtype=np.uint8)
    cv2.line(cell, (0, 0), (size - 1, size - 1), (160, 160, 160), 2)
    font, scale, colour = cv2.FONT_HERSHEY_SIMPLEX, size / 400, (40, 40, 40)
    cv2.putText(cell, "target", (size // 2, size // 4), font, scale, colour, 2, cv2.LINE_AA)
    cv2.putText(cell, "source", (size // 10, 3 * size // 4), font, scale, colour, 2, cv2.LINE_AA)
    return cell


def aligned_best_face(swapper: FaceSwapper, image: np.ndarray, what: str) -> np.ndarray:
    """The ``256×256×3 uint8 BGR`` aligned crop of the highest-score face of ``image`` (``--align_mode``)."""
    from models.retinaface import best_face

    options = swapper.options
    # No max_size, as the original demo re-detects its cells (faces/README.md §1.3); the same loaded network.
    detector = swapper.detector.with_sizing(max_size=None)
    key = ("demo_cell", hashlib.sha1(image.tobytes()).hexdigest(), image.shape, options.detection_threshold,
           options.retina_face_model_path, options.weights_dir)
    best = best_face(swapper.models.detections(key, lambda: detector.detect(image, in_score_order=True)))
    if best is None:
        raise NoFaceFoundError(f"no face found in the demo's {what} (detection threshold "
                               f"{swapper.options.detection_threshold})")
    return swapper.align(image, np.asarray(best.box), np.asarray(best.keypoints)).face


def render_demo_grid(
    swapper: FaceSwapper,
    sources: Sequence[str | Path],
    targets: Sequence[str | Path],
    corner_image: str | Path | None = None,
) -> np.ndarray:
    """The ``(1 + len(sources))·256 × (1 + len(targets))·256`` uint8 BGR grid of every swap.

    Each pair runs the full pipeline of ``swapper`` (NSFW checks, enhancement, paste-back, inpainting as
    its options say); the models load once and each picture is detected once.
    """
    source_images = [read_image(path) for path in sources]
    target_images = [read_image(path) for path in targets]
    corner = legend_cell() if corner_image is None else cv2.resize(read_image(corner_image), (CELL, CELL))
    with torch.inference_mode():
        header = [corner] + [aligned_best_face(swapper, image, f"target {path}")
                             for path, image in zip(targets, target_images)]
        rows = [np.concatenate(header, axis=1)]
        progress = tqdm(total=len(sources) * len(targets), desc="demo", unit="swap")
        for source_path, source_image in zip(sources, source_images):
            cells = [aligned_best_face(swapper, source_image, f"source {source_path}")]
            for target_path, target_image in zip(targets, target_images):
                logger.info("swapping %s into %s", source_path, target_path)
                result = swapper.swap_images(source_image, target_image).image
                if swapper.options.paste_back_mode != "none":
                    result = aligned_best_face(swapper, result, f"result for {source_path} × {target_path}")
                cells.append(result)
                progress.update()
            rows.append(np.concatenate(cells, axis=1))
        progress.close()
    return np.concatenate(rows, axis=0)


def write_demo_grid(
    swapper: FaceSwapper,
    sources: Sequence[str | Path],
    targets: Sequence[str | Path],
    output_path: str | Path,
    corner_image: str | Path | None = None,
) -> Path:
    """Render the grid and write it (never over one of the input pictures)."""
    check_output_file(output_path)  # before minutes of swapping
    grid = render_demo_grid(swapper, sources, targets, corner_image)
    inputs = tuple(Path(path) for path in (*sources, *targets, *([corner_image] if corner_image else [])))
    return write_image(output_path, grid, protect=inputs)
