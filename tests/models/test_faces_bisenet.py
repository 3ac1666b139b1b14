"""BiSeNet: outputs at the input size, the parse helper and the face-region classes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.bisenet import CLASS_NAMES, NUM_CLASSES, BiSeNet, face_region_mask, load_bisenet, parse_face


def test_forward_returns_three_logit_maps_at_the_input_size() -> None:
    model = BiSeNet().eval()
    with torch.no_grad():
        outputs = model(torch.rand(1, 3, 64, 96) * 2 - 1)
    assert [tuple(output.shape) for output in outputs] == [(1, NUM_CLASSES, 64, 96)] * 3


def test_parse_face_with_released_layout(standin_weights: Path) -> None:
    model = load_bisenet(weights_dir=standin_weights)
    face = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    parsing = parse_face(face, model)
    assert parsing.shape == (64, 64) and parsing.dtype == np.uint8 and parsing.max() < NUM_CLASSES


def test_face_region_keeps_skin_to_lips_and_necklace_only() -> None:
    parsing = np.arange(NUM_CLASSES, dtype=np.uint8)[None]
    kept = {CLASS_NAMES[index] for index in np.nonzero(face_region_mask(parsing)[0])[0]}
    assert kept == set(CLASS_NAMES[1:14]) | {"necklace"}
    assert set(np.unique(face_region_mask(parsing))) == {0, 255}
