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
"""
from __future__ import annotations

import logging
import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from utils.align import (
    ALIGN_MODES,
    DEFAULT_ALIGN_MODE,
    align_face,
    transform_points,
)
from utils.errors import GhostError
from utils.image import list_images, write_image

logger = logging.getLogger(__name__)

MAX_IMAGE_SIDE = 1280
FACE_CROP_SIZE = 512
DONE_FOLDER = ".done"


@dataclass
class PreprocessOptions:
    """Run and retargeting options shared by both datasets (defaults are the original project's)."""

    output_dir: Path
    output_dir_resized: Path
    output_dir_retargeted: Path
    detection_threshold: float = 0.97
    detection_max_size: int = MAX_IMAGE_SIDE
    min_original_image_size: int = 250
    min_original_face_size: int = 64
    eye_dist_threshold: float = 5.0
    final_crop_size: int = 256
    align_mode: str = DEFAULT_ALIGN_MODE
    stop_if_error: bool = False
    retargeting: bool = True
    number_of_variants_per_face: int = 24
    enhance_output_face: bool = False
    enhance_faces_in_original_image: bool = False
    retargeting_do_crop: bool = False
    retargeting_crop_scale: float = 2.3
    filter_valid_faces: bool = True
    save_full_size: bool = False
    save_retargeted: bool = False
    max_faces_per_image: int = 0  # 0: every face that passes the filters
    seed: int = 0
    render_batch_size: int = 4
    num_workers_total: int = 1
    worker_index: int = 0

    def check(self) -> None:
        """Reject option combinations this implementation cannot honour, with a clear message."""
        if self.align_mode not in ALIGN_MODES:
            raise GhostError(f"unknown --align_mode {self.align_mode!r}; choose one of {', '.join(ALIGN_MODES)}")
        if self.num_workers_total < 1 or not 0 <= self.worker_index < self.num_workers_total:
            raise GhostError(f"--worker_index must be in [0, {self.num_workers_total - 1}] "
                             f"(got {self.worker_index} with --num_workers_total {self.num_workers_total})")
        if self.number_of_variants_per_face < 0:
            raise GhostError("--number_of_variants_per_face must be 0 or more")
        if self.retargeting_crop_scale <= 0:
            raise GhostError(f"--retargeting_crop_scale must be positive (got {self.retargeting_crop_scale})")
        if self.retargeting_do_crop and not self.retargeting:
            raise GhostError("--retargeting_do_crop retargets faces inside the full image; it needs --retargeting")
        if self.save_retargeted and not self.retargeting_do_crop:
            raise GhostError("--save_retargeted writes the full retargeted images of the --retargeting_do_crop mode; "
                             "add --retargeting_do_crop")


@dataclass
class PreprocessModels:
    """The networks a run needs (only those its options use are loaded)."""

    detector: Any  # models.retinaface.FaceDetector
    landmark_detector: Any | None = None  # models.fan_landmarks.LandmarkDetector
    liveportrait: Any | None = None  # models.liveportrait.retargeting.LivePortraitPipeline
    gfpgan: torch.nn.Module | None = None
    cvlface_aligner: torch.nn.Module | None = None
    face_parser: torch.nn.Module | None = None  # BiSeNet, for enhance_faces_in_original_image only


def load_models(options: PreprocessOptions, device: torch.device, weights_dir: str | Path | None,
                paths: dict[str, str | None]) -> PreprocessModels:
    """Load the networks the options need; ``paths`` maps registry names to explicit file paths."""
    from models.fan_landmarks import load_landmark_detector
    from models.gfpgan import load_gfpgan
    from models.liveportrait.retargeting import load_pipeline
    from models.registry import load_model
    from models.retinaface import load_face_detector

    fp16 = device.type == "cuda"
    detector = load_face_detector(device, paths.get("retinaface"), weights_dir, threshold=options.detection_threshold,
                                  max_size=options.detection_max_size, fp16=fp16)
    models = PreprocessModels(detector)
    if options.retargeting:
        models.landmark_detector = load_landmark_detector(device, paths.get("face_alignment"), weights_dir, fp16=fp16)
        models.liveportrait = load_pipeline(device, weights_dir, paths, fp16=fp16,
                                            render_batch_size=options.render_batch_size)
    if options.enhance_output_face or options.enhance_faces_in_original_image:
        models.gfpgan = load_gfpgan("v1.2", device, paths.get("gfpgan_v1_2"), weights_dir)
    if options.enhance_faces_in_original_image:
        from models.bisenet import load_bisenet

        models.face_parser = load_bisenet(device, paths.get("bisenet"), weights_dir)
    if options.align_mode == "cvlface":
        models.cvlface_aligner = load_model("cvlface_aligner", device=device, path=paths.get("cvlface_aligner"),
                                            weights_dir=weights_dir)
    return models


@dataclass
class Summary:
    """What a run did: counts of images, faces kept, faces rejected per reason, files written."""

    images_read: int = 0
    images_already_done: int = 0
    images_failed: int = 0
    faces_kept: int = 0
    variants_written: int = 0
    rejected: Counter = field(default_factory=Counter)

    def add(self, other: Summary) -> None:
        self.images_read += other.images_read
        self.images_already_done += other.images_already_done
        self.images_failed += other.images_failed
        self.faces_kept += other.faces_kept
        self.variants_written += other.variants_written
        self.rejected.update(other.rejected)

    def lines(self) -> list[str]:
        rejected = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.rejected.items())) or "none"
        return [f"images read: {self.images_read} (already done: {self.images_already_done}, "
                f"failed: {self.images_failed})",
                f"faces kept: {self.faces_kept}; rejected: {rejected}",
                f"images written: {self.variants_written}"]


