"""The frame pipeline: the one per-face code path of photos, videos, folders, the web UI, demo, evaluation and
live streams.

A photo is a stream of one frame. For each batch of frames: NSFW sampling → detect → track and select →
smooth (centred, or causal for live streams) → align → landmarks → generator (pixel boost) → expression restorer →
GFPGAN → parser → face masks → paste, then an optional per-face finishing step (edge inpainting, for photos) and
the output NSFW check of sampled frames. The face-quality steps live in utils.inference.face_quality.
The model work runs as batches through the stage objects of utils.inference.stages; everything else is
geometry on the face's region.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from utils.inference.face_quality import FaceMasks, FaceQuality, finish_keeping_target
from utils.inference.selection import (
    FaceSelection,
    check_face_index,
    cosine_similarities,
    match_references,
    pick_by_index,
)
from utils.inference.stages import FaceInImage
from utils.inference.tracking import FaceTracker, KeypointSmoother, StillHold

if TYPE_CHECKING:
    from utils.inference.swap import FaceSwapper

logger = logging.getLogger(__name__)

# A track's faces are compared with the reference photos on its first frame and again every this many frames
# (the similarities are averaged), rather than on every frame.
REFERENCE_RECHECK_FRAMES = 12
# Smoothed points of a still face are held while they move less than this (pixels; StillHold).
STILL_TOLERANCE = 1.0


@dataclass
class SourceFace:
    """A source face ready for the generator: the aligned face (with landmarks for ghost) and its identity."""

    face: FaceInImage
    identity: torch.Tensor  # [1, 512] float32 on the swapper's device


@dataclass
class Frame:
    """One input frame: ``image`` H×W×3 uint8 BGR, its index and time; ``payload`` is the caller's (e.g. the
    decoded video frame, to re-time the output)."""

    image: np.ndarray
    index: int = 0
    seconds: float = 0.0
    payload: Any = None


@dataclass
class SwappedFace:
    """One replaced face: the target crop, its source, and the generator's (and GFPGAN's) faces."""

    track_id: int
    source_index: int
    target: FaceInImage
    swapped_face: np.ndarray  # S×S×3 uint8 BGR (S = --pixel_boost, 256 by default), generator (+ expression)
    enhanced_face: np.ndarray | None  # after GFPGAN, None when not enhanced
    mask: np.ndarray | None = None  # H×W uint8 paste-back mask (photos only)
    face_masks: FaceMasks | None = None  # what --face_mask_* and --keep_target_mouth add (None: nothing)


@dataclass
class FrameResult:
    """A frame's output image (the input itself when no face was replaced) and the faces replaced in it."""

    frame: Frame
    image: np.ndarray
    faces: list[SwappedFace] = field(default_factory=list)


@dataclass
class _Chosen:
    track_id: int
    box: np.ndarray
    keypoints: np.ndarray
    source_index: int


@dataclass
class _Pending:
    frame: Frame
    chosen: list[_Chosen]
    check_nsfw: bool


Finish = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (image, face mask) → image, per replaced face


