"""Known answers of the scorer with stand-in weights: their values are arbitrary, these properties are not.

* the target scored as its own swap has pose, expression and eye error 0 (and another picture does not);
* the source scored as the swap has the source's self-similarity and is retrieved among the sources;
* a flipped face turns yaw round (with a motion model whose yaw reads the left/right asymmetry, since random
  weights know nothing of yaw) while keeping the crops LivePortrait sees mirror images of each other;
* missing weights switch off their metrics only, with a message naming the download script.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from tests.evaluation.conftest import TEST_EMBEDDINGS, face_landmarks, geometry_of, mirrored
from utils.evaluation import metrics
from utils.evaluation.measures import FaceMeasures
from utils.evaluation.scoring import FaceGeometry, FrameScorer, Gallery
from utils.image import bgr_to_tensor
from utils.inference.model_cache import ModelCache


def test_target_scored_as_its_own_swap_has_zero_attribute_errors(scorer: FrameScorer, photos, face) -> None:
    target = photos["astronaut"]
    target_face, swapped_face = scorer.measure_pair(target, face, target.copy())
    source_face = scorer.measure_source(photos["cameraman"], face)
    values = scorer.score(source_face, target_face, swapped_face)
    assert values["pose_error"] == 0.0
    assert values["expression_error"] == 0.0
    assert values["eye_error"] == 0.0
    assert scorer.outside_change(target, target.copy(), target_face) == 0.0


def test_another_picture_in_the_target_place_has_attribute_errors(scorer: FrameScorer, photos, face) -> None:
    # The metrics are not trivially 0: a different face in the same place changes what every model sees.
    target, other = photos["astronaut"], photos["cameraman"]
    target_face, swapped_face = scorer.measure_pair(target, face, other)
    values = scorer.score(scorer.measure_source(other, face), target_face, swapped_face)
    assert values["pose_error"] > 0
    assert values["expression_error"] > 0
    assert values["eye_error"] > 0
    assert scorer.outside_change(target, other, target_face) > 0


def test_source_scored_as_the_swap_matches_its_self_similarity(scorer: FrameScorer, measures: FaceMeasures,
                                                               photos, face) -> None:
    source_image, other_source = photos["astronaut"], cv2.flip(photos["cameraman"], 0)
    sources = [scorer.measure_source(image, face) for image in (other_source, source_image)]
    gallery = Gallery(torch.stack([item.embedding for item in sources]), torch.tensor([0, 1]))
    # A different-sized picture makes the scorer cut the swapped face with its own geometry: the source's.
    target = photos["cameraman"][:160, :180]
    target_geometry = geometry_of(face_landmarks((40.0, 30.0, 120.0, 140.0)))
    target_face, swapped_face = scorer.measure_pair(target, target_geometry, source_image, face)
    values = scorer.score(sources[1], target_face, swapped_face, gallery, source_row=1)

    embedding = measures.embed(bgr_to_tensor(sources[1].crop))
    self_similarity = float(metrics.cosine_similarity(embedding, embedding)[0])
    assert values["id_similarity"] == pytest.approx(self_similarity, abs=1e-5)
    assert values["id_retrieval"] == 100.0
    assert math.isnan(scorer.outside_change(target, source_image, target_face))  # other size: not comparable


class MirrorYawExtractor(nn.Module):
    """A motion extractor whose yaw follows the image's left/right brightness difference (flip: yaw negated)."""

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        half = image.shape[-1] // 2
        asymmetry = image[..., :half].mean(dim=(1, 2, 3)) - image[..., half:].mean(dim=(1, 2, 3))
        bins = torch.arange(66, dtype=torch.float32) - 32.5
        batch = image.shape[0]
        zeros = torch.zeros(batch, 66)
        return {"pitch": zeros, "yaw": 0.2 * asymmetry[:, None] * bins, "roll": zeros, "t": torch.zeros(batch, 3),
                "exp": torch.zeros(batch, 63), "scale": torch.ones(batch, 1), "kp": torch.zeros(batch, 63)}


