"""Dataset preprocessing: turn photos into aligned training faces, one folder per identity.

Per image (conformance kit liveportrait/README.md §6): size filter, resize to at most 1280 px, RetinaFace
detection, face filters, optional GFPGAN restoration of the faces in the full image, 68 FaceAlignment
landmarks, then one of two retargeting modes:

* default: a 512×512 facexlib crop per face, the LivePortrait validity check, ``number_of_variants_per_face``
  random-expression variants of the crop, a random horizontal flip, re-detection;
* ``retargeting_do_crop``: every face is retargeted inside the full image and variant k of all faces is
  pasted back into one copy of it; the faces are re-detected in [original + variants] and kept only when
  every image shows the same number of faces;

and finally alignment to ``final_crop_size`` with ``align_mode``. Files are written atomically and a
per-image done-marker is written last, so a restarted run skips finished images and redoes a half-done
one with the same result (every image draws its randomness, GFPGAN's noise included, from its own seed).
Detections that cannot be faces of their image (utils.image.face_box_problem) are dropped before any crop
and counted per reason; an image that fails anyway is skipped by the runner and its files are removed.
"""
from __future__ import annotations

import json
import logging
import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from utils.align import align_face, transform_points
from utils.errors import FaceBoxError
from utils.image import detection_problem, write_image
from utils.preprocessing.model_loading import PreprocessModels
from utils.preprocessing.options import (
    FACE_CROP_SIZE,
    MAX_IMAGE_SIDE,
    PreprocessOptions,
)

logger = logging.getLogger(__name__)


def _counts(counter: Counter) -> str:
    return ", ".join(f"{reason}: {count}" for reason, count in sorted(counter.items())) or "none"


