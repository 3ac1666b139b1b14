"""Face tracks across frames and the streaming centred average of their keypoints."""
from __future__ import annotations

import numpy as np
import pytest

from utils.inference.tracking import FaceTracker, KeypointSmoother, box_iou


def test_iou_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=np.float32)
    iou = box_iou(boxes, boxes)
    np.testing.assert_allclose(np.diag(iou), 1.0)
    assert iou[0, 1] == 0.0
    np.testing.assert_allclose(iou[0, 2], 50 / 150)


def test_tracks_follow_overlapping_faces_and_a_jump_starts_a_new_track() -> None:
    tracker = FaceTracker()
    left, right = np.array([0, 0, 20, 20.0]), np.array([100, 0, 120, 20.0])
    assert tracker.update(np.stack([left, right])) == [0, 1]
    # Both move a little; the detector lists them in the other order: ids follow the faces, not the order.
    assert tracker.update(np.stack([right + 2, left + 2])) == [1, 0]
    # The left face jumps far away: a new track; the right one goes on.
    assert tracker.update(np.stack([left + 60, right + 4])) == [2, 1]
    assert tracker.update(np.zeros((0, 4))) == []
    assert tracker.update(np.stack([right + 4])) == [3]  # a track missing from a frame has ended


def linear_track(frames: int) -> list[np.ndarray]:
    return [np.array([[10.0 + 3 * t, 20.0 + t]] * 5) for t in range(frames)]


def run_smoother(radius: int, per_frame: list[dict]) -> list[tuple[int, dict]]:
    smoother = KeypointSmoother(radius)
    released = []
    for index, keypoints in enumerate(per_frame):
        released.extend(smoother.push(index, keypoints))
    return released + smoother.flush()


def test_smoother_keeps_constant_speed_motion_and_releases_every_frame_in_order() -> None:
    track = linear_track(9)
    released = run_smoother(2, [{7: keypoints} for keypoints in track])
    assert [index for index, _ in released] == list(range(9))
    for (index, smoothed), expected in zip(released, track):
        np.testing.assert_allclose(smoothed[7], expected, atol=1e-4)


def test_smoother_waits_radius_frames_before_releasing() -> None:
    smoother = KeypointSmoother(2)
    track = linear_track(3)
    assert smoother.push(0, {0: track[0]}) == []
    assert smoother.push(1, {0: track[1]}) == []
    assert [item for item, _ in smoother.push(2, {0: track[2]})] == [0]


def test_smoother_averages_jitter_and_stays_inside_each_track() -> None:
    random = np.random.default_rng(0)
    track = linear_track(30)
    noisy = [keypoints + random.normal(0, 2.0, keypoints.shape) for keypoints in track]
    per_frame = [{0: keypoints} for keypoints in noisy]
    per_frame[15] = {1: np.full((5, 2), 500.0)}  # another track in one frame: it is not mixed with track 0
    released = dict(run_smoother(2, per_frame))
    np.testing.assert_array_equal(released[15][1], np.full((5, 2), 500.0, np.float32))
    raw_error = np.mean([np.abs(noisy[t] - track[t]).mean() for t in range(30) if t != 15])
    smooth_error = np.mean([np.abs(released[t][0] - track[t]).mean() for t in range(30) if t != 15])
    assert smooth_error < 0.75 * raw_error
    # Next to the gap the window shrinks to the frames of the same run: frame 14 has no later frame.
    np.testing.assert_allclose(released[14][0], noisy[14].astype(np.float32), atol=1e-4)


def test_radius_zero_is_off() -> None:
    keypoints = np.arange(10, dtype=np.float64).reshape(5, 2)
    assert [(index, smoothed[0].tolist()) for index, smoothed in run_smoother(0, [{0: keypoints}])] == [
        (0, keypoints.tolist())]
    with pytest.raises(ValueError):
        KeypointSmoother(-1)
