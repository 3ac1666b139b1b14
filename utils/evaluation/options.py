"""Every setting of an evaluation run in one record, each default written once (evaluate.py's flags come from it).

The swap itself is configured by :class:`utils.inference.options.SwapOptions` (inference.py's flags).
"""
from __future__ import annotations

from dataclasses import dataclass

from models.embeddings import FACE_EMBEDDING_NAMES
from models.registry import REPO_ROOT
from utils.errors import GhostError

# Per-frame metrics, in table order (the names of summary.json and the pairs.csv columns).
METRIC_NAMES = (
    "id_similarity", "id_retrieval", "pose_error", "expression_error", "eye_error", "outside_face_change",
    "temporal_flicker",
)
# What each metric is measured in, for the table.
METRIC_UNITS = {
    "id_similarity": "cosine, higher is better",
    "id_retrieval": "% top-1, higher is better",
    "pose_error": "degrees, lower is better",
    "expression_error": "LivePortrait units, lower is better",
    "eye_error": "x inter-ocular distance, lower is better",
    "outside_face_change": "mean |diff| 0-255, should be ~0",
    "temporal_flicker": "mean |diff| 0-255, lower is better (videos)",
}
HIGHER_IS_BETTER = frozenset({"id_similarity", "id_retrieval"})
# The model groups a metric needs (utils.evaluation.measures.FaceMeasures loads each group on first use).
METRIC_MODELS = {
    "id_similarity": "identity",
    "id_retrieval": "identity",
    "pose_error": "motion",
    "expression_error": "motion",
    "eye_error": "eyes",
}
# Default identity model of the evaluation: the first one that no evaluated generator was conditioned on (the
# GHOST paper scored its ArcFace-trained generator with CosFace for the same reason: a generator can fool the
# very model it was trained against).
EVAL_EMBEDDING_PREFERENCE = ("adaface", "cvl_arcface", "cvl_adaface", "facenet", "cvl_vit", "arcface")
DEFAULT_OUTPUT_DIR = str(REPO_ROOT / "examples/results/evaluate")


@dataclass(frozen=True)
class EvaluationOptions:
    """What to evaluate and where to write it (the swap settings are a separate SwapOptions)."""

    sources: str | None = None
    targets: str | None = None
    pairs: str | None = None
    swapped_dir: tuple[str, ...] = ()
    compare_G_path: tuple[str, ...] = ()  # noqa: N815 - inference.py's --G_path spelling
    compare_expression_restorer: tuple[float, ...] = ()
    output_dir: str = DEFAULT_OUTPUT_DIR
    eval_face_embeddings: str | None = None
    metrics: tuple[str, ...] = METRIC_NAMES
    frame_step: int = 1
    max_frames: int | None = None
    worst_pairs: int = 4
    save_swapped: bool = True
    motion_extractor_model_path: str | None = None
    eye_landmarks_model_path: str | None = None

    def check(self) -> None:
        """Reject options that cannot make a run, with one clear line."""
        if not self.sources or not self.targets:
            raise GhostError("--sources and --targets are both needed (a folder or a single file each)")
        if self.swapped_dir and self.compare_G_path:
            raise GhostError("--compare_G_path swaps with other generators; --swapped_dir scores results made "
                             "elsewhere: use one or the other")
        if self.swapped_dir and self.compare_expression_restorer:
            raise GhostError("--compare_expression_restorer swaps again with the expression restorer; --swapped_dir "
                             "scores results made elsewhere: use one or the other")
        bad = [factor for factor in self.compare_expression_restorer if not 0 <= factor <= 100]
        if bad:
            raise GhostError(f"--compare_expression_restorer factors must be between 0 and 100 (got "
                             f"{', '.join(f'{factor:g}' for factor in bad)})")
        unknown = [name for name in self.metrics if name not in METRIC_NAMES]
        if unknown:
            raise GhostError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRIC_NAMES)}")
        if self.eval_face_embeddings is not None and self.eval_face_embeddings not in FACE_EMBEDDING_NAMES:
            raise GhostError(f"unknown --eval_face_embeddings {self.eval_face_embeddings!r}; choose one of "
                             f"{', '.join(FACE_EMBEDDING_NAMES)}")
        if self.frame_step < 1:
            raise GhostError(f"--frame_step must be 1 or more (got {self.frame_step})")
        if self.max_frames is not None and self.max_frames < 1:
            raise GhostError(f"--max_frames must be 1 or more (got {self.max_frames})")
        if self.worst_pairs < 0:
            raise GhostError(f"--worst_pairs must be 0 or more (got {self.worst_pairs})")


def default_eval_embeddings(conditioning: list[str] | tuple[str, ...]) -> str:
    """The evaluation's identity model: the first of EVAL_EMBEDDING_PREFERENCE not in ``conditioning``.

    When every model conditions some generator, the first of the list is used anyway.
    """
    return next((name for name in EVAL_EMBEDDING_PREFERENCE if name not in conditioning), EVAL_EMBEDDING_PREFERENCE[0])
