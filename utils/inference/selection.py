"""Which target faces are replaced, and by which source: face indices, every face, or reference photos.

Reference matching (GHOST v1's ``--target_faces_paths`` / ``--similarity_th``): each detected target face is
embedded with the ``--face_embeddings`` model (the one that gives the generator its identity) and compared
with the face of every reference photo by cosine similarity of the L2-normalised embeddings (in [-1, 1]).
A face takes the source of its most similar reference when that similarity is at least ``similarity_th``;
otherwise it is left as it is. Each face is thus replaced at most once.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from utils.errors import FaceIndexError, GhostError, NoFaceFoundError

# GHOST v1's default: cosine similarities of different people are mostly below it with ArcFace-like models.
DEFAULT_SIMILARITY_TH = 0.15


class FaceSelectionError(GhostError):
    """Sources and reference faces that cannot be paired, or a reference photo without a face."""


@dataclass(frozen=True)
class FaceSelection:
    """Which target faces are replaced, and by which source.

    ``target_face_indices``: faces in CLI order (left to right), each replaced by source 0 (images; for videos
    the order of each frame). ``swap_all_faces``: every face gets source 0. ``reference_face_paths``: reference
    photo k <-> source k (overrides the two above); a face is replaced by the source of its most similar
    reference when the cosine similarity of their identity embeddings is at least ``similarity_th``.
    """

    target_face_indices: tuple[int, ...] = (0,)
    swap_all_faces: bool = False
    reference_face_paths: tuple[str, ...] = ()
    similarity_th: float = DEFAULT_SIMILARITY_TH

    def __post_init__(self) -> None:
        if not self.target_face_indices and not self.swap_all_faces and not self.reference_face_paths:
            raise FaceSelectionError("no target face chosen: give a face index, swap_all_faces or reference faces")
        if any(index < 0 for index in self.target_face_indices):
            raise FaceSelectionError(f"face indices count from 0; got {list(self.target_face_indices)}")
        if not -1.0 <= self.similarity_th <= 1.0:
            raise FaceSelectionError(f"similarity_th is a cosine similarity in [-1, 1]; got {self.similarity_th}")

    @property
    def uses_references(self) -> bool:
        return bool(self.reference_face_paths)

    def check_sources(self, source_count: int) -> None:
        """One clear error when the sources cannot be paired with the references (or are missing)."""
        if source_count == 0:
            raise FaceSelectionError("no source image given")
        references = len(self.reference_face_paths)
        if references and references != source_count:
            raise FaceSelectionError(
                f"{source_count} source image(s) but {references} reference face photo(s): give one reference "
                "photo (--target_faces_paths) per source (--source_file_path), in the same order"
            )
        if not references and source_count > 1:
            raise FaceSelectionError(
                f"{source_count} source images but no reference faces: with several sources, give one "
                "--target_faces_paths photo per source to say which target face each one replaces"
            )


def cosine_similarities(embeddings: np.ndarray, references: np.ndarray) -> np.ndarray:
    """``[F, D]`` face embeddings × ``[R, D]`` reference embeddings → ``[F, R]`` cosine similarities."""
    faces = np.asarray(embeddings, dtype=np.float64)
    refs = np.asarray(references, dtype=np.float64)
    faces = faces / np.maximum(np.linalg.norm(faces, axis=1, keepdims=True), 1e-12)
    refs = refs / np.maximum(np.linalg.norm(refs, axis=1, keepdims=True), 1e-12)
    return faces @ refs.T


def match_references(similarities: np.ndarray, threshold: float) -> list[int | None]:
    """For each face (row of ``[F, R]`` similarities), the index of its best reference, or None below ``threshold``."""
    matches: list[int | None] = []
    for row in np.asarray(similarities, dtype=np.float64).reshape(len(similarities), -1):
        best = int(np.argmax(row)) if row.size else -1
        matches.append(best if best >= 0 and row[best] >= threshold else None)
    return matches


def pick_by_index(face_count: int, selection: FaceSelection) -> list[tuple[int, int]]:
    """``(face index, source index)`` pairs of the faces chosen without references (source 0 each).

    Indices past the faces found are left out (a video frame may show fewer faces); the caller decides
    whether that is an error (it is for an image).
    """
    if selection.swap_all_faces:
        return [(index, 0) for index in range(face_count)]
    return [(index, 0) for index in sorted(set(selection.target_face_indices)) if index < face_count]


def pick_by_reference(
    embeddings: np.ndarray, reference_embeddings: np.ndarray, threshold: float
) -> list[tuple[int, int]]:
    """``(face index, source index)`` pairs of the faces similar enough to a reference (see the module doc)."""
    if len(embeddings) == 0:
        return []
    matches = match_references(cosine_similarities(embeddings, reference_embeddings), threshold)
    return [(index, source) for index, source in enumerate(matches) if source is not None]


def describe(selection: FaceSelection, source_paths: Sequence[object]) -> str:
    """One line saying which faces a run replaces (for the log)."""
    if selection.uses_references:
        return (f"{len(source_paths)} source(s), each replacing the faces whose identity has a cosine "
                f"similarity >= {selection.similarity_th} with its reference photo")
    if selection.swap_all_faces:
        return "every face gets the first source"
    return f"target face(s) {', '.join(map(str, selection.target_face_indices))} (left to right)"


def check_face_index(faces: list, face_index: int, role: str, threshold: float) -> None:
    """NoFaceFoundError when ``faces`` is empty, FaceIndexError when ``face_index`` is past its end."""
    if not faces:
        raise NoFaceFoundError(
            f"no face found in the {role} image (detection threshold {threshold}); "
            "try a lower --detection_threshold or another picture"
        )
    if not 0 <= face_index < len(faces):
        raise FaceIndexError(
            f"{role} face index {face_index} is out of range: {len(faces)} face(s) found in the {role} image "
            f"(valid indices 0 to {len(faces) - 1})"
        )