@dataclass
class SourceImage:
    """One input photo: a unique key (relative output name) and a way to decode it as ``H×W×3 uint8 RGB``."""

    key: str
    output_subdir: str  # folder (relative to the output roots) that holds this image's identity folders
    name: str  # identity folder prefix: ``<name>_<face:02d>``
    load: Callable[[], np.ndarray]


def partition(items: Sequence[Any], num_workers_total: int, worker_index: int) -> list[Any]:
    """The share of worker ``worker_index``: every ``num_workers_total``-th item of the sorted input."""
    return [item for index, item in enumerate(items) if index % num_workers_total == worker_index]


def done_marker(options: PreprocessOptions, image: SourceImage) -> Path:
    return options.output_dir_resized / image.output_subdir / DONE_FOLDER / f"{image.name}.done"


def _write_marker(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def image_rng(seed: int, key: str) -> random.Random:
    """The generator of one image: depends only on the run seed and the image key (order-independent)."""
    return random.Random(f"{seed}:{key}")


def resize_for_detection(image_rgb: np.ndarray) -> np.ndarray:
    """Shrink so the long side is at most 1280 (INTER_LINEAR), then crop height and width to even numbers."""
    height, width = image_rgb.shape[:2]
    if max(height, width) > MAX_IMAGE_SIDE:
        factor = MAX_IMAGE_SIDE / max(height, width)
        image_rgb = cv2.resize(image_rgb, (int(width * factor), int(height * factor)), interpolation=cv2.INTER_LINEAR)
        height, width = image_rgb.shape[:2]
    return image_rgb[: height - height % 2, : width - width % 2]


def by_score(faces: Iterable[Any]) -> list[Any]:
    """Faces by decreasing detector score (the original's order; ties keep the detector's order)."""
    return sorted(faces, key=lambda face: -face.score)


def face_rejection(face: Any, options: PreprocessOptions) -> str | None:
    """Why a detected face is dropped (eyes too close, box too small), or None to keep it."""
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

    def __init__(self, models: PreprocessModels, options: PreprocessOptions) -> None:
        self.models = models
        self.options = options

    def _enhance(self, face_bgr: np.ndarray, key: str) -> np.ndarray:
        """GFPGAN v1.2 on a ``512×512×3 uint8 BGR`` crop; its noise is seeded by the run seed and ``key``.

        GFPGAN draws fresh noise at every call (the released behaviour); seeding it per face keeps the
        restart guarantee (a redone image gives the same pixels) without touching the global generator.
        """
        from models.gfpgan import enhance_face

        device = next(self.models.gfpgan.parameters()).device
        cuda_devices = []
        if device.type == "cuda":
            cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()]
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(zlib.crc32(f"{self.options.seed}:{key}".encode()))
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
        write_image(options.output_dir_resized / identity_dir / f"{index}.jpg", aligned)
        if options.save_full_size:
            write_image(options.output_dir / identity_dir / f"{index}.jpg", image_bgr)

    def _keep_faces(self, faces: Iterable[Any], rejected: Counter | None = None) -> list[Any]:
        """The faces that pass the eye-distance and size filters, at most ``max_faces_per_image`` by score."""
        kept = []
        for face in by_score(faces):
            reason = face_rejection(face, self.options)
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
            landmarks_68 = models.landmark_detector.get_landmarks(image_bgr, face.box)
            face_bgr, matrix = align_face(image_bgr, face.keypoints, "facexlib", FACE_CROP_SIZE)
            if options.enhance_output_face:
                face_bgr = self._enhance(face_bgr, f"{image.key}:crop:{face_index}")
            landmarks_in_crop = transform_points(landmarks_68, matrix)
            variants = self._variants(face_bgr, landmarks_in_crop, rng)
            if variants is None:
                summary.rejected["not_fully_visible"] += 1
                continue
            summary.faces_kept += 1
            variants = [np.ascontiguousarray(v[:, ::-1]) if rng.getrandbits(1) else v for v in variants]
            # The detector sees RGB (bgr=True swaps the channels of these BGR images).
            detections = models.detector.detect_batch(variants, bgr=True)
            for index, (variant, found) in enumerate(zip(variants, detections)):
                if not found:
                    summary.rejected["variant_without_face"] += 1
                    continue
                # GFPGAN is not applied again here: the crop was restored before retargeting.
                self._save(variant, by_score(found)[0].keypoints, identity_dir, index)
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
            landmarks_68 = models.landmark_detector.get_landmarks(image_bgr, face.box)
            analysed.append(pipeline.analyse_in_image(image_rgb, landmarks_68, options.retargeting_crop_scale))
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
                write_image(retargeted_dir / f"{index}.jpg", full_image)
        # The detector sees RGB (bgr=True swaps the channels of these BGR images).
        found = [self._keep_faces(detected) for detected in models.detector.detect_batch(images, bgr=True)]
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
        rng = image_rng(options.seed, image.key)
        image_rgb = image.load()
        height, width = image_rgb.shape[:2]
        if not (height > options.min_original_image_size and width > options.min_original_image_size):
            summary.rejected["image_too_small"] += 1
            return
        image_rgb = np.ascontiguousarray(resize_for_detection(image_rgb))
        # The original hands the RGB array to RetinaFace without a channel swap.
        faces = models.detector.detect_batch([image_rgb], bgr=False)[0]
        if not faces:
            summary.rejected["no_face_detected"] += 1
            return
        kept = self._keep_faces(faces, summary.rejected)
        image_bgr = np.ascontiguousarray(image_rgb[:, :, ::-1])
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


