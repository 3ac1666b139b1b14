"""The frame pipeline's streaming behaviour: causal release, and a still face's mask that stays still."""
from __future__ import annotations

import numpy as np
import pytest

from tests.cli.fakes import PatchDetector, use_fakes
from tests.video_clips import compose
from utils.inference.options import SwapOptions
from utils.inference.pipeline import Frame, FramePipeline
from utils.inference.selection import FaceSelection
from utils.inference.swap import FaceSwapper

# 68 landmarks as fractions of the detector box (a ring and a centre line): enough for the ghost hull masks.
ANGLES = np.linspace(0, 2 * np.pi, 60, endpoint=False)
LANDMARK_LAYOUT = np.concatenate([np.stack([0.5 + 0.4 * np.cos(ANGLES), 0.55 + 0.4 * np.sin(ANGLES)], 1),
                                  np.stack([np.full(8, 0.5), np.linspace(0.3, 0.8, 8)], 1)]).astype(np.float32)


class BoxLandmarks:
    """Stands in for FAN: the landmarks follow the box they are given, so a box that moves moves the mask."""

    def __init__(self) -> None:
        self.calls = 0

    def get_landmarks_batch(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        return [box[:2] + LANDMARK_LAYOUT * (box[2:] - box[:2]) for box in boxes]


@pytest.fixture
def ghost_swapper(monkeypatch: pytest.MonkeyPatch) -> FaceSwapper:
    landmarks = BoxLandmarks()
    monkeypatch.setattr(FaceSwapper, "landmark_detector", property(lambda self: landmarks))
    return FaceSwapper(SwapOptions(device="cpu", paste_back_mode="ghost", enhance_output=False,
                                   inpaint_output=False, check_output_nsfw=False))


def face_frame(colour: tuple[int, int, int], x: int = 40) -> np.ndarray:
    patch = np.zeros((48, 48, 3), np.uint8)
    patch[:] = colour
    return compose((160, 112), [(patch, (x, 30))])


def recorded_masks(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    masks: list[np.ndarray] = []
    paste = FaceSwapper.paste

    def recording_paste(self, *args, **kwargs):
        image, mask = paste(self, *args, **kwargs)
        masks.append(mask)
        return image, mask

    monkeypatch.setattr(FaceSwapper, "paste", recording_paste)
    return masks


def run_still_clip(swapper: FaceSwapper, smooth_window: int, frames: int = 12) -> None:
    source = swapper.prepare_source(face_frame((40, 40, 220)))
    pipeline = FramePipeline(swapper, [source], FaceSelection(), smooth_window=smooth_window)
    image = face_frame((230, 220, 40))
    results = []
    for index in range(frames):
        results.extend(pipeline.push([Frame(image, index, index / 25)]))
    results.extend(pipeline.flush())
    assert [result.frame.index for result in results] == list(range(frames))
    assert all(len(result.faces) == 1 for result in results)


def test_the_ghost_mask_of_a_still_face_does_not_move_under_noisy_detections(
    ghost_swapper: FaceSwapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fakes(monkeypatch, detector=PatchDetector(jitter=0.25, seed=3))
    masks = recorded_masks(monkeypatch)
    run_still_clip(ghost_swapper, smooth_window=2)
    assert len(masks) == 12 and masks[0].any()
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])


def test_without_smoothing_the_same_noise_moves_the_mask(ghost_swapper: FaceSwapper,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The still-mask test above is not vacuous: with the smoothing (and its hold) off, the noise shows."""
    use_fakes(monkeypatch, detector=PatchDetector(jitter=0.25, seed=3))
    masks = recorded_masks(monkeypatch)
    run_still_clip(ghost_swapper, smooth_window=0)
    assert any(not np.array_equal(mask, masks[0]) for mask in masks[1:])


def test_the_landmarks_of_a_batch_of_frames_are_one_network_call(ghost_swapper: FaceSwapper,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    use_fakes(monkeypatch)
    source = ghost_swapper.prepare_source(face_frame((40, 40, 220)))
    calls = ghost_swapper.landmark_detector.calls
    pipeline = FramePipeline(ghost_swapper, [source], FaceSelection())
    results = pipeline.push([Frame(face_frame((230, 220, 40), x), index) for index, x in enumerate((30, 34, 38, 42))])
    assert len(results) == 4 and all(result.faces for result in results)
    assert ghost_swapper.landmark_detector.calls == calls + 1


@pytest.mark.parametrize("smooth_window", [1, 3])
def test_causal_mode_emits_each_frame_before_the_next_arrives(ghost_swapper: FaceSwapper,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              smooth_window: int) -> None:
    use_fakes(monkeypatch, detector=PatchDetector(jitter=1.0, seed=1))
    source = ghost_swapper.prepare_source(face_frame((40, 40, 220)))
    causal = FramePipeline(ghost_swapper, [source], FaceSelection(), smooth_window=smooth_window, causal=True)
    centred = FramePipeline(ghost_swapper, [source], FaceSelection(), smooth_window=smooth_window)
    for index in range(2 * smooth_window + 2):
        frame = Frame(face_frame((230, 220, 40), 30 + 2 * index), index, index / 25)
        released = causal.push([frame])
        # Frame k comes out when it goes in: long before frame k + smooth_window has arrived.
        assert [result.frame.index for result in released] == [index]
        assert released[0].faces and not np.array_equal(released[0].image, frame.image)
        waiting = centred.push([frame])
        assert [result.frame.index for result in waiting] == ([index - smooth_window] if index >= smooth_window else [])
    assert causal.flush() == []


def test_causal_smoothing_averages_only_past_frames() -> None:
    from utils.inference.tracking import KeypointSmoother

    smoother = KeypointSmoother(2, causal=True)
    values = [np.full((5, 2), float(value)) for value in (0, 3, 6, 9)]
    released = [smoother.push(index, {7: value})[0][1][7][0, 0] for index, value in enumerate(values)]
    assert released == pytest.approx([0.0, 1.5, 3.0, 6.0])