class FramePipeline:
    """Swaps the chosen faces of a stream of frames (see the module doc).

    ``photo``: frames are photos (detected at the options' photo size, cached; a missing face or index is an
    error; the paste-back masks are kept for ``finish``). Otherwise frames are video frames (``upscale``
    decides whether small frames are scaled up for detection; faces that are missing are left alone).
    ``smooth_window``/``causal``: the track smoothing (utils.inference.tracking). ``nsfw_seconds``: one input
    frame and its output are NSFW-checked per this much stream time (None: the caller checks).
    """

    def __init__(
        self,
        swapper: FaceSwapper,
        sources: Sequence[SourceFace],
        selection: FaceSelection,
        references: np.ndarray | None = None,
        *,
        photo: bool = False,
        upscale: bool = False,
        smooth_window: int = 0,
        causal: bool = False,
        nsfw_seconds: float | None = None,
        finish: Finish | None = None,
        enhance_every: int = 1,
    ) -> None:
        self.swapper, self.sources, self.selection, self.references = swapper, list(sources), selection, references
        self.photo, self.upscale, self.finish = photo, upscale, finish
        self.nsfw_seconds = nsfw_seconds
        self.enhance_every = max(1, enhance_every)
        self.tracker = FaceTracker()
        self.smoother = KeypointSmoother(smooth_window, causal=causal)
        self.hold = StillHold(STILL_TOLERANCE if smooth_window else -1.0)
        self.ghost_settings: dict[tuple[int, int], Any] = {}
        self.quality = FaceQuality(swapper)
        self.similarities: dict[int, tuple[np.ndarray, int, int]] = {}  # track → (sum, count, frame last checked)
        self._next_nsfw = 0.0
        self._frames_swapped = 0

    # ------------------------------------------------------------------------------------------------ stream

    def push(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """Take a batch of frames; returns the frames whose smoothing window is complete, in order."""
        released = []
        for pending in self._detect(frames):
            keypoints = {face.track_id: np.concatenate([face.keypoints, face.box.reshape(2, 2)])
                         for face in pending.chosen}
            released.extend(self.smoother.push(pending, keypoints))
        return self._swap(released)

    def flush(self) -> list[FrameResult]:
        """The frames still waiting for later frames (end of the stream)."""
        return self._swap(self.smoother.flush())

    # ------------------------------------------------------------------------------------------------ detect

    def _detect(self, frames: Sequence[Frame]) -> list[_Pending]:
        stages = self.swapper.stages
        due = [self._nsfw_due(frame) for frame in frames]
        checked = [(frame.image, self._describe("target", frame)) for frame, check in zip(frames, due) if check]
        if checked:
            stages.nsfw(*zip(*checked))
        if self.photo:
            found = [stages.detect.photo(frame.image) for frame in frames]
        else:
            found = stages.detect.frames([frame.image for frame in frames], upscale=self.upscale)
        pending = []
        for frame, faces, check in zip(frames, found, due):
            boxes = np.array([face.box for face in faces], dtype=np.float32).reshape(-1, 4)
            track_ids = self.tracker.update(boxes)
            pending.append(_Pending(frame, self._choose(frame, faces, track_ids), check))
        return pending

    def _nsfw_due(self, frame: Frame) -> bool:
        if self.nsfw_seconds is None or (frame.index > 0 and frame.seconds < self._next_nsfw):
            return False
        self._next_nsfw = frame.seconds + self.nsfw_seconds
        return True

    def _describe(self, role: str, frame: Frame) -> str:
        if role == "target":
            return f"target video frame {frame.index}"
        return f"swapped video frame {frame.index}"

    def _choose(self, frame: Frame, faces: list, track_ids: list[int]) -> list[_Chosen]:
        """The faces of a frame to replace, each with its source (by index, every face, or by reference)."""
        threshold = self.swapper.options.detection_threshold
        if self.photo:
            check_face_index(faces, 0, "target", threshold)
            if self.references is None and not self.selection.swap_all_faces:
                for index in self.selection.target_face_indices:
                    check_face_index(faces, index, "target", threshold)

        def chosen(index: int, source: int) -> _Chosen:
            face = faces[index]
            return _Chosen(track_ids[index], np.asarray(face.box, np.float32),
                           np.asarray(face.keypoints, np.float32), source)

        if self.references is None:
            return [chosen(index, source) for index, source in pick_by_index(len(faces), self.selection)]
        if not faces:
            return []
        self._update_similarities(frame, faces, track_ids)
        mean = np.array([self.similarities[track][0] / self.similarities[track][1] for track in track_ids])
        matches = match_references(mean.reshape(len(faces), -1), self.selection.similarity_th)
        if self.photo and not any(match is not None for match in matches):
            logger.warning("no target face is similar enough to a reference photo (similarity_th %s); the output "
                           "is the target unchanged", self.selection.similarity_th)
        return [chosen(index, source) for index, source in enumerate(matches) if source is not None]

    def _update_similarities(self, frame: Frame, faces: list, track_ids: list[int]) -> None:
        """Embed the faces whose track is new or due for a re-check; add their similarities to the track's."""
        due = [index for index, track in enumerate(track_ids)
               if track not in self.similarities
               or frame.index - self.similarities[track][2] >= REFERENCE_RECHECK_FRAMES]
        if not due:
            return
        crops = [self.swapper.align(frame.image, np.asarray(faces[index].box, np.float32),
                                    np.asarray(faces[index].keypoints, np.float32)).face for index in due]
        embeddings = self.swapper.stages.embed(crops).cpu().numpy()
        for index, similarity in zip(due, cosine_similarities(embeddings, self.references)):
            total, count, _ = self.similarities.get(track_ids[index], (0.0, 0, 0))
            self.similarities[track_ids[index]] = (total + similarity, count + 1, frame.index)

    # ------------------------------------------------------------------------------------------------ swap

    def _swap(self, released: list[tuple[_Pending, dict[int, np.ndarray]]]) -> list[FrameResult]:
        """The per-face path: align → landmarks → generator → expression → GFPGAN → parser → masks → paste, batched
        over frames."""
        swapper, options, quality = self.swapper, self.swapper.options, self.quality
        jobs: list[tuple[_Pending, _Chosen, FaceInImage]] = []
        for pending, smoothed in released:
            held = self.hold(smoothed)
            for face in pending.chosen:
                points = held[face.track_id]
                jobs.append((pending, face, swapper.align(pending.frame.image, points[5:].reshape(4), points[:5])))
        targets = [target for _, _, target in jobs]
        if options.uses_landmarks and targets:
            swapper.add_landmarks_batch(targets)
        swapped: list[np.ndarray] = []
        enhanced: list[np.ndarray | None] = [None] * len(jobs)
        crops = quality.target_crops(targets)
        if jobs:
            identities = torch.cat([self.sources[face.source_index].identity for _, face, _ in jobs])
            tracks = [face.track_id for _, face, _ in jobs]
            swapped = quality.restore(quality.generate(crops, identities), crops, tracks)
            if options.enhance_output:
                enhanced = self._enhance(jobs, swapped)
        finals = [raw if better is None else better for raw, better in zip(swapped, enhanced)]
        labels, target_labels = quality.parse(finals, crops)
        by_frame: dict[int, list[tuple[SwappedFace, np.ndarray | None]]] = {}
        for (pending, face, target), raw, better, parsed, masks in zip(jobs, swapped, enhanced, labels,
                                                                        quality.masks(crops, labels, target_labels)):
            record = SwappedFace(face.track_id, face.source_index, target, raw, better, face_masks=masks)
            by_frame.setdefault(id(pending), []).append((record, parsed))
        return [self._output(pending, by_frame.get(id(pending), [])) for pending, _ in released]

    def _enhance(self, jobs: list, swapped: list[np.ndarray]) -> list[np.ndarray | None]:
        """GFPGAN on the faces of frames whose index is a multiple of ``enhance_every`` (every frame by default)."""
        due = [index for index, (pending, _, _) in enumerate(jobs) if pending.frame.index % self.enhance_every == 0]
        result: list[np.ndarray | None] = [None] * len(jobs)
        for index, face in zip(due, self.swapper.stages.enhance([swapped[index] for index in due])):
            result[index] = face
        return result

    def _output(self, pending: _Pending, pasted: list[tuple[SwappedFace, np.ndarray | None]]) -> FrameResult:
        """Paste a frame's faces (with their parser labels, if parsed), finish, check the output if sampled."""
        frame = pending.frame
        if not pasted:
            return FrameResult(frame, frame.image)
        swapper = self.swapper
        image = frame.image
        faces = [face for face, _ in pasted]
        for face, parsed in pasted:
            source = self.sources[face.source_index].face
            final = face.swapped_face if face.enhanced_face is None else face.enhanced_face
            image, mask = swapper.paste(final, source, face.target, image=image,
                                        ghost_settings=self._ghost_settings(face, source),
                                        face_labels=parsed, keep_mask=self.photo, face_masks=face.face_masks)
            if self.photo:
                face.mask = mask
        if self.finish is not None:
            for face in faces:
                if face.mask is not None:
                    image = finish_keeping_target(self.finish, image, face.mask, face.face_masks, face.target)
        if pending.check_nsfw and swapper.options.check_output_nsfw:
            swapper.stages.nsfw([image], [self._describe("swapped", frame)])
        self._frames_swapped += 1
        return FrameResult(frame, image, faces)

    def _ghost_settings(self, face: SwappedFace, source: FaceInImage) -> Any:
        """The ghost mask settings of the track, chosen on its first frame (so the mask does not flicker)."""
        if self.swapper.options.paste_back_mode != "ghost":
            return None
        from utils.paste_back import ghost_mask_settings, jaw_offsets

        key = (face.track_id, face.source_index)
        if key not in self.ghost_settings:
            offset = jaw_offsets(source.landmarks, face.target.landmarks)[2]
            self.ghost_settings[key] = ghost_mask_settings(offset)
        return self.ghost_settings[key]
