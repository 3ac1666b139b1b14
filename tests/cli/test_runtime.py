"""inference.py under --runtime onnxruntime: the example photo swap matches the torch swap."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import inference
from tests.cli.conftest import STANDIN_THRESHOLD

# The kit's network tolerance is 1e-5 on outputs in [-1, 1], a thousandth of a grey level: the same pixels, except
# where a value sits that close to a truncation step and lands on the other side of it (one level).
MAX_GREY_LEVELS = 1
MAX_CHANGED_FRACTION = 0.001


@pytest.fixture(scope="module")
def linked_weights(standin_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in weights folder as links, so the ONNX files exported beside them land in a scratch folder."""
    folder = tmp_path_factory.mktemp("linked_weights")
    for path in standin_weights.rglob("*"):
        if path.is_file() and path.suffix != ".onnx":
            link = folder / path.relative_to(standin_weights)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, link)
    return folder


def swap(weights: Path, nsfw_model: Path, output: Path, *flags: str) -> np.ndarray:
    examples = Path(inference.__file__).parent / "examples"
    code = inference.main([
        "--weights_dir", str(weights), "--device", "cpu", "--detection_threshold", str(STANDIN_THRESHOLD),
        "--nsfw_model", str(nsfw_model), "--no-enhance_output", "--no-inpaint_output",
        "--source_file_path", str(examples / "astronaut.png"), "--target_file_path", str(examples / "cameraman.png"),
        "--output_file_path", str(output), *flags,
    ])
    assert code == 0
    return cv2.imread(str(output))


@pytest.mark.slow
def test_the_example_swap_on_onnxruntime_matches_torch(linked_weights: Path, normal_nsfw_model: Path,
                                                        tmp_path: Path) -> None:
    torch_swap = swap(linked_weights, normal_nsfw_model, tmp_path / "torch.png")
    onnx_swap = swap(linked_weights, normal_nsfw_model, tmp_path / "onnx.png", "--runtime", "onnxruntime",
                     "--threads", "2")
    difference = np.abs(torch_swap.astype(np.int16) - onnx_swap)
    assert difference.max() <= MAX_GREY_LEVELS, difference.max()
    assert (difference > 0).mean() <= MAX_CHANGED_FRACTION, (difference > 0).mean()
    exported = sorted(path.name for path in linked_weights.rglob("*.onnx"))
    assert len(exported) == 4, exported  # RetinaFace, FAN, the identity model, the generator
