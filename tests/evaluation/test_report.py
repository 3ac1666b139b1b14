"""WorstPairs: the worst frames by one total order, so that a run's worst are found among its pairs' worst."""
from __future__ import annotations

import random

import numpy as np

from utils.evaluation.report import WorstPairs

METRICS = ("id_retrieval", "pose_error")  # one higher-is-better metric with many ties (0 or 100), one lower


def test_equally_bad_frames_keep_the_first_offered() -> None:
    worst = WorstPairs(METRICS, 2)
    for caption in ("a", "b", "c"):
        assert worst.offer(caption, {"id_retrieval": 0.0}, ()) == (caption != "c")
    assert worst.offer("d", {"id_retrieval": 100.0}, ()) is False
    assert worst.captions() == {"a", "b"}


def worst_of_run(pairs: list[list[dict[str, float]]], count: int, only_pairs_worst: bool) -> WorstPairs:
    """The run's WorstPairs, offered every frame or only those among their own pair's worst (what Ray sends)."""
    face = np.zeros((8, 8, 3), np.uint8)
    run = WorstPairs(METRICS, count)
    for pair, frames in enumerate(pairs):
        local = WorstPairs(METRICS, count)
        for frame, values in enumerate(frames):
            local.offer(str(frame), values, ())
        kept = local.captions()
        for frame, values in enumerate(frames):
            if str(frame) in kept or not only_pairs_worst:
                run.offer(f"{pair}#{frame}", values, (face, face, face))
    return run


def test_the_worst_of_a_run_are_among_the_worst_of_its_pairs() -> None:
    # Equal values, then a worse one in the same pair: the pair keeps its second 5 and the 6. Had the run kept
    # a later equal frame over an earlier one, it would keep the pair's first 5, which the pair did not send.
    ties = [[{"pose_error": 1.0}, {"pose_error": 5.0}], [{"pose_error": 5.0}, {"pose_error": 5.0}, {"pose_error": 6.0}]]
    rng = random.Random(3)
    noisy = [[{"id_retrieval": rng.choice([0.0, 100.0]), "pose_error": float(rng.randint(0, 5))}
              for _ in range(rng.randint(1, 6))] for _ in range(40)]
    for pairs, count in ((ties, 2), (noisy, 4)):
        everything, filtered = worst_of_run(pairs, count, False), worst_of_run(pairs, count, True)
        assert everything.captions() == filtered.captions()
        assert np.array_equal(everything.render(), filtered.render())
    assert worst_of_run(ties, 2, False).captions() == {"0#1", "1#2"}
