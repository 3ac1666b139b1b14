"""RetinaFace anchor boxes and their decoding, shared by the RetinaFace detector and the CVLFace DFA aligner.

Both networks are RetinaFace heads (the aligner is RetinaFace-MobileNet0.25 inside), so they use the same
prior layout (per level: row-major cells, the level's sizes innermost) and the same variance-scaled decoding.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

VARIANCES: tuple[float, float] = (0.1, 0.2)


def prior_boxes(height: int, width: int, steps: Sequence[int], min_sizes: Sequence[Sequence[int]]) -> torch.Tensor:
    """Anchor boxes (cx, cy, w, h) normalised by the network input size, in head-output order.

    Returns [N, 4] float32 (computed in float64 like the reference's Python floats).
    """
    levels = []
    for step, sizes in zip(steps, min_sizes):
        rows, cols = -(-height // step), -(-width // step)
        row, col, size_index = np.meshgrid(np.arange(rows), np.arange(cols), np.arange(len(sizes)), indexing="ij")
        size = np.asarray(sizes, dtype=np.float64)[size_index]
        centre_x = (col + 0.5) * step / width
        centre_y = (row + 0.5) * step / height
        levels.append(np.stack([centre_x, centre_y, size / width, size / height], axis=-1).reshape(-1, 4))
    return torch.from_numpy(np.concatenate(levels).astype(np.float32))


def decode_boxes(regressions: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Box regressions [..., P, 4] + priors [P, 4] -> boxes [..., P, 4] (x1, y1, x2, y2), normalised."""
    centres = priors[:, :2] + regressions[..., :2] * VARIANCES[0] * priors[:, 2:]
    sizes = priors[:, 2:] * torch.exp(regressions[..., 2:] * VARIANCES[1])
    top_left = centres - sizes / 2
    return torch.cat([top_left, top_left + sizes], dim=-1)


def decode_landmarks(regressions: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Landmark regressions [..., P, 10] + priors [P, 4] -> five (x, y) points [..., P, 10], normalised."""
    offsets = regressions.unflatten(-1, (5, 2))
    points = priors[:, None, :2] + offsets * VARIANCES[0] * priors[:, None, 2:]
    return points.flatten(-2)