def test_a_flipped_face_turns_yaw_round(standin_weights: Path, evaluation_models: ModelCache, photos, face) -> None:
    models = evaluation_models.copy()
    models.put(("liveportrait_motion_extractor", None, str(standin_weights)), MirrorYawExtractor())
    flip_scorer = FrameScorer(FaceMeasures(TEST_EMBEDDINGS, torch.device("cpu"), str(standin_weights),
                                           models=models), ("pose_error",))
    image = photos["astronaut"].copy()
    image[40:150, 50:90] = 255  # a bright left cheek: a left/right difference far above interpolation noise
    flipped_image = cv2.flip(image, 1)
    flipped_face = mirrored(face, image.shape[1])

    crop = flip_scorer.measures.motion_crop(image, face.landmarks_68)
    flipped_crop = flip_scorer.measures.motion_crop(flipped_image, flipped_face.landmarks_68)
    # Mirror images up to LivePortrait's half-pixel crop centre: far closer than the unmirrored crops are.
    mirror_difference = np.abs(flipped_crop.astype(int) - crop[:, ::-1].astype(int)).mean()
    assert mirror_difference < 0.1 * np.abs(flipped_crop.astype(int) - crop.astype(int)).mean()

    original, _ = flip_scorer.measure_pair(image, face, image)
    flipped, _ = flip_scorer.measure_pair(flipped_image, flipped_face, flipped_image)
    yaw, flipped_yaw = float(original.angles[1]), float(flipped.angles[1])
    assert abs(yaw) > 1.0
    assert flipped_yaw == pytest.approx(-yaw, abs=0.05 * abs(yaw))
    values = flip_scorer.score(original, original, flipped)
    assert values["pose_error"] == pytest.approx(2 * abs(yaw), rel=0.05)


def test_missing_weights_switch_off_only_their_metrics(standin_weights: Path, evaluation_models: ModelCache,
                                                       tmp_path: Path, photos, face) -> None:
    measures = FaceMeasures(TEST_EMBEDDINGS, torch.device("cpu"), str(standin_weights),
                            paths={"adaptive_wing_fan": str(tmp_path / "absent.safetensors")},
                            models=evaluation_models)
    partial_scorer = FrameScorer(measures)
    assert set(partial_scorer.unavailable) == {"eye_error"}
    assert "download_all_models.sh" in partial_scorer.unavailable["eye_error"]
    target = photos["astronaut"]
    target_face, swapped_face = partial_scorer.measure_pair(target, face, target.copy())
    values = partial_scorer.score(partial_scorer.measure_source(target, face), target_face, swapped_face)
    assert math.isnan(values["eye_error"])
    assert values["pose_error"] == 0.0 and values["id_similarity"] == pytest.approx(1.0, abs=1e-5)


def test_only_the_models_of_the_asked_metrics_load(standin_weights: Path, photos, face) -> None:
    models = ModelCache()
    identity_only = FrameScorer(FaceMeasures(TEST_EMBEDDINGS, torch.device("cpu"), str(standin_weights),
                                             models=models), ("id_similarity", "outside_face_change"))
    target = photos["astronaut"]
    target_face, swapped_face = identity_only.measure_pair(target, face, target.copy())
    assert models.loaded() == [TEST_EMBEDDINGS]
    assert target_face.angles is None and target_face.eyes is None and swapped_face.embedding is not None


def test_geometry_helpers_place_a_face(face: FaceGeometry) -> None:
    # The hand-made face must be upright and frontal for the crops above to mean anything.
    left_eye, right_eye, nose, left_mouth, right_mouth = face.keypoints
    assert left_eye[0] < nose[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
    assert left_eye[1] == pytest.approx(right_eye[1]) and nose[1] < left_mouth[1]