def run(images: Iterable[SourceImage], processor: ImageProcessor, total: int | None = None) -> Summary:
    """Process every image not yet marked done; a failing image is logged and skipped unless stop_if_error."""
    from tqdm import tqdm

    options = processor.options
    summary = Summary()
    for image in tqdm(images, total=total, desc="images", unit="img"):
        marker = done_marker(options, image)
        if marker.exists():
            summary.images_already_done += 1
            continue
        summary.images_read += 1
        image_summary = Summary()
        try:
            processor.process(image, image_summary)
        except (GhostError, ValueError, cv2.error) as error:
            if options.stop_if_error:
                raise
            logger.warning("skipping %s: %s", image.key, error)
            summary.images_failed += 1
            summary.rejected["unreadable_or_failed"] += 1
            _write_marker(marker, f"failed: {error}\n")
            continue
        summary.add(image_summary)
        _write_marker(marker, f"faces kept: {image_summary.faces_kept}\n")
    return summary


def decode_rgb(data: bytes, source: str) -> np.ndarray:
    """Decode encoded image bytes to ``H×W×3 uint8 RGB``; a corrupt payload raises ImageReadError."""
    from utils.errors import ImageReadError
    from utils.image import to_bgr_uint8

    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if decoded is None:
        raise ImageReadError(Path(source), "not a decodable image (corrupt or truncated)")
    return cv2.cvtColor(to_bgr_uint8(decoded, source), cv2.COLOR_BGR2RGB)


