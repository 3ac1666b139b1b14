"""preprocess_lagenda.py / preprocess_laion.py with --ray_address: the single process's files, byte for byte.

One local Ray instance with 2 CPUs serves the module (the CLI's ``--ray_address local`` then uses it); the runs
are on stand-in weights with --no-retargeting (detection + alignment), on the small inputs of tests/cli/conftest.py.
Ray is a test requirement (requirements-ray.txt): without it these tests fail under CI=true and are reported as
skipped elsewhere.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import preprocess_laion
import preprocess_lagenda
from tests.cli.conftest import (
    files_under,
    lagenda_args,
    laion_args,
    require_ray,
    snapshot,
    write_laion_folder,
    write_lagenda_folder,
)
from utils.cli import make_parser
from utils.errors import GhostError
from utils.preprocessing.pipeline import Summary
from utils.preprocessing.preprocess_arguments import add_lagenda_arguments, add_laion_arguments, options_from_args
from utils.preprocessing.ray_runner import (
    ModelSettings,
    PreprocessStage,
    preprocess_lagenda_on_ray,
    preprocess_laion_on_ray,
)
from utils.ray_cluster import RayOptions, worker_environment

REPO_ROOT = Path(__file__).resolve().parents[2]
RAY_FLAGS = ["--ray_address", "local", "--ray_actors", "1"]
ONE_ACTOR_ON_CPU = RayOptions("local", ray_actors=1, ray_gpus_per_actor=0)


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs for the whole module; tasks and actors import this checkout."""
    ray = require_ray()
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=worker_environment(), logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    write_lagenda_folder(root / "lagenda")
    write_laion_folder(root / "laion")
    return root