@dataclass
class Summary:
    """What a run did: counts of images, failed images and faces rejected per reason, faces kept, files written."""

    images_read: int = 0
    images_already_done: int = 0
    faces_kept: int = 0
    variants_written: int = 0
    rejected: Counter = field(default_factory=Counter)  # faces (or images without faces), by reason
    failures: Counter = field(default_factory=Counter)  # images that raised, by reason

    @property
    def images_failed(self) -> int:
        return sum(self.failures.values())

    def add(self, other: Summary) -> None:
        self.images_read += other.images_read
        self.images_already_done += other.images_already_done
        self.faces_kept += other.faces_kept
        self.variants_written += other.variants_written
        self.rejected.update(other.rejected)
        self.failures.update(other.failures)

    def to_json(self) -> str:
        """The counts as one JSON line (how a summary travels between processes of a Ray run)."""
        return json.dumps({"images_read": self.images_read, "images_already_done": self.images_already_done,
                           "faces_kept": self.faces_kept, "variants_written": self.variants_written,
                           "rejected": dict(self.rejected), "failures": dict(self.failures)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Summary:
        counts = json.loads(text)
        return cls(counts["images_read"], counts["images_already_done"], counts["faces_kept"],
                   counts["variants_written"], Counter(counts["rejected"]), Counter(counts["failures"]))

    def lines(self) -> list[str]:
        return [f"images read: {self.images_read} (already done: {self.images_already_done}, "
                f"failed: {self.images_failed})",
                f"images failed by reason: {_counts(self.failures)}",
                f"faces kept: {self.faces_kept}; rejected: {_counts(self.rejected)}",
                f"images written: {self.variants_written}"]


@dataclass
class SourceImage:
    """One input photo: a unique key (relative output name) and a way to decode it as ``H×W×3 uint8 BGR``."""

    key: str
    output_subdir: str  # folder (relative to the output roots) that holds this image's identity folders
    name: str  # identity folder prefix: ``<name>_<face:02d>``
    load: Callable[[], np.ndarray]


def image_rng(seed: int, key: str) -> random.Random:
    """The generator of one image: depends only on the run seed and the image key (order-independent)."""
    return random.Random(f"{seed}:{key}")


def resize_for_detection(image: np.ndarray) -> np.ndarray:
    """Shrink so the long side is at most 1280 (INTER_LINEAR), then crop height and width to even numbers.

    The detector then sees this image as it is (faces/README.md §1.3: no ``max_size`` in preprocessing).
    """
    height, width = image.shape[:2]
    if max(height, width) > MAX_IMAGE_SIDE:
        factor = MAX_IMAGE_SIDE / max(height, width)
        image = cv2.resize(image, (int(width * factor), int(height * factor)), interpolation=cv2.INTER_LINEAR)
        height, width = image.shape[:2]
    return image[: height - height % 2, : width - width % 2]


def prepare_photo(image_bgr: np.ndarray, options: PreprocessOptions, summary: Summary) -> np.ndarray | None:
    """The size filter, then :func:`resize_for_detection`; None (counted as ``image_too_small``) drops the photo.

    The CPU part of an image's work: the Ray runner calls it in its decoding tasks, ahead of the model actors.
    """
    height, width = image_bgr.shape[:2]
    if not (height > options.min_original_image_size and width > options.min_original_image_size):
        summary.rejected["image_too_small"] += 1
        return None
    return np.ascontiguousarray(resize_for_detection(image_bgr))


def by_score(faces: Iterable[Any]) -> list[Any]:
    """Faces by decreasing detector score; ties keep the given order (the detector's score order, as the original)."""
    return sorted(faces, key=lambda face: -face.score)


def face_rejection(face: Any, options: PreprocessOptions, image_shape: tuple[int, ...]) -> str | None:
    """Why a detected face is dropped (absurd box, eyes too close, box too small), or None to keep it.

    Absurd detections (box or keypoints not finite, inverted, far larger than the image, outside it) are our
    addition: the original cropped around them, which can ask numpy for hundreds of gigabytes.
    """
    problem = detection_problem(face, image_shape)
    if problem is not None:
        return problem
    eye_distance = float(np.linalg.norm(face.keypoints[0] - face.keypoints[1]))
    if eye_distance < options.eye_dist_threshold:
        return "eyes_too_close"
    width, height = face.box[2] - face.box[0], face.box[3] - face.box[1]
    if options.min_original_face_size > 0 and (width < options.min_original_face_size
                                                or height < options.min_original_face_size):
        return "face_too_small"
    return None


class ImageProcessor:
    """Runs the per-image pipeline with loaded models and writes the outputs of each image."""

    def __init__(self, models: PreprocessModels, options: PreprocessOptions, photos_prepared: bool = False) -> None:
        """``photos_prepared``: the images' ``load()`` returns photos that already went through
        :func:`prepare_photo` (the Ray runner decodes and filters them in CPU tasks)."""
        self.models = models
        self.options = options
        self.photos_prepared = photos_prepared
        self._written: list[Path] = []  # files of the image being processed

    def _write(self, path: Path, image_bgr: np.ndarray) -> None:
        self._written.append(write_image(path, image_bgr))

    def discard_outputs(self) -> None:
        """Delete what the last :meth:`process` wrote (after it failed), and the identity folders it left empty."""
        for path in reversed(self._written):
            path.unlink(missing_ok=True)
            if path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()
        self._written = []

    def _enhance(self, face_bgr: np.ndarray, key: str) -> np.ndarray:
        """GFPGAN v1.2 on a ``512×512×3 uint8 BGR`` crop; its noise is seeded by the run seed and ``key``.

        GFPGAN draws fresh noise at every call (the released behaviour); seeding it per face keeps the
        restart guarantee (a redone image gives the same pixels) without touching the global generator.
        """
        from models.gfpgan import enhance_face, seeded_noise

        device = next(self.models.gfpgan.parameters()).device
        with seeded_noise(zlib.crc32(f"{self.options.seed}:{key}".encode()), device):
            return enhance_face(face_bgr, self.models.gfpgan)

    def _save(self, image_bgr: np.ndarray, keypoints: np.ndarray, identity_dir: str, index: int,
              enhance_key: str | None = None) -> None:
        """Align one image's face and write it (and the unaligned image with --save_full_size).

        With ``enhance_key`` the face is restored first (§6.4 step 10): facexlib 512 crop, GFPGAN, then a
        cubic resize to the final size (facexlib mode) or the chosen alignment of the restored crop.
        """
        options = self.options
        size = options.final_crop_size
        if enhance_key is None:
            aligned, _ = align_face(image_bgr, keypoints, options.align_mode, size, self.models.cvlface_aligner)
        else:
            face_bgr, matrix = align_face(image_bgr, keypoints, "facexlib", FACE_CROP_SIZE)
            restored = self._enhance(face_bgr, enhance_key)
            if options.align_mode == "facexlib":
                aligned = cv2.resize(restored, (size, size), interpolation=cv2.INTER_CUBIC)
            else:
                aligned, _ = align_face(restored, transform_points(keypoints, matrix), options.align_mode, size,
                                        self.models.cvlface_aligner)
        self._write(options.output_dir_resized / identity_dir / f"{index}.jpg", aligned)
        if options.save_full_size:
            self._write(options.output_dir / identity_dir / f"{index}.jpg", image_bgr)

    def _keep_faces(self, faces: Iterable[Any], image_shape: tuple[int, ...],
                    rejected: Counter | None = None) -> list[Any]:
        """The faces that pass the box, eye-distance and size filters, at most ``max_faces_per_image`` by score."""
        kept = []
        for face in by_score(faces):
            reason = face_rejection(face, self.options, image_shape)
            if reason is None:
                kept.append(face)
            elif rejected is not None:
                rejected[reason] += 1
        limit = self.options.max_faces_per_image
        if limit > 0:
            if rejected is not None:
                rejected["over_max_faces_per_image"] += max(0, len(kept) - limit)
            kept = kept[:limit]
        return kept

    def _enhance_faces_in_image(self, image_bgr: np.ndarray, faces: Sequence[Any], key: str) -> np.ndarray:
        """Restore every face inside the full ``H×W×3 uint8 BGR`` image (§6.4 step 5), one after another.

        Each face: facexlib 512 crop, GFPGAN, pasted back through its BiSeNet face mask blurred twice
        (101×101), so pixels away from the faces keep their values.
        """
        from models.bisenet import parse_face
        from utils.paste_back import paste_back_facexlib_with_parser

        def face_parser(face_bgr: np.ndarray) -> np.ndarray:
            return parse_face(face_bgr, self.models.face_parser)

        for index, face in enumerate(faces):
            face_bgr, matrix = align_face(image_bgr, face.keypoints, "facexlib", FACE_CROP_SIZE)
            restored = self._enhance(face_bgr, f"{key}:in_original:{index}")
            # The original assigned the (image, mask) pair to the image (faces/README.md quirk 7); keep the image.
            image_bgr, _ = paste_back_facexlib_with_parser(image_bgr, restored, matrix, face_parser)
        return image_bgr

    def _variants(self, face_bgr: np.ndarray, landmarks_68: np.ndarray, rng: random.Random) -> list[np.ndarray] | None:
        """[the face crop, variant 1..V] as BGR 512×512, or None when the face fails the validity check."""
        from models.liveportrait.retargeting import draw_face_parameters

        pipeline = self.models.liveportrait
        source = pipeline.analyse(np.ascontiguousarray(face_bgr[:, :, ::-1]), landmarks_68)
        if self.options.filter_valid_faces and not source.is_valid():
            return None
        parameters = draw_face_parameters(rng, self.options.number_of_variants_per_face)
        images = [face_bgr]
        if parameters:
            rendered = pipeline.retarget(source, parameters).images
            images += [np.ascontiguousarray(image[:, :, ::-1]) for image in rendered]
        return images

    def _retarget_face_crops(self, image: SourceImage, image_bgr: np.ndarray, faces: Sequence[Any],
                             rng: random.Random, summary: Summary) -> None:
        """Default mode (§6.4 steps 8–9, do_crop off): variants of each face's 512 crop, saved per face."""
        options, models = self.options, self.models
        for face_index, face in enumerate(faces):
            identity_dir = f"{image.output_subdir}/{image.name}_{face_index:02d}".lstrip("/")
            try:
                landmarks_68 = models.landmark_detector.get_landmarks(image_bgr, face.box)
                face_bgr, matrix = align_face(image_bgr, face.keypoints, "facexlib", FACE_CROP_SIZE)
                if options.enhance_output_face:
                    face_bgr = self._enhance(face_bgr, f"{image.key}:crop:{face_index}")
                landmarks_in_crop = transform_points(landmarks_68, matrix)
                variants = self._variants(face_bgr, landmarks_in_crop, rng)
            except FaceBoxError as error:  # e.g. landmarks spread far outside the crop: drop this face only
                logger.debug("%s face %d: %s", image.key, face_index, error)
                summary.rejected[error.reason] += 1
                continue
            if variants is None:
                summary.rejected["not_fully_visible"] += 1
                continue
            summary.faces_kept += 1
            variants = [np.ascontiguousarray(v[:, ::-1]) if rng.getrandbits(1) else v for v in variants]
            # The detector sees RGB (bgr=True swaps the channels of these BGR images).
            detections = models.detector.detect_batch(variants, bgr=True, in_score_order=True)
            for index, (variant, found) in enumerate(zip(variants, detections)):
                usable = []
                for detected in by_score(found):
                    problem = detection_problem(detected, variant.shape)
                    if problem is None:
                        usable.append(detected)
                    else:
                        summary.rejected[f"variant_{problem}"] += 1
                if not usable:
                    summary.rejected["variant_without_face"] += 1
                    continue
                # GFPGAN is not applied again here: the crop was restored before retargeting.
                self._save(variant, usable[0].keypoints, identity_dir, index)
                summary.variants_written += 1

    def _retarget_in_full_image(self, image: SourceImage, image_bgr: np.ndarray, faces: Sequence[Any],
                                rng: random.Random, summary: Summary) -> None:
        """do_crop mode (§6.4 steps 8–9): all faces retargeted inside the full image, then re-detected.

        Variant k of every face is pasted into copy k of the image (a generated feathered mask, see
        models.liveportrait.crop.paste_back_mask). One face failing the validity check, or a different number
        of faces found in any of [original + variants], drops the whole image. Face j (left to right) of
        image k is saved as ``<id>_<j:02d>/<k>.jpg``; ``save_retargeted`` also writes the full images.
        """
        from models.liveportrait.crop import paste_back, warp_paste_back_mask
        from models.liveportrait.retargeting import draw_face_parameters
        from models.retinaface import sort_faces

        options, models = self.options, self.models
        pipeline = models.liveportrait
        image_rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
        analysed = []
        for face in faces:
            try:
                landmarks_68 = models.landmark_detector.get_landmarks(image_bgr, face.box)
                analysed.append(pipeline.analyse_in_image(image_rgb, landmarks_68, options.retargeting_crop_scale))
            except FaceBoxError as error:  # one unusable face drops the image, like one invalid face
                logger.debug("%s: %s", image.key, error)
                summary.rejected[error.reason] += 1
                summary.rejected["other_face_unusable"] += len(faces) - 1
                return
        if options.filter_valid_faces:
            invalid = sum(not source.is_valid() for source, _ in analysed)
            if invalid:
                summary.rejected["not_fully_visible"] += invalid
                summary.rejected["other_face_not_fully_visible"] += len(analysed) - invalid
                return
        variant_count = options.number_of_variants_per_face
        variants_bgr = [image_bgr] * variant_count
        for source, source_crop in analysed:
            parameters = draw_face_parameters(rng, variant_count)
            if not parameters:
                continue
            rendered = pipeline.retarget(source, parameters).images
            rendered_bgr = [np.ascontiguousarray(face_rgb[:, :, ::-1]) for face_rgb in rendered]
            warped_mask = warp_paste_back_mask(source_crop.crop_to_original, image_bgr.shape,
                                               rendered_bgr[0].shape[0])
            variants_bgr = [paste_back(variant, face_bgr, source_crop.crop_to_original, warped_mask)
                            for variant, face_bgr in zip(variants_bgr, rendered_bgr)]
        images = [image_bgr, *variants_bgr]
        if options.save_retargeted:
            retargeted_dir = options.output_dir_retargeted / image.output_subdir / image.name
            for index, full_image in enumerate(images):
                self._write(retargeted_dir / f"{index}.jpg", full_image)
        # The detector sees RGB (bgr=True swaps the channels of these BGR images).
        found = [self._keep_faces(detected, image_bgr.shape)
                 for detected in models.detector.detect_batch(images, bgr=True, in_score_order=True)]
        counts = {len(faces_in_image) for faces_in_image in found}
        if len(counts) != 1:
            summary.rejected["face_count_changed"] += len(faces)
            return
        if not found[0]:
            summary.rejected["no_face_redetected"] += len(faces)
            return
        summary.faces_kept += len(found[0])
        for index, (full_image, faces_in_image) in enumerate(zip(images, found)):
            for face_index, face in enumerate(sort_faces(faces_in_image)):
                identity_dir = f"{image.output_subdir}/{image.name}_{face_index:02d}".lstrip("/")
                enhance_key = f"{image.key}:aligned:{face_index}:{index}" if options.enhance_output_face else None
                self._save(full_image, face.keypoints, identity_dir, index, enhance_key)
                summary.variants_written += 1

    def process(self, image: SourceImage, summary: Summary) -> None:
        """Process one photo; faces and reasons are counted in ``summary``. Raises on unreadable input."""
        options, models = self.options, self.models
        self._written = []
        rng = image_rng(options.seed, image.key)
        image_bgr = image.load() if self.photos_prepared else prepare_photo(image.load(), options, summary)
        if image_bgr is None:
            return
        # The original hands RGB to RetinaFace; bgr=True makes the detector's own preprocessing swap the channels.
        faces = models.detector.detect_batch([image_bgr], bgr=True, in_score_order=True)[0]
        if not faces:
            summary.rejected["no_face_detected"] += 1
            return
        kept = self._keep_faces(faces, image_bgr.shape, summary.rejected)
        if kept and options.enhance_faces_in_original_image:
            image_bgr = self._enhance_faces_in_image(image_bgr, kept, image.key)
        if not options.retargeting:
            for face_index, face in enumerate(kept):
                identity_dir = f"{image.output_subdir}/{image.name}_{face_index:02d}".lstrip("/")
                enhance_key = f"{image.key}:aligned:{face_index}:0" if options.enhance_output_face else None
                self._save(image_bgr, face.keypoints, identity_dir, 0, enhance_key)
                summary.faces_kept += 1
                summary.variants_written += 1
        elif kept and options.retargeting_do_crop:
            self._retarget_in_full_image(image, image_bgr, kept, rng, summary)
        else:
            self._retarget_face_crops(image, image_bgr, kept, rng, summary)


