"""Which target faces are replaced and by which source: indices, every face, reference similarities."""
from __future__ import annotations

import numpy as np
import pytest

from utils.errors import GhostError
from utils.inference.selection import (
    DEFAULT_SIMILARITY_TH,
    FaceSelection,
    FaceSelectionError,
    cosine_similarities,
    match_references,
    pick_by_index,
    pick_by_reference,
)
from utils.inference.video import VideoOptions


def test_cosine_similarity_ignores_the_embeddings_length() -> None:
    faces = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    references = np.array([[1.0, 0.0], [0.0, 0.5]])
    np.testing.assert_allclose(cosine_similarities(faces, references),
                               [[1, 0], [0, 1], [2 ** -0.5, 2 ** -0.5]], atol=1e-12)


def test_each_face_takes_its_most_similar_reference_above_the_threshold() -> None:
    similarities = np.array([[0.9, 0.2], [0.3, 0.4], [0.1, 0.05], [0.15, -1.0]])
    assert match_references(similarities, 0.15) == [0, 1, None, 0]
    assert match_references(similarities, 0.5) == [0, None, None, None]
    embeddings = np.array([[1.0, 0.1], [0.1, 1.0], [-1.0, -1.0]])
    assert pick_by_reference(embeddings, np.eye(2), DEFAULT_SIMILARITY_TH) == [(0, 0), (1, 1)]
    assert pick_by_reference(np.zeros((0, 2)), np.eye(2), DEFAULT_SIMILARITY_TH) == []


def test_indices_and_every_face() -> None:
    assert pick_by_index(3, FaceSelection()) == [(0, 0)]
    assert pick_by_index(3, FaceSelection(target_face_indices=(2, 0, 5))) == [(0, 0), (2, 0)]
    assert pick_by_index(3, FaceSelection(swap_all_faces=True)) == [(0, 0), (1, 0), (2, 0)]
    assert pick_by_index(0, FaceSelection()) == []


def test_sources_and_references_must_pair() -> None:
    FaceSelection().check_sources(1)
    FaceSelection(reference_face_paths=("a.jpg", "b.jpg")).check_sources(2)
    with pytest.raises(FaceSelectionError, match="2 source image"):
        FaceSelection(reference_face_paths=("a.jpg",)).check_sources(2)
    with pytest.raises(FaceSelectionError, match="several sources"):
        FaceSelection().check_sources(2)
    with pytest.raises(FaceSelectionError, match="cosine similarity"):
        FaceSelection(similarity_th=1.5)
    with pytest.raises(FaceSelectionError, match="count from 0"):
        FaceSelection(target_face_indices=(-1,))


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("smooth_window", -1), ("video_quality", 64),
                                          ("nsfw_check_seconds", 0.0)])
def test_video_options_refuse_values_that_mean_nothing(field: str, value: float) -> None:
    with pytest.raises(GhostError, match=field):
        VideoOptions(**{field: value})