@pytest.fixture(scope="module")
def single_process(inputs: Path, standin_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: both datasets preprocessed in this process (no Ray)."""
    out = tmp_path_factory.mktemp("single")
    assert preprocess_lagenda.main(lagenda_args(inputs / "lagenda", out / "lagenda", standin_weights,
                                                "--no-retargeting")) == 0
    assert preprocess_laion.main(laion_args(inputs / "laion", out / "laion", standin_weights, "--no-retargeting")) == 0
    return out


def library_arguments(argv: list[str], laion: bool, weights: Path) -> tuple:
    """``(options, models)`` exactly as the CLI builds them from ``argv``."""
    parser = make_parser("test", "")
    (add_laion_arguments if laion else add_lagenda_arguments)(parser)
    options, paths = options_from_args(parser.parse_args(argv))
    return options, ModelSettings("cpu", str(weights), paths, torch.get_num_threads())


class DiesOnceStage(PreprocessStage):
    """Kills its own worker process when handed the third sample of the first shard, the first time only (a file
    remembers): the shard is interrupted half-way, on a worker that is gone."""

    KEY = "split_00000/00000/1003"

    def __init__(self, options, models) -> None:
        super().__init__(options, models)
        self.flag = options.output_dir_resized.parent / "worker_died"

    def __call__(self, batch):
        if self.KEY in list(batch["key"]) and not self.flag.exists():
            self.flag.write_text(str(os.getpid()))
            os._exit(1)
        return super().__call__(batch)


class InterruptedStage(PreprocessStage):
    """Stops the run (an error no retry mends) when handed its second photo: the first one is finished."""

    def __init__(self, options, models) -> None:
        super().__init__(options, models)
        self.photos = 0

    def __call__(self, batch):
        self.photos += sum(photo.size > 0 for photo in batch["photo"])
        if self.photos == 2:
            raise GhostError("planted interruption")
        return super().__call__(batch)


def test_ray_run_writes_the_single_process_files(local_ray, inputs: Path, single_process: Path,
                                                 standin_weights: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert preprocess_lagenda.main(lagenda_args(inputs / "lagenda", tmp_path / "lagenda", standin_weights,
                                                    "--no-retargeting", *RAY_FLAGS)) == 0
        assert preprocess_laion.main(laion_args(inputs / "laion", tmp_path / "laion", standin_weights,
                                                "--no-retargeting", *RAY_FLAGS)) == 0
    for dataset in ("lagenda", "laion"):
        reference = files_under(single_process / dataset / "faces")
        assert files_under(tmp_path / dataset / "faces") == reference
    # The aligned faces, every done-marker (with the corrupt images' reasons) and both shard.complete markers.
    assert "split_00000/00001/.done/shard.complete" in reference
    assert "split_00000/00000/.done/1002.done" in reference and "split_00000/00000/1003_00/0.jpg" in reference
    assert "images read: 5 (already done: 0, failed: 1)" in caplog.text
    assert "images failed by reason: unreadable_image: 1" in caplog.text

    before = snapshot(tmp_path / "laion" / "faces")  # a rerun opens no finished shard and rewrites nothing
    assert preprocess_laion.main(laion_args(inputs / "laion", tmp_path / "laion", standin_weights,
                                            "--no-retargeting", *RAY_FLAGS)) == 0
    assert snapshot(tmp_path / "laion" / "faces") == before


def test_a_shard_whose_worker_died_is_redone_to_the_same_files(local_ray, inputs: Path, single_process: Path,
                                                               standin_weights: Path, tmp_path: Path) -> None:
    argv = laion_args(inputs / "laion", tmp_path, standin_weights, "--no-retargeting")
    options, models = library_arguments(argv, True, standin_weights)
    summary = preprocess_laion_on_ray(inputs / "laion", [0], options, models, ONE_ACTOR_ON_CPU, DiesOnceStage)
    assert (tmp_path / "worker_died").exists()  # the actor's process did die, in the middle of shard 00000
    # Every face, every done-marker and both shard.complete markers, as one process writes them.
    assert files_under(tmp_path / "faces") == files_under(single_process / "laion" / "faces")
    assert (summary.images_read, summary.faces_kept, summary.variants_written) == (5, 3, 3)


def test_an_interrupted_ray_run_resumes_without_redoing_finished_work(local_ray, inputs: Path,
                                                                      single_process: Path, standin_weights: Path,
                                                                      tmp_path: Path) -> None:
    argv = lagenda_args(inputs / "lagenda", tmp_path, standin_weights, "--no-retargeting")
    options, models = library_arguments(argv, False, standin_weights)
    with pytest.raises(GhostError, match="planted interruption"):
        preprocess_lagenda_on_ray(inputs / "lagenda", options, models, ONE_ACTOR_ON_CPU, InterruptedStage)
    interrupted = snapshot(tmp_path / "faces")
    assert any(name.endswith("_00/0.jpg") for name in interrupted)  # the first photo was finished

    summary = preprocess_lagenda_on_ray(inputs / "lagenda", options, models, ONE_ACTOR_ON_CPU)
    assert files_under(tmp_path / "faces") == files_under(single_process / "lagenda" / "faces")
    resumed = snapshot(tmp_path / "faces")
    assert all(resumed[name] == state for name, state in interrupted.items())  # nothing finished was redone
    assert summary.images_already_done >= 1 and summary.images_read + summary.images_already_done == 5


def test_randomness_does_not_depend_on_the_process(local_ray) -> None:
    """What the variants draw (expressions, flips; GFPGAN's noise) depends on the seed and the image key only."""
    from models.gfpgan import seeded_noise
    from models.liveportrait.retargeting import draw_face_parameters
    from utils.preprocessing.pipeline import image_rng

    def draws(seed: int, key: str) -> tuple:
        rng = image_rng(seed, key)
        with seeded_noise(1234, torch.device("cpu")):
            noise = torch.randn(4).tolist()
        return repr(draw_face_parameters(rng, 2)), rng.getrandbits(8), noise

    remote = local_ray.remote(draws)
    assert local_ray.get(remote.remote(7, "split_00000/00000/1001")) == draws(7, "split_00000/00000/1001")
    assert draws(7, "a.jpg") != draws(8, "a.jpg")


def test_missing_weights_on_a_node_is_one_line(tmp_path: Path, inputs: Path) -> None:
    """A real `--ray_address local` start in a fresh process; the node check names the node and the file."""
    require_ray()
    empty = tmp_path / "no_weights"
    empty.mkdir()
    argv = lagenda_args(inputs / "lagenda", tmp_path / "out", empty, "--no-retargeting", "--ray_address", "local")
    result = subprocess.run([sys.executable, "preprocess_lagenda.py", *argv], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert f"node {socket.gethostname()}" in errors[0] and str(empty / "RetinaFace") in errors[0]


def test_summaries_travel_between_processes_unchanged() -> None:
    summary = Summary(images_read=3, images_already_done=1, faces_kept=2, variants_written=4)
    summary.rejected["face_too_small"] += 2
    summary.failures["unreadable_image"] += 1
    assert Summary.from_json(summary.to_json()) == summary
