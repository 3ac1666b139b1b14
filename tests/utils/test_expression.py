"""utils.inference.expression: the LivePortrait expression restorer stage and its options.

Keypoint properties run the stand-in motion extractor; the rendering plumbing (batching, sizes, colour order,
which keypoints drive the warp) runs small fake networks, because the stand-in warping and SPADE networks take
about a minute per face on two CPU cores (bench/face_options.py measures them).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.liveportrait.camera import transform_keypoint
from utils.errors import GhostError
from utils.inference.expression import (
    CHECKPOINTS,
    EXPRESSION_AREAS,
    ExpressionOptions,
    ExpressionRestorer,
    ExpressionSmoother,
    blend_expression,
)
from utils.inference.model_cache import ModelCache

UPPER, LOWER = list(EXPRESSION_AREAS["upper"]), list(EXPRESSION_AREAS["lower"])
OTHERS = [index for index in range(21) if index not in UPPER + LOWER]


def face(seed: int, size: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------- options


@pytest.mark.parametrize("values, message", [
    ({"expression_restorer_factor": -1}, "between 0 and 100"),
    ({"expression_restorer_factor": 100.5}, "between 0 and 100"),
    ({"expression_restorer_areas": ("upper", "middle")}, "unknown --expression_restorer_areas middle; choose from "
                                                         "upper, lower"),
    ({"expression_restorer_areas": ()}, "expression_restorer_areas"),
    ({"expression_restorer_smoothing": 1.0}, "below 1"),
])
def test_bad_options_are_one_line(values: dict, message: str) -> None:
    with pytest.raises(GhostError, match=message) as caught:
        ExpressionOptions(**values)
    assert "\n" not in str(caught.value)


def test_default_options_are_off() -> None:
    assert not ExpressionOptions().restores_expression
    assert ExpressionOptions(expression_restorer_factor=80).restores_expression


def test_factor_0_returns_the_very_inputs_and_loads_nothing(tmp_path) -> None:
    models = ModelCache()
    restorer = ExpressionRestorer(weights_dir=tmp_path / "no_weights_here", models=models)
    swapped = [face(1), face(2)]
    restored = restorer(swapped, [face(3), face(4)], 0, ("upper", "lower"))
    assert all(out is given for out, given in zip(restored, swapped))
    assert models.loaded() == []


def test_blend_expression_moves_only_the_chosen_areas() -> None:
    swapped, target = torch.randn(2, 21, 3), torch.randn(2, 21, 3)
    full = blend_expression(swapped, target, 100, ("upper",))
    assert torch.equal(full[:, UPPER], target[:, UPPER])
    assert torch.equal(full[:, LOWER + OTHERS], swapped[:, LOWER + OTHERS])
    half = blend_expression(swapped, target, 50, ("upper", "lower"))
    torch.testing.assert_close(half[:, UPPER + LOWER], (swapped + target)[:, UPPER + LOWER] / 2)
    assert torch.equal(half[:, OTHERS], swapped[:, OTHERS])
    assert torch.equal(blend_expression(swapped, target, 0, ("upper", "lower")), swapped)


# ---------------------------------------------------------------------------------------------------- stand-in weights


@pytest.fixture(scope="module")
def restorer(standin_weights) -> ExpressionRestorer:
    return ExpressionRestorer(weights_dir=standin_weights)


def test_factor_100_with_the_target_as_its_own_source_keeps_the_targets_keypoints(restorer) -> None:
    target = face(10)
    info, source, driving = restorer.keypoints([target], [target], 100, ("upper", "lower"))
    measured = restorer.motion([target])
    assert torch.equal(driving, source)
    torch.testing.assert_close(driving, transform_keypoint(measured), rtol=1e-5, atol=1e-6)
    assert restorer.models.loaded() == ["liveportrait_motion_extractor"]  # nothing rendered, nothing else loaded


def test_factor_100_gives_the_target_expression_on_the_chosen_area(restorer) -> None:
    swapped, target = face(11), face(12)
    info, source, driving = restorer.keypoints([swapped], [target], 100, ("lower",))
    target_expression = restorer.target_expressions([target])
    expected = info["exp"].clone()
    expected[:, LOWER] = target_expression[:, LOWER]
    torch.testing.assert_close(driving, transform_keypoint({**info, "exp": expected}), rtol=1e-5, atol=1e-6)
    moved = (driving - source).abs().amax(dim=2)[0]
    assert moved[LOWER].min() > 0 and moved[UPPER + OTHERS].max() < 1e-5
    # Smoothed expressions given by a video are used instead of measuring the target again.
    _, _, from_given = restorer.keypoints([swapped], None, 100, ("lower",), target_expressions=target_expression)
    torch.testing.assert_close(from_given, driving, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------- rendering


class FakeAppearance(torch.nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.mean(dim=1, keepdim=True)[:, :, None].expand(-1, 2, 4, -1, -1)[..., ::4, ::4]


class FakeWarping(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict:
        self.calls.append((kp_driving.clone(), kp_source.clone()))
        return {"out": feature.mean(dim=2)}


class FakeGenerator(torch.nn.Module):
    """Logits of a 512 image: red where the features are bright, plus a blue bar on the top rows."""

    def logits(self, feature: torch.Tensor) -> torch.Tensor:
        batch = feature.shape[0]
        image = torch.full((batch, 3, 512, 512), -20.0)
        image[:, 0] = torch.nn.functional.interpolate(feature[:, :1], size=512)[:, 0] * 40 - 20
        image[:, 2, :64] = 20.0
        return image


def test_rendering_batches_resizes_and_keeps_bgr(tmp_path) -> None:
    models = ModelCache()
    warping = FakeWarping()
    for role, module in (("appearance", FakeAppearance()), ("warping", warping), ("generator", FakeGenerator())):
        models.put((CHECKPOINTS[role], None, tmp_path), module)
    restorer = ExpressionRestorer(weights_dir=tmp_path, models=models)
    source, driving = torch.zeros(2, 21, 3), torch.ones(2, 21, 3)
    faces = [np.full((256, 256, 3), 255, np.uint8), np.zeros((512, 512, 3), np.uint8)]
    restored = restorer.render(faces, source, driving)
    assert [item.shape for item in restored] == [(256, 256, 3), (512, 512, 3)]
    assert all(item.dtype == np.uint8 for item in restored)
    assert (restored[1][:40, :, 0] == 255).all() and (restored[1][:40, :, 1:] == 0).all()  # blue bar, BGR order
    assert (restored[0][200:, :, 2] == 255).all() and (restored[0][200:, :, :2] == 0).all()  # red from the face
    assert not restored[1][200:].any()
    assert len(warping.calls) == 1
    assert torch.equal(warping.calls[0][0], driving) and torch.equal(warping.calls[0][1], source)


# ---------------------------------------------------------------------------------------------------- smoothing


def test_smoother_is_a_causal_average_per_track() -> None:
    smoother = ExpressionSmoother(0.75)
    first = smoother(["a", "b"], torch.stack([torch.zeros(21, 3), torch.ones(21, 3)]))
    assert torch.equal(first[0], torch.zeros(21, 3)) and torch.equal(first[1], torch.ones(21, 3))
    second = smoother(["a"], torch.full((1, 21, 3), 4.0))
    assert torch.allclose(second, torch.full((1, 21, 3), 1.0))  # 0.75 · 0 + 0.25 · 4
    third = smoother(["b", "a"], torch.stack([torch.ones(21, 3), torch.full((21, 3), 1.0)]))
    assert torch.allclose(third[0], torch.ones(21, 3)) and torch.allclose(third[1], torch.ones(21, 3))
    smoother.keep_only(["a"])
    restarted = smoother(["b"], torch.full((1, 21, 3), 7.0))
    assert torch.equal(restarted, torch.full((1, 21, 3), 7.0))  # an ended track starts afresh
    assert torch.equal(ExpressionSmoother(0.0)(["x"], torch.full((1, 21, 3), 2.0)), torch.full((1, 21, 3), 2.0))