def describe_run(options: PreprocessOptions) -> str:
    return (f"worker {options.worker_index + 1}/{options.num_workers_total}, "
            f"{options.number_of_variants_per_face if options.retargeting else 0} variants per face, "
            f"align {options.align_mode} {options.final_crop_size}px")


# --- command lines -------------------------------------------------------------------------------------------

MODEL_FLAGS = (
    ("gfpgan_model_path", "gfpgan_v1_2", "GFPGAN v1.2 weights (enhancement flags only)"),
    ("face_alignment_model_path", "face_alignment", "FaceAlignment 2D-FAN-4 weights"),
    ("face_parser_model_path", "bisenet", "BiSeNet face parser weights"),
    ("retina_face_model_path", "retinaface", "RetinaFace weights"),
    ("cvlface_aligner_model_path", "cvlface_aligner", "CVLFace DFA aligner weights (--align_mode cvlface)"),
    ("live_portrait_landmark_model_path", "liveportrait_landmark", "LivePortrait landmark network"),
    ("live_portrait_F_model_path", "liveportrait_appearance_feature_extractor", "LivePortrait appearance extractor"),
    ("live_portrait_M_model_path", "liveportrait_motion_extractor", "LivePortrait motion extractor"),
    ("live_portrait_W_model_path", "liveportrait_warping_module", "LivePortrait warping module"),
    ("live_portrait_G_model_path", "liveportrait_spade_generator", "LivePortrait SPADE generator"),
    ("live_portrait_S_model_path", "liveportrait_stitching_retargeting_module", "LivePortrait stitching MLPs"),
)


