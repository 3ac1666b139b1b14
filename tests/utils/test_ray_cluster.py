"""utils/ray_cluster.py without a cluster: actor sizing, finding our error in Ray's wrappers, the weights check list."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.registry import CHECKPOINTS
from utils.errors import GhostError, WeightsNotFoundError
from utils.preprocessing.model_loading import load_models, required_checkpoints
from utils.preprocessing.options import PreprocessOptions
from utils.ray_cluster import RayOptions, actor_plan, missing_files, user_error


@pytest.mark.parametrize("resources, options, threads, expected", [
    ({"CPU": 64, "GPU": 8}, RayOptions("auto"), 16, (8, 1.0)),  # one actor per GPU by default
    ({"CPU": 64, "GPU": 8}, RayOptions("auto", ray_gpus_per_actor=0.25), 16, (32, 0.25)),  # four per GPU
    ({"CPU": 64, "GPU": 8}, RayOptions("auto", ray_actors=3, ray_gpus_per_actor=0.5), 16, (3, 0.5)),
    ({"CPU": 2}, RayOptions("local"), 2, (1, 0.0)),  # no GPU: one actor per `threads` CPUs
    ({"CPU": 64}, RayOptions("auto"), 16, (4, 0.0)),
])
def test_actor_plan(resources: dict, options: RayOptions, threads: int, expected: tuple) -> None:
    assert actor_plan(resources, options, threads) == expected


def test_actor_plan_refuses_gpus_the_cluster_does_not_have() -> None:
    with pytest.raises(GhostError, match="has 0 GPU"):
        actor_plan({"CPU": 8}, RayOptions("auto", ray_gpus_per_actor=1), 1)
    with pytest.raises(GhostError, match="--ray_actors"):
        RayOptions("auto", ray_actors=-1).check()


class FakeRayTaskError(Exception):
    """Shaped like Ray's wrapper of a task's exception: the original is its ``cause``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"Traceback (most recent call last): ... {cause!r}")
        self.cause = cause


def test_user_error_finds_our_error_inside_ray_wrappers() -> None:
    inner = GhostError("node a (10.0.0.2): missing weights for X")
    wrapped = FakeRayTaskError(RuntimeError("user code failed"))
    wrapped.cause.__cause__ = inner
    assert str(user_error(wrapped)) == str(inner)
    # An actor that failed to start only carries its traceback as text.
    text = RuntimeError("The actor died because of an error raised in its creation task ...\n"
                        "  File x.py, line 3\nutils.errors.GhostError: node b (10.0.0.3): no GPU\n")
    assert str(user_error(text)) == "node b (10.0.0.3): no GPU"
    assert user_error(RuntimeError("the raylet died")) is None


def test_missing_files_lists_what_a_node_lacks(tmp_path: Path) -> None:
    (tmp_path / "there.safetensors").write_bytes(b"x")
    label, missing = missing_files([("here", str(tmp_path / "there.safetensors")),
                                    ("gone", str(tmp_path / "gone.safetensors"))])
    assert label and missing == [("gone", str(tmp_path / "gone.safetensors"))]


@pytest.mark.parametrize("flags", [{"retargeting": False},
                                   {"retargeting": False, "enhance_faces_in_original_image": True},
                                   {"retargeting": False, "align_mode": "cvlface"}, {}])
def test_required_checkpoints_are_exactly_what_load_models_reads(flags: dict, standin_weights: Path,
                                                                  tmp_path: Path) -> None:
    """With only the listed files present, the models load; without any one of them, they do not."""
    options = PreprocessOptions(tmp_path / "a", tmp_path / "b", tmp_path / "c", **flags)
    names = required_checkpoints(options)
    weights = tmp_path / "weights"
    for name in names:
        link = weights / CHECKPOINTS[name].path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(standin_weights / CHECKPOINTS[name].path)
    load_models(options, torch.device("cpu"), weights, {})
    (weights / CHECKPOINTS[names[-1]].path).unlink()
    with pytest.raises(WeightsNotFoundError):
        load_models(options, torch.device("cpu"), weights, {})
