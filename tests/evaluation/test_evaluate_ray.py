"""evaluate.py --ray_address local: the same pairs.csv, summary.json, worst_pairs.png and results as one process.

Two sources into a 2-frame clip (video pairs, each scored whole by one actor), with the identity and
outside-face metrics only (the cheapest models), on stand-in weights and a local Ray with 2 CPUs. The lossless
results are compared frame by frame (Matroska files carry a random segment id).
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import evaluate
from tests.cli.conftest import STANDIN_THRESHOLD, files_under, require_ray
from utils.evaluation.media import LosslessVideoWriter, read_frames
from utils.ray_cluster import worker_environment

pytestmark = pytest.mark.slow


@pytest.fixture()
def inputs(tmp_path: Path, example_images: dict[str, Path]) -> dict[str, Path]:
    for name in ("sources", "targets"):
        (tmp_path / name).mkdir()
    photos = {name: cv2.imread(str(path)) for name, path in example_images.items()}
    for name, photo in photos.items():
        cv2.imwrite(str(tmp_path / "sources" / f"{name}.png"), cv2.resize(photo, (112, 112),
                                                                         interpolation=cv2.INTER_AREA))
    portrait = cv2.resize(photos["cameraman"][:, 64:448], (96, 128), interpolation=cv2.INTER_AREA)
    writer = LosslessVideoWriter(tmp_path / "targets" / "drift.mkv", Fraction(10))
    for frame in (portrait, np.roll(portrait, 4, axis=1)):
        writer.write(frame)
    writer.close()
    return {"sources": tmp_path / "sources", "targets": tmp_path / "targets"}


def test_ray_scoring_writes_the_single_process_reports(inputs: dict[str, Path], standin_weights: Path,
                                                       normal_nsfw_model: Path, tmp_path: Path) -> None:
    ray = require_ray()
    flags = ["--sources", str(inputs["sources"]), "--targets", str(inputs["targets"]),
             "--metrics", "id_similarity", "id_retrieval", "outside_face_change", "--worst_pairs", "2",
             "--eval_face_embeddings", "facenet", "--weights_dir", str(standin_weights), "--device", "cpu",
             "--detection_threshold", str(STANDIN_THRESHOLD), "--nsfw_model", str(normal_nsfw_model),
             "--face_embeddings", "facenet", "--paste_back_mode", "insightface", "--no-enhance_output",
             "--no-inpaint_output"]
    assert evaluate.main([*flags, "--output_dir", str(tmp_path / "single")]) == 0
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=worker_environment(), logging_level=logging.WARNING)
    try:
        assert evaluate.main([*flags, "--output_dir", str(tmp_path / "ray"), "--ray_address", "local",
                              "--ray_actors", "1"]) == 0
    finally:
        ray.shutdown()
    single, on_ray = files_under(tmp_path / "single"), files_under(tmp_path / "ray")
    videos = ["swapped/astronaut__drift.mkv", "swapped/cameraman__drift.mkv"]
    assert sorted(single) == ["pairs.csv", "summary.json", *videos, "worst_pairs.png"] == sorted(on_ray)
    for name in videos:
        ours, theirs = (list(read_frames(folder / name)) for folder in (tmp_path / "single", tmp_path / "ray"))
        assert len(ours) == len(theirs) == 2
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ours, theirs))
        del single[name], on_ray[name]
    assert on_ray == single
    assert len((tmp_path / "ray" / "pairs.csv").read_text().splitlines()) == 1 + 2 * 2  # header, frames
