"""RetinaFace: loading, priors, decoding, NMS, the long-side limit, face order and the no-face case."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models.registry import load_model
from models.retinaface import (
    POST_NMS_KEEP,
    DecodedDetections,
    DetectedFace,
    FaceDetector,
    convert_state_dict,
    load_face_detector,
    nms,
    preprocess,
    prior_boxes,
    select_faces,
    sort_faces,
)
from utils.checkpoint import read_state_dict, write_state_dict
from utils.errors import CheckpointMismatchError


class PlantedNetwork(torch.nn.Module):
    """Stands in for RetinaFace: one confident face on a chosen prior, everything else background.

    Records the input size it was given, so tests can check the resize.
    """

    def __init__(self, prior_index_of: Callable[[int, int], int]) -> None:
        super().__init__()
        self.prior_index_of = prior_index_of
        self.input_sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        height, width = x.shape[2:]
        self.input_sizes.append((height, width))
        count = len(prior_boxes(height, width))
        loc, landms = torch.zeros(x.shape[0], count, 4), torch.zeros(x.shape[0], count, 10)
        conf = torch.tensor([1.0, 0.0]).repeat(x.shape[0], count, 1)
        conf[:, self.prior_index_of(height, width)] = torch.tensor([0.01, 0.99])
        return loc, conf, landms


def _prior_at(step: int, min_size_index: int, row: int, col: int) -> Callable[[int, int], int]:
    """Index of the prior of level ``step`` at (row, col), for a given network input size."""
    steps, sizes_per_cell = (8, 16, 32), 2

    def index(height: int, width: int) -> int:
        offset = 0
        for level_step in steps:
            cells = -(-height // level_step) * -(-width // level_step)
            if level_step == step:
                return offset + (row * -(-width // level_step) + col) * sizes_per_cell + min_size_index
            offset += cells * sizes_per_cell
        raise ValueError(step)

    return index


def test_convert_state_dict_strips_a_leading_module_prefix_only() -> None:
    weights = {"module.body.conv1.weight": torch.zeros(1), "fpn.module.x": torch.zeros(1)}
    assert list(convert_state_dict(weights)) == ["body.conv1.weight", "fpn.module.x"]


def test_loading_tolerates_prefix_and_missing_batch_counters_but_not_missing_weights(
    standin_weights: Path, tmp_path: Path
) -> None:
    state = read_state_dict(standin_weights / "RetinaFace" / "Resnet50_Final.safetensors")
    prefixed = {f"module.{key}": value for key, value in state.items() if not key.endswith("num_batches_tracked")}
    write_state_dict(prefixed, tmp_path / "prefixed.safetensors")
    model = load_model("retinaface", path=tmp_path / "prefixed.safetensors")
    assert torch.equal(model.ClassHead[0].conv1x1.bias, state["ClassHead.0.conv1x1.bias"])

    del prefixed["module.fpn.merge1.1.running_var"]
    write_state_dict(prefixed, tmp_path / "partial.safetensors")
    with pytest.raises(CheckpointMismatchError, match="fpn.merge1.1.running_var"):
        load_model("retinaface", path=tmp_path / "partial.safetensors")


def test_priors_follow_head_order() -> None:
    priors = prior_boxes(40, 64)
    assert priors.dtype == torch.float32
    assert len(priors) == 2 * (5 * 8 + 3 * 4 + 2 * 2)
    # First cell of stride 8: both anchor sizes, centred on (4, 4) pixels.
    np.testing.assert_allclose(priors[0].numpy(), [4 / 64, 4 / 40, 16 / 64, 16 / 40], rtol=1e-6)
    np.testing.assert_allclose(priors[1].numpy(), [4 / 64, 4 / 40, 32 / 64, 32 / 40], rtol=1e-6)
    # Second cell moves along the row (x) first.
    np.testing.assert_allclose(priors[2, :2].numpy(), [12 / 64, 4 / 40], rtol=1e-6)


def test_preprocess_feeds_rgb_minus_means_and_resizes_the_long_side() -> None:
    image = np.zeros((30, 40, 3), np.uint8)
    image[..., 0] = 200  # blue in BGR
    x, factor = preprocess(image[None], max_size=None, bgr=True)
    assert factor == 1.0 and x.shape == (1, 3, 30, 40)
    assert x[0, :, 0, 0].tolist() == [-104.0, -117.0, 200.0 - 123.0]
    x, factor = preprocess(image[None], max_size=80, bgr=True)
    assert factor == 2.0 and x.shape == (1, 3, 60, 80)  # small images are upscaled too


def _decoded(boxes: list, scores: list) -> DecodedDetections:
    boxes = np.asarray(boxes, np.float32)
    landmarks = np.repeat(boxes[:, :2], 5, axis=0).reshape(len(boxes), 10)
    return DecodedDetections(boxes, landmarks, np.asarray(scores, np.float32))


def test_nms_uses_the_plus_one_convention() -> None:
    # Two 10x10 boxes (11x11 with +1) shifted by 5 px: IoU = 66 / (121 + 121 - 66) = 0.375 -> both kept.
    boxes = np.array([[0, 0, 10, 10], [0, 5, 10, 15]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores) == [0, 1]
    # Shifted by 4 px: IoU = 77 / 165 = 0.467 -> the second is suppressed.
    boxes = np.array([[0, 0, 10, 10], [0, 4, 10, 14]], np.float32)
    assert nms(boxes, scores) == [0]


def test_select_faces_thresholds_strictly_suppresses_and_sorts_by_score() -> None:
    decoded = _decoded(
        [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [80, 0, 90, 10], [20, 20, 30, 30]],
        [0.98, 0.99, 0.975, 0.97, 0.5],
    )
    faces = select_faces(decoded, threshold=0.97)
    assert [face.score for face in faces] == pytest.approx([0.99, 0.975])  # 0.97 is not > 0.97; box 0 suppressed
    assert faces[0].box.dtype == np.float32 and faces[0].box.tolist() == [1, 1, 11, 11]
    assert faces[0].keypoints.shape == (5, 2) and faces[0].keypoints.dtype == np.float32
    assert select_faces(_decoded([[0, 0, 1, 1]], [0.2]), threshold=0.97) == []


def test_select_faces_keeps_at_most_750() -> None:
    boxes = [[i * 20, 0, i * 20 + 10, 10] for i in range(POST_NMS_KEEP + 5)]
    faces = select_faces(_decoded(boxes, np.linspace(0.99, 0.98, len(boxes))), threshold=0.5)
    assert len(faces) == POST_NMS_KEEP


def test_sort_faces_goes_left_to_right_then_top_down_and_is_stable() -> None:
    def face(x: float, y: float, tag: float) -> DetectedFace:
        keypoints = np.zeros((5, 2), np.float32)
        keypoints[0] = (x, y)
        return DetectedFace(np.zeros(4, np.float32), keypoints, tag)

    faces = [face(30, 5, 0), face(10, 9, 1), face(10, 2, 2), face(30, 5, 3), face(20, 0, 4)]
    assert [f.score for f in sort_faces(faces)] == [2, 1, 4, 0, 3]


def test_large_image_is_detected_at_the_long_side_limit_and_mapped_back() -> None:
    # Plant a face on the stride-32 prior at row 10, column 20 (large anchor, 512 px in the network input).
    network = PlantedNetwork(_prior_at(32, 1, 10, 20))
    detector = FaceDetector(network, "cpu", threshold=0.97, max_size=1280)
    image = np.full((3000, 4000, 3), 128, np.uint8)
    (face,) = detector.detect(image)
    assert network.input_sizes == [(960, 1280)]
    factor = 1280 / 4000
    centre = np.array([(20 + 0.5) * 32, (10 + 0.5) * 32]) / factor
    half = 512 / 2 / factor
    np.testing.assert_allclose(face.box, [*(centre - half), *(centre + half)], rtol=1e-5)
    np.testing.assert_allclose(face.keypoints, np.tile(centre, (5, 1)), rtol=1e-5)
    assert face.score == pytest.approx(0.99)


def test_detect_batch_groups_sizes_and_keeps_image_order() -> None:
    network = PlantedNetwork(_prior_at(8, 0, 2, 3))
    detector = FaceDetector(network, "cpu", threshold=0.9, max_size=None)
    images = [np.zeros((64, 48, 3), np.uint8), np.zeros((40, 40, 3), np.uint8), np.zeros((64, 48, 3), np.uint8)]
    results = detector.detect_batch(images)
    assert sorted(network.input_sizes) == [(40, 40), (64, 48)]  # one batch per size
    assert [len(faces) for faces in results] == [1, 1, 1]
    np.testing.assert_allclose(results[1][0].box, [28 - 8, 20 - 8, 28 + 8, 20 + 8], rtol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((8, 8), np.uint8))


def test_real_network_returns_no_face_when_nothing_passes_the_threshold(standin_weights: Path) -> None:
    detector = load_face_detector(weights_dir=standin_weights, threshold=0.97, max_size=96)
    heads = detector.model.ClassHead
    with torch.no_grad():
        for head in heads:  # a stand-in that cannot fire: background logit +10, face logit -10
            head.conv1x1.weight.zero_()
            head.conv1x1.bias.copy_(torch.tensor([10.0, -10.0, 10.0, -10.0]))
    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    assert detector.detect(image) == []
    assert detector.detect_batch([image, image]) == [[], []]


def _iou_plus_one(first: np.ndarray, second: np.ndarray) -> float:
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]) + 1)
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]) + 1)
    areas = [(box[2] - box[0] + 1) * (box[3] - box[1] + 1) for box in (first, second)]
    return width * height / (sum(areas) - width * height)


def _greedy_nms(boxes: np.ndarray, visit: np.ndarray) -> list[int]:
    kept: list[int] = []
    for index in visit:
        if all(_iou_plus_one(boxes[index], boxes[other]) <= 0.4 for other in kept):
            kept.append(int(index))
    return kept


def test_tied_scores_are_visited_in_the_reference_order_sorted_twice() -> None:
    # A chain of boxes, each overlapping the next (IoU 0.6) and not the one after, all scoring exactly 1.0 as
    # saturated faces do. The reference sorts the candidates (numpy argsort reversed), then its NMS sorts the
    # sorted scores again the same way, which reorders ties; which boxes survive depends on that order.
    count = 12
    boxes = np.array([[index * 10, 0, index * 10 + 39, 39] for index in range(count)], np.float32)
    scores = np.ones(count, np.float32)
    first = np.argsort(scores)[::-1]
    visit = first[np.argsort(scores[first])[::-1]]
    expected = boxes[_greedy_nms(boxes, visit)]
    assert not np.array_equal(expected, boxes[_greedy_nms(boxes, first)])  # sorting once keeps other boxes
    faces = select_faces(_decoded(boxes.tolist(), scores.tolist()), threshold=0.5)
    np.testing.assert_array_equal(np.stack([face.box for face in faces]), expected)


def test_mixed_ties_keep_the_reference_boxes_and_score_order() -> None:
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 200, (300, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(20, 60, (300, 2))], axis=1).astype(np.float32)
    scores = np.where(rng.random(300) < 0.8, 1.0, rng.choice([0.99, 0.995], 300)).astype(np.float32)
    first = np.argsort(scores)[::-1]
    visit = first[np.argsort(scores[first])[::-1]]
    kept = _greedy_nms(boxes, visit)
    expected = [kept[i] for i in sorted(range(len(kept)), key=lambda i: -scores[kept[i]])]  # stable
    faces = select_faces(_decoded(boxes.tolist(), scores.tolist()), threshold=0.5)
    np.testing.assert_array_equal(np.stack([face.box for face in faces]), boxes[expected])
    assert [face.score for face in faces] == scores[expected].tolist()


def test_without_upscale_small_images_keep_their_size_and_large_ones_shrink() -> None:
    image = np.zeros((30, 40, 3), np.uint8)
    assert preprocess(image[None], max_size=80, upscale=False)[0].shape == (1, 3, 30, 40)
    x, factor = preprocess(image[None], max_size=20, upscale=False)
    assert factor == 0.5 and x.shape == (1, 3, 15, 20)


def test_with_sizing_shares_the_network() -> None:
    network = PlantedNetwork(_prior_at(8, 0, 2, 3))
    detector = FaceDetector(network, "cpu", threshold=0.9, max_size=1280)
    native = detector.with_sizing(None)
    assert native.model is network and native.threshold == 0.9 and native.max_size is None
    native.detect(np.zeros((64, 48, 3), np.uint8))
    detector.detect(np.zeros((64, 48, 3), np.uint8))
    assert network.input_sizes == [(64, 48), (1280, 960)]