def add_preprocess_arguments(parser: Any, output_defaults: tuple[str, str, str]) -> None:
    """Flags shared by both preprocessing scripts (names and defaults of the original, §6.5)."""
    from utils.cli import add_bool, add_device_arguments, add_weight_path

    add_device_arguments(parser)
    for flag, checkpoint, text in MODEL_FLAGS:
        add_weight_path(parser, flag, checkpoint, text)
    output_dir, output_dir_resized, output_dir_retargeted = output_defaults
    parser.add_argument("--output_dir", default=output_dir, help="unaligned images (--save_full_size)")
    parser.add_argument("--output_dir_resized", default=output_dir_resized,
                        help="aligned faces, one folder per identity")
    parser.add_argument("--output_dir_retargeted", default=output_dir_retargeted,
                        help="full retargeted images (--save_retargeted)")
    parser.add_argument("--detection_threshold", type=float, default=0.97, help="RetinaFace confidence threshold")
    parser.add_argument("--detection_max_size", type=int, default=MAX_IMAGE_SIDE,
                        help="long side of the image given to RetinaFace")
    parser.add_argument("--min_original_image_size", type=int, default=250,
                        help="skip images whose height or width is not above this")
    parser.add_argument("--min_original_face_size", type=int, default=64, help="minimum face box side (0: off)")
    parser.add_argument("--eye_dist_threshold", type=float, default=5.0, help="minimum distance between the eyes")
    parser.add_argument("--final_crop_size", type=int, default=256, help="side of the aligned output faces")
    parser.add_argument("--align_mode", default=DEFAULT_ALIGN_MODE, choices=ALIGN_MODES, help="face alignment")
    add_bool(parser, "stop_if_error", False, "stop at the first failing image instead of skipping it")
    add_bool(parser, "retargeting", True, "make LivePortrait expression variants of each face")
    parser.add_argument("--number_of_variants_per_face", type=int, default=24, help="variants per face")
    add_bool(parser, "enhance_output_face", False, "restore each face with GFPGAN v1.2 (the 512 px crop before "
             "retargeting; with --retargeting_do_crop or --no-retargeting, each saved face)")
    add_bool(parser, "enhance_faces_in_original_image", False,
             "restore the faces inside the full image with GFPGAN v1.2 (BiSeNet-masked paste-back) first")
    add_bool(parser, "retargeting_do_crop", False,
             "retarget the faces inside the full image and paste the variants back (one image per variant)")
    parser.add_argument("--retargeting_crop_scale", type=float, default=2.3,
                        help="size of the do_crop face crop relative to the landmarks' box")
    add_bool(parser, "filter_valid_faces", True, "drop faces that are not frontal, open-eyed, closed-mouthed")
    add_bool(parser, "save_full_size", False, "also write the unaligned 512px images to --output_dir")
    add_bool(parser, "save_retargeted", False,
             "with --retargeting_do_crop, also write the full retargeted images to --output_dir_retargeted")
    parser.add_argument("--max_faces_per_image", type=int, default=0, help="keep at most this many faces (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random expressions and flips")
    parser.add_argument("--render_batch_size", type=int, default=4, help="variants rendered per LivePortrait batch")
    parser.add_argument("--num_workers_total", type=int, default=1, help="number of workers sharing the dataset")
    parser.add_argument("--worker_index", type=int, default=0, help="this worker's index in [0, num_workers_total)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def options_from_args(args: Any) -> tuple[PreprocessOptions, dict[str, str | None]]:
    """Options and per-checkpoint path overrides from parsed arguments."""
    names = {item.name for item in PreprocessOptions.__dataclass_fields__.values()}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    for name in ("output_dir", "output_dir_resized", "output_dir_retargeted"):
        values[name] = Path(values[name])
    paths = {checkpoint: getattr(args, flag) for flag, checkpoint, _ in MODEL_FLAGS}
    options = PreprocessOptions(**values)
    options.check()
    return options, paths


def run_from_args(args: Any, dataset: Callable[[PreprocessOptions, PreprocessModels], Summary]) -> Summary:
    """Check the options of a parsed command line, load the models they need, and run ``dataset`` with them."""
    from utils.device import resolve_device

    options, paths = options_from_args(args)
    models = load_models(options, resolve_device(args.device), args.weights_dir, paths)
    return dataset(options, models)


def preprocess_lagenda(lagenda_base_dir: str | Path, options: PreprocessOptions, models: PreprocessModels) -> Summary:
    """Process every image file of a folder (flat, sorted; this worker's share); the id is the file stem."""
    from utils.errors import DatasetError
    from utils.image import read_image

    folder = Path(lagenda_base_dir)
    if not folder.is_dir():
        raise DatasetError(f"Lagenda folder {folder} does not exist (check --lagenda_base_dir)")
    files = list_images(folder, recursive=False)
    mine = partition(files, options.num_workers_total, options.worker_index)
    logger.info("%d images in %s, %d for %s", len(files), folder, len(mine), describe_run(options))

    def source(path: Path) -> SourceImage:
        return SourceImage(path.name, "", path.stem, lambda: cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB))

    return run((source(path) for path in mine), ImageProcessor(models, options), total=len(mine))


def preprocess_laion(laion_face_base_dir: str | Path, part_indices: Sequence[int], options: PreprocessOptions,
                     models: PreprocessModels) -> Summary:
    """Process the shards of the requested splits (this worker's share of the sorted shard list)."""
    from utils.laion_shards import iter_samples, list_shards, successful_rows

    shards = list_shards(laion_face_base_dir, part_indices)
    mine = partition(shards, options.num_workers_total, options.worker_index)
    logger.info("%d shards, %d for %s", len(shards), len(mine), describe_run(options))
    processor = ImageProcessor(models, options)
    summary = Summary()
    for shard in mine:
        subdir = f"{shard.split}/{shard.name}"
        complete = options.output_dir_resized / subdir / DONE_FOLDER / "shard.complete"
        if complete.exists():
            logger.info("shard %s already done", subdir)
            continue
        logger.info("shard %s", subdir)

        def samples(shard=shard, subdir=subdir) -> Iterator[SourceImage]:
            for sample in iter_samples(shard):
                yield SourceImage(f"{subdir}/{sample.sample_id}", subdir, sample.sample_id,
                                  lambda sample=sample: decode_rgb(sample.data, f"{shard.tar_path}:{sample.member}"))

        summary.add(run(samples(), processor, total=successful_rows(shard)))
        _write_marker(complete, "complete\n")
    return summary
