"""The metric functions on constructed measurements whose answers are known (no model involved)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from utils.evaluation import metrics
from utils.evaluation.options import default_eval_embeddings


def test_retrieval_among_sources_picks_each_swap_s_own_source() -> None:
    generator = torch.Generator().manual_seed(0)
    sources = torch.nn.functional.normalize(torch.randn(8, 512, generator=generator), dim=1)
    order = torch.tensor([3, 0, 7, 7, 5, 1])
    # Swapped faces: their source plus noise smaller than the gap between random 512-d directions.
    swapped = sources[order] + 0.3 * torch.randn(6, 512, generator=generator) / math.sqrt(512)
    assert metrics.identity_retrieval(swapped, sources, order).all()
    wrong = torch.tensor([0, 3, 7, 6, 5, 1])
    assert metrics.identity_retrieval(swapped, sources, wrong).tolist() == [False, False, True, False, True, True]


def test_retrieval_by_identity_accepts_another_picture_of_the_same_person() -> None:
    sources = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])  # rows 0 and 1: two frames of one video
    swapped = torch.tensor([[0.9, 0.12]])  # nearest to row 1, made from row 0
    assert not metrics.identity_retrieval(swapped, sources, torch.tensor([0]))[0]
    assert metrics.identity_retrieval(swapped, sources, torch.tensor([0]), torch.tensor([7, 7, 8]))[0]
    assert not metrics.identity_retrieval(swapped, sources, torch.tensor([0]), torch.tensor([7, 8, 8]))[0]


def test_retrieval_ignores_the_embedding_scale() -> None:
    sources = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    swapped = torch.tensor([[0.2, 0.1], [10.0, 30.0]])  # raw ArcFace embeddings are not unit vectors
    assert metrics.identity_retrieval(swapped, sources * 7, torch.tensor([0, 1])).all()
    assert metrics.cosine_similarity(swapped, 3 * swapped).tolist() == pytest.approx([1.0, 1.0])


def test_pose_error_is_the_euclidean_angle_distance_in_degrees() -> None:
    angles = torch.tensor([[10.0, -20.0, 5.0], [0.0, 0.0, 0.0]])
    references = torch.tensor([[10.0, -17.0, 1.0], [0.0, 0.0, 0.0]])
    assert metrics.pose_error(angles, references).tolist() == pytest.approx([5.0, 0.0])


def test_expression_error_averages_keypoint_distances() -> None:
    references = torch.zeros(1, 21, 3)
    expressions = references.clone()
    expressions[0, 4] = torch.tensor([0.0, 3.0, 4.0])  # one keypoint moved by 5
    assert metrics.expression_error(expressions, references).tolist() == pytest.approx([5.0 / 21])


def test_eye_error_is_relative_to_the_inter_ocular_distance() -> None:
    references = torch.tensor([[100.0, 120.0, 160.0, 120.0]])
    eyes = references + torch.tensor([[3.0, 4.0, 0.0, 0.0]])  # left eye 5 px off, eyes 60 px apart
    assert metrics.eye_error(eyes, references).tolist() == pytest.approx([2.5 / 60])
    assert metrics.eye_error(eyes * 2, references * 2).tolist() == pytest.approx([2.5 / 60])  # scale-free
    assert metrics.eye_error(references, references).tolist() == [0.0]


def test_outside_face_keeps_a_margin_around_the_pasted_square() -> None:
    matrix = np.array([[2.0, 0.0, -100.0], [0.0, 2.0, -60.0]])  # 256 crop of the 128-pixel square at (50, 30)
    square = metrics.face_square(matrix, 256, (240, 320, 3))
    rows, columns = np.nonzero(square)
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (30, 157, 50, 177)
    outside = metrics.outside_face(matrix, 256, (240, 320, 3))
    margin = round(128 * metrics.OUTSIDE_MARGIN_FRACTION)
    assert not outside[30 - margin:158 + margin, 50 - margin:178 + margin].any()
    assert outside[:30 - margin - 1].all() and outside[:, 178 + margin + 1:].all()


def test_outside_face_change_sees_only_pixels_outside_the_face() -> None:
    target = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    outside = np.ones((120, 160), bool)
    outside[20:100, 40:120] = False
    swapped = target.copy()
    swapped[30:90, 50:110] = 0  # a new face: inside only
    assert metrics.outside_face_change(swapped, target, outside) == 0.0
    swapped[0, :10] = np.clip(target[0, :10].astype(int) + 30, 0, 255).astype(np.uint8)
    assert metrics.outside_face_change(swapped, target, outside) > 0
    assert math.isnan(metrics.outside_face_change(swapped, target, np.zeros_like(outside)))


def test_temporal_flicker_is_change_beyond_the_target_s_own_motion() -> None:
    rng = np.random.default_rng(1)
    first = rng.integers(0, 200, (64, 64, 3), dtype=np.uint8)
    second = cv2.add(first, np.full_like(first, 20))  # the target brightens by 20
    region = np.ones((64, 64), bool)
    # A swap that follows the target exactly (whatever it pasted) does not flicker.
    assert metrics.temporal_flicker(first // 2, second // 2 + (second - first) // 2, first, second, region) == 0.0
    assert metrics.temporal_flicker(first, first, first, second, region) == pytest.approx(20.0)


def test_summary_ignores_values_that_were_not_measured() -> None:
    assert metrics.summarize([1.0, math.nan, 3.0]) == {"mean": 2.0, "std": 1.0, "count": 2}
    assert metrics.summarize([math.nan]) == {"mean": None, "std": None, "count": 0}


def test_default_identity_model_differs_from_every_generator_s() -> None:
    assert default_eval_embeddings(["cvl_vit"]) == "adaface"
    assert default_eval_embeddings(["cvl_vit", "adaface", "arcface"]) == "cvl_arcface"
    assert default_eval_embeddings([]) == "adaface"
