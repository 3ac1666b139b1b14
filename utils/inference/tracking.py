"""Faces followed from frame to frame (tracks), and a streaming centred average of their 5 keypoints.

A face continues the track of the previous frame's face it overlaps most (IoU of the boxes at least
``MIN_TRACK_IOU``, each pairing used once, best overlaps first); any other face starts a new track, and a
track not continued in a frame ends. A jump (a face that moved farther than its boxes overlap) thus starts a
new track, which also resets the keypoint smoothing, as GHOST v1's moving average does.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_TRACK_IOU = 0.3


def box_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``[N, 4]`` × ``[M, 4]`` boxes (x1, y1, x2, y2) → ``[N, M]`` intersection over union (0 for empty boxes)."""
    first = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    second = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(first[:, None, 0], second[None, :, 0])
    top = np.maximum(first[:, None, 1], second[None, :, 1])
    right = np.minimum(first[:, None, 2], second[None, :, 2])
    bottom = np.minimum(first[:, None, 3], second[None, :, 3])
    intersection = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_first = np.clip(first[:, 2] - first[:, 0], 0, None) * np.clip(first[:, 3] - first[:, 1], 0, None)
    area_second = np.clip(second[:, 2] - second[:, 0], 0, None) * np.clip(second[:, 3] - second[:, 1], 0, None)
    union = area_first[:, None] + area_second[None, :] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, 0.0)
    return np.nan_to_num(iou, nan=0.0, posinf=0.0, neginf=0.0)


class FaceTracker:
    """Gives every face of each new frame a track id (see the module doc); ids start at 0 and never repeat."""

    def __init__(self, min_iou: float = MIN_TRACK_IOU) -> None:
        self.min_iou = min_iou
        self._boxes = np.zeros((0, 4))
        self._ids: list[int] = []
        self._next_id = 0

    def update(self, boxes: np.ndarray) -> list[int]:
        """Track ids of the ``[N, 4]`` boxes (x1, y1, x2, y2) of the next frame, in their order."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids: list[int | None] = [None] * len(boxes)
        if len(boxes) and self._ids:
            iou = box_iou(self._boxes, boxes)
            previous_rows, current_columns = np.nonzero(iou >= self.min_iou)
            order = np.argsort(-iou[previous_rows, current_columns], kind="stable")
            used_previous: set[int] = set()
            for pair in order:
                previous, current = int(previous_rows[pair]), int(current_columns[pair])
                if previous in used_previous or ids[current] is not None:
                    continue
                used_previous.add(previous)
                ids[current] = self._ids[previous]
        for index, track_id in enumerate(ids):
            if track_id is None:
                ids[index] = self._next_id
                self._next_id += 1
        self._boxes, self._ids = boxes, [int(track_id) for track_id in ids]
        return list(self._ids)


@dataclass
class _Entry:
    item: Any
    keypoints: dict[Hashable, np.ndarray]


class KeypointSmoother:
    """Moving average of each track's points (keypoints, or any array per track) over ``radius`` frames, streaming.

    ``push(item, keypoints_by_track)`` returns the ``(item, smoothed_keypoints_by_track)`` pairs that became
    final; ``flush()`` returns the rest at the end. Centred (the default), each frame waits for ``radius``
    later frames and is averaged over ±``radius``; the window is symmetric and stays inside the track (near its
    start or end, or the video's, it shrinks on both sides), so a face moving at constant speed keeps its exact
    keypoints. ``causal``: each frame is released as it is pushed, averaged with up to ``radius`` earlier frames
    of its track (a live stream has no future frames; a moving face then lags by ``radius / 2`` frames).
    ``radius`` 0 returns every frame as it comes, unchanged.
    """

    def __init__(self, radius: int, causal: bool = False) -> None:
        if radius < 0:
            raise ValueError(f"the smoothing radius counts frames and cannot be negative; got {radius}")
        self.radius = int(radius)
        self.causal = causal
        self.delay = 0 if causal else self.radius  # frames a pushed frame waits before its release
        self._entries: deque[_Entry] = deque()
        self._next = 0  # position in _entries of the next frame to release

    def push(self, item: Any, keypoints: dict[Hashable, np.ndarray]) -> list[tuple[Any, dict[Hashable, np.ndarray]]]:
        self._entries.append(_Entry(item, {key: np.asarray(value, dtype=np.float64)
                                           for key, value in keypoints.items()}))
        released = []
        while self._next < len(self._entries) and len(self._entries) - 1 - self._next >= self.delay:
            released.append(self._release())
        return released

    def flush(self) -> list[tuple[Any, dict[Hashable, np.ndarray]]]:
        released = []
        while self._next < len(self._entries):
            released.append(self._release())
        return released

    def _release(self) -> tuple[Any, dict[Hashable, np.ndarray]]:
        position = self._next
        entry = self._entries[position]
        smoothed = {key: self._average(position, key).astype(np.float32) for key in entry.keypoints}
        self._next += 1
        while self._next > self.radius:  # keep ``radius`` released frames as the past of the next ones
            self._entries.popleft()
            self._next -= 1
        return entry.item, smoothed

    def _reach(self, position: int, key: Hashable, step: int) -> int:
        """How many consecutive frames before (step −1) or after (+1) ``position`` hold track ``key``."""
        count = 0
        index = position + step
        while count < self.radius and 0 <= index < len(self._entries) and key in self._entries[index].keypoints:
            count += 1
            index += step
        return count

    def _average(self, position: int, key: Hashable) -> np.ndarray:
        before = self._reach(position, key, -1)
        after = 0 if self.causal else min(before, self._reach(position, key, +1))
        if not self.causal:
            before = after
        window = [self._entries[index].keypoints[key] for index in range(position - before, position + after + 1)]
        return np.mean(window, axis=0)


class StillHold:
    """Keeps a track's smoothed points where they were while they move less than ``tolerance`` pixels.

    A still face under a detector's noise would otherwise move its crop, landmarks and mask by a fraction of a
    pixel every frame (visible as a shimmering edge); held points give the same crop, mask and paste on every
    frame until the face really moves (any point further than ``tolerance`` from where it was held).
    """

    def __init__(self, tolerance: float) -> None:
        self.tolerance = float(tolerance)
        self._held: dict[Hashable, np.ndarray] = {}

    def __call__(self, points_by_track: dict[Hashable, np.ndarray]) -> dict[Hashable, np.ndarray]:
        """The held points of each track of this frame (tracks not in it are forgotten)."""
        result = {}
        for key, points in points_by_track.items():
            held = self._held.get(key)
            if held is None or held.shape != points.shape or np.abs(points - held).max() > self.tolerance:
                held = points
            result[key] = held
        self._held = dict(result)
        return result
