"""Published FaceForensics++ numbers shown beside ours, each with where it was read; "not found" is said as such.

The published columns come from other estimators (CosFace retrieval, Hopenet pose, 3DMM expression, in the
FaceShifter protocol), so they are context, not a like-for-like comparison (README "Evaluating a generator").
"""
from __future__ import annotations

from dataclasses import dataclass

HIFIFACE = "HifiFace (Wang et al., 2021), FaceForensics++ results as listed on paperswithcode.com/paper/" \
           "hififace-3d-shape-and-semantic-prior-guided"
SIMSWAP_PLUS = "SimSwap++ (Chen et al., IEEE TPAMI 46(1), 2024), abstract: \"97.55% ID accuracy on FaceForensics++\""
GHOST = "GHOST - A New Face Swap Approach for Image and Video Domains (IEEE Access 10, pp. 83452-83462, 2022, " \
        "ieeexplore.ieee.org/document/9851423): its table was not found; the abstract only gives differences " \
        "(+1.5% ID retrieval, +1% eye gaze over the best other method)"


@dataclass(frozen=True)
class PublishedValue:
    """One published number: method, our metric name, value (None: not found) and its source."""

    method: str
    metric: str
    value: float | None
    source: str


PUBLISHED = (
    PublishedValue("GHOST", "id_retrieval", None, GHOST),
    PublishedValue("GHOST", "pose_error", None, GHOST),
    PublishedValue("GHOST", "expression_error", None, GHOST),
    PublishedValue("GHOST", "eye_error", None, GHOST),
    PublishedValue("HifiFace", "id_retrieval", 98.48, HIFIFACE),
    PublishedValue("HifiFace", "pose_error", 2.63, HIFIFACE),
    PublishedValue("SimSwap++", "id_retrieval", 97.55, SIMSWAP_PLUS),
)


def published_for(metric: str) -> list[PublishedValue]:
    """The published values of one metric, in PUBLISHED order."""
    return [value for value in PUBLISHED if value.metric == metric]


def sources() -> list[str]:
    """Every distinct source, in first-use order (the table's footnotes)."""
    return list(dict.fromkeys(value.source for value in PUBLISHED))
