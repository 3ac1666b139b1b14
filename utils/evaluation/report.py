"""What an evaluation writes: pairs.csv (a row per scored frame), summary.json, the worst-pairs picture, the table.

Files are written under a temporary name in the output folder and renamed when complete.
"""
from __future__ import annotations

import csv
import heapq
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from utils.evaluation.options import HIGHER_IS_BETTER, METRIC_NAMES, METRIC_UNITS
from utils.evaluation.references import published_for, sources
from utils.image import write_image

PAIR_COLUMNS = ("source", "target", "frame")
THUMBNAIL_SIZE = 96
CAPTION_HEIGHT = 18
LABEL_WIDTH = 150
CELL_GAP = 8
TEXT_COLOUR = (255, 255, 255)
BACKGROUND = (32, 32, 32)
FONT = cv2.FONT_HERSHEY_SIMPLEX

Summary = dict[str, dict[str, Any]]


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


class PairsCsv:
    """pairs.csv, written row by row: source, target, frame and every metric (empty where not measured)."""

    def __init__(self, path: Path, metric_names: Sequence[str] = METRIC_NAMES) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.metric_names = tuple(metric_names)
        self._handle = _partial(self.path).open("w", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(PAIR_COLUMNS + self.metric_names)

    def write(self, source: str, target: str, frame: int, values: Mapping[str, float]) -> None:
        cells = ["" if not math.isfinite(values.get(name, math.nan)) else f"{values[name]:.6g}"
                 for name in self.metric_names]
        self._writer.writerow([source, target, frame, *cells])

    def close(self) -> Path:
        self._handle.close()
        os.replace(_partial(self.path), self.path)
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file (a failed run leaves no pairs.csv behind)."""
        self._handle.close()
        _partial(self.path).unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> Path:
    """``data`` as indented JSON at ``path`` (written aside, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(path)
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)
    return path


class WorstPairs:
    """The ``count`` worst frames of each metric, with small source/target/swapped thumbnails, for one picture."""

    def __init__(self, metric_names: Sequence[str], count: int) -> None:
        self.count = count
        self._heaps: dict[str, list] = {name: [] for name in metric_names}
        self._order = itertools.count()

    def offer(self, caption: str, values: Mapping[str, float], faces: Sequence[np.ndarray]) -> bool:
        """Keep this frame for each metric where it is among the worst; ``faces``: three ``H×W×3 uint8 BGR`` crops
        (none: keep the caption only, to know which frames to render). True if the frame was kept.

        Of equally bad frames the first offered is kept, so the kept frames are the worst by one total order
        (badness, then offer order): the worst of a run are found among the worst of its pairs.
        """
        order = next(self._order)
        thumbnails, kept = None, False
        for name, heap in self._heaps.items():
            value = values.get(name, math.nan)
            if self.count == 0 or not math.isfinite(value):
                continue
            badness = -value if name in HIGHER_IS_BETTER else value
            entry_key = (badness, -order)  # the heap's root is the least bad, and the latest of equals
            if len(heap) == self.count and entry_key <= heap[0][:2]:
                continue
            if thumbnails is None and faces:
                thumbnails = np.concatenate([cv2.resize(face, (THUMBNAIL_SIZE, THUMBNAIL_SIZE),
                                                        interpolation=cv2.INTER_AREA) for face in faces], axis=1)
            entry = (*entry_key, value, caption, thumbnails)
            if len(heap) < self.count:
                heapq.heappush(heap, entry)
            else:
                heapq.heapreplace(heap, entry)
            kept = True
        return kept

    def captions(self) -> set[str]:
        """The captions of the frames kept for some metric."""
        return {entry[3] for heap in self._heaps.values() for entry in heap}

    def render(self) -> np.ndarray | None:
        """One row per metric (worst first): label, then [source | target | swapped] with the value; None if empty."""
        rows = [(name, sorted(heap, reverse=True)) for name, heap in self._heaps.items() if heap]
        if not rows:
            return None
        cell_width = 3 * THUMBNAIL_SIZE + CELL_GAP
        height = THUMBNAIL_SIZE + CAPTION_HEIGHT
        canvas = np.full((len(rows) * height, LABEL_WIDTH + self.count * cell_width, 3), BACKGROUND, np.uint8)
        for row, (name, entries) in enumerate(rows):
            top = row * height
            cv2.putText(canvas, name, (6, top + height // 2), FONT, 0.45, TEXT_COLOUR, 1, cv2.LINE_AA)
            for column, (_, _, value, caption, thumbnails) in enumerate(entries):
                left = LABEL_WIDTH + column * cell_width
                canvas[top:top + THUMBNAIL_SIZE, left:left + thumbnails.shape[1]] = thumbnails
                cv2.putText(canvas, f"{value:.3g} {caption}"[:48], (left, top + height - 5), FONT, 0.35,
                            TEXT_COLOUR, 1, cv2.LINE_AA)
        return canvas

    def write(self, path: Path) -> Path | None:
        picture = self.render()
        return None if picture is None else write_image(path, picture)


def _cell(stats: Mapping[str, Any] | None, unavailable: str | None) -> str:
    if unavailable:
        return "missing weights"
    if not stats or stats["count"] == 0:
        return "-"
    return f"{stats['mean']:.4g} ± {stats['std']:.2g} (n={stats['count']})"


def format_table(summaries: Mapping[str, Summary], unavailable: Mapping[str, str], metric_names: Sequence[str],
                 eval_face_embeddings: str) -> str:
    """The stdout table: a row per metric, a column per generator, then the published FaceForensics++ values."""
    labels = list(summaries)
    footnotes = {source: index for index, source in enumerate(sources(), start=1)}
    header = ["metric", *labels, "published (FaceForensics++, other estimators)"]
    lines = []
    for name in metric_names:
        published = "; ".join(
            f"{item.method} {'not found' if item.value is None else f'{item.value:g}'} [{footnotes[item.source]}]"
            for item in published_for(name)) or "-"
        lines.append([f"{name} ({METRIC_UNITS[name]})",
                      *[_cell(summaries[label].get(name), unavailable.get(name)) for label in labels], published])
    widths = [max(len(row[column]) for row in [header, *lines]) for column in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *lines]]
    text.insert(1, "  ".join("-" * width for width in widths))
    text.append(f"identity measured with {eval_face_embeddings}; pose/expression with LivePortrait's motion extractor; "
                "eyes with the AdaptiveWingLoss FAN")
    text += [f"[{index}] {source}" for source, index in footnotes.items()]
    missing: dict[str, list[str]] = {}
    for name, message in unavailable.items():
        if name in metric_names:
            missing.setdefault(message, []).append(name)
    text += [f"{', '.join(names)}: not computed, {message}" for message, names in missing.items()]
    return "\n".join(text)
