"""The face swapper of inference.py, demo.py, the web UI and evaluate.py: the models, their stage objects and the
per-face geometry (align, landmarks, paste-back), over which utils.inference.pipeline runs every swap.

``FaceSwapper(options).swap_files(source, target, output)`` is what inference.py does for one pair; photos are
swapped as a stream of one frame by the frame pipeline, so photos, videos and streams share one per-face path.
Each stage's wall time is kept in ``FaceSwapper.timings`` for the benchmarks.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch

from utils.errors import GhostError
from utils.image import read_image, write_image
from utils.inference.model_cache import ModelCache
from utils.inference.model_set import SwapModels
from utils.inference.options import ALIGNED_FACE_SIZE, SwapOptions
from utils.inference.selection import FaceSelection, check_face_index
from utils.inference.stages import FaceInImage, Stages

if TYPE_CHECKING:
    from utils.inference.face_quality import FaceMasks
    from utils.inference.pipeline import SourceFace
    from utils.paste_back import GhostMaskSettings

logger = logging.getLogger(__name__)

__all__ = ["FaceInImage", "FaceSwapper", "SwapResult", "draw_landmark_indices"]


@dataclass
class SwapResult:
    """What one swap produced, with the intermediate faces (the --debug outputs)."""

    image: np.ndarray  # H×W×3 uint8 BGR (256×256 for paste_back_mode "none")
    source: FaceInImage
    target: FaceInImage
    swapped_face: np.ndarray  # 256×256×3 uint8 BGR, raw generator output
    enhanced_face: np.ndarray | None  # 256×256×3 uint8 BGR after GFPGAN, None when not enhanced
    mask: np.ndarray | None  # H×W uint8 mask returned by the paste-back (ghost, facexlib_with_parser)
    timings: dict[str, float] = field(default_factory=dict)


class FaceSwapper(SwapModels):
    """Swap the face of a source image into a target image; models load on first use, once.

    ``swap_files`` reads, swaps and writes one pair; ``swap_images`` works on arrays; ``with_options(...)`` gives
    a swapper with other settings that reuses the models already loaded; ``stages`` are the batched model calls.
    """

    def __init__(self, options: SwapOptions | None = None, models: ModelCache | None = None) -> None:
        super().__init__(options, models or ModelCache())
        self.stages = Stages.of(self)

    def with_options(self, **changes: Any) -> FaceSwapper:
        """A swapper with some options changed, sharing this one's loaded models."""
        return FaceSwapper(replace(self.options, **changes), self.models)

    # ------------------------------------------------------------------------------------------------ per face

    def check_nsfw(self, image: np.ndarray, what: str) -> None:
        """Raise NSFWContentError when the classifier calls ``image`` (H×W×3 uint8 BGR) NSFW."""
        self.stages.nsfw([image], [what])

    def detections(self, image: np.ndarray) -> list:
        """Every face RetinaFace finds in the photo ``image`` (H×W×3 uint8 BGR), in CLI order (cached per content)."""
        return self.stages.detect.photo(image)

    def detect(self, image: np.ndarray, face_index: int, role: str) -> tuple[np.ndarray, np.ndarray]:
        """Box ``(4,)`` and keypoints ``(5, 2)`` (float32, image pixels) of face ``face_index`` in CLI order."""
        faces = self.detections(image)
        check_face_index(faces, face_index, role, self.options.detection_threshold)
        face = faces[face_index]
        return np.asarray(face.box, dtype=np.float32), np.asarray(face.keypoints, dtype=np.float32)

    def align(self, image: np.ndarray, box: np.ndarray, keypoints: np.ndarray) -> FaceInImage:
        """Aligned 256×256 crop and its image → crop matrix, with ``--align_mode``."""
        from utils.align import align_face

        aligner = self.cvlface_aligner if self.options.align_mode == "cvlface" else None
        with self._stage("align", aligner), torch.inference_mode():
            face, matrix = align_face(image, keypoints, self.options.align_mode, ALIGNED_FACE_SIZE,
                                      cvlface_aligner=aligner)
        return FaceInImage(image=image, box=box, keypoints=keypoints, face=face, matrix=matrix)

    def add_landmarks_batch(self, faces: list[FaceInImage]) -> None:
        """68-point FAN landmarks of each face (one network call), moved into its 256×256 crop frame."""
        from utils.align import transform_points

        points = self.stages.landmarks([face.image for face in faces], [face.box for face in faces])
        for face, landmarks in zip(faces, points):
            face.landmarks = transform_points(landmarks, face.matrix)

    def add_landmarks(self, face: FaceInImage) -> None:
        """:meth:`add_landmarks_batch` of one face."""
        self.add_landmarks_batch([face])

    def embed_batch(self, faces: list[np.ndarray]) -> torch.Tensor:
        """Identity embeddings ``[N, 512]`` (float32, on the device) of aligned 256×256 BGR faces, one batch."""
        return self.stages.embed(faces)

    def paste(
        self, face: np.ndarray, source: FaceInImage, target: FaceInImage, image: np.ndarray | None = None,
        ghost_settings: GhostMaskSettings | None = None, face_labels: np.ndarray | None = None,
        keep_mask: bool = True, face_masks: FaceMasks | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Put the S×S face (256, or the --pixel_boost size) back with ``--paste_back_mode``; (image, mask or None).

        ``image`` (default: the target's own picture) is what the face goes into, e.g. a frame where other
        faces were already pasted; ``ghost_settings`` fix the ghost mask settings (kept per track);
        ``face_labels`` are the face's BiSeNet classes when the parser stage already ran on it. Without
        ``keep_mask`` (video and live frames) no full-frame mask is made, and on CUDA the warps and the blend
        run on the device (utils.device_paste). ``face_masks``: the face options' masks, which multiply the
        mode's alpha (mode none blends the face with the target's crop through them).
        """
        from utils.device_paste import crop_alpha, paste_on_device, runs_on_device
        from utils.face_masks import blend_faces
        from utils.inference.pixel_boost import scaled_matrix
        from utils.paste_back import paste_back

        mode = self.options.paste_back_mode
        face_mask = None if face_masks is None else face_masks.face_mask
        if mode == "none":
            return (face if face_mask is None else blend_faces(face, face_masks.target_face, face_mask)), None
        into = target.image if image is None else image
        # A pixel-boosted face is the same alignment on a finer grid: its matrix and landmarks are scaled alike.
        size = face.shape[0]
        matrix = scaled_matrix(target.matrix, size)
        source_landmarks, target_landmarks = source.landmarks, target.landmarks
        if size != ALIGNED_FACE_SIZE:
            source_landmarks, target_landmarks = (None if points is None else points * (size / ALIGNED_FACE_SIZE)
                                                  for points in (source.landmarks, target.landmarks))
        if runs_on_device(self.device, mode, keep_mask):
            with self._stage("paste"), torch.inference_mode():
                labels = face_labels if face_labels is not None or mode != "facexlib_with_parser" else \
                    self._parse_one(face)
                alpha = crop_alpha(mode, size, source_landmarks, target_landmarks, labels, ghost_settings)
                if face_mask is not None:
                    alpha = alpha * face_mask
                return paste_on_device(into, face, alpha, matrix, self.device, mode == "ghost"), None
        parser = self._parse_one if self.options.uses_parser and face_labels is None else None
        with self._stage("paste"), torch.inference_mode():
            return paste_back(
                mode, into, face, matrix, source_landmarks=source_landmarks, target_landmarks=target_landmarks,
                face_parser=parser, ghost_settings=ghost_settings, face_mask=face_mask,
                face_labels=face_labels if self.options.uses_parser else None,
            )

    def _parse_one(self, face: np.ndarray) -> np.ndarray:
        return self.stages.parse([face])[0]

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """SDXL inpainting of a band around the pasted face's edge (uint8 BGR in and out, same size).

        The noise is seeded with ``--inpainting_seed``, else from the image and mask (the same inputs repaint
        alike). A mask with no inside pixel (degenerate landmarks or parse) has no edge: the image is returned.
        """
        from utils.inpainting import inpaint_face_edges

        if not np.any(mask == 255):
            logger.warning("the %s paste-back returned an empty face mask; edge inpainting skipped",
                           self.options.paste_back_mode)
            return image
        pipeline = self.inpainter
        with self._stage("inpaint", pipeline):
            seed = self.options.inpainting_seed
            if seed is None:
                seed = zlib.crc32(mask.tobytes(), zlib.crc32(image.tobytes()))
            generator = torch.Generator("cpu").manual_seed(seed)
            return inpaint_face_edges(pipeline, image, mask, generator=generator).image

    # ------------------------------------------------------------------------------------------------ whole swaps

    def prepare_face(self, image: np.ndarray, face_index: int, role: str) -> FaceInImage:
        """Detect, pick, align (and landmark, for ghost) one face of a photo."""
        box, keypoints = self.detect(image, face_index, role)
        face = self.align(image, box, keypoints)
        if self.options.uses_landmarks:
            self.add_landmarks(face)
        return face

    def prepare_source(self, image: np.ndarray, role: str = "source") -> SourceFace:
        """The ``--source_face_index`` face of a photo, aligned, with its identity embedding ``[1, 512]``."""
        from utils.inference.pipeline import SourceFace

        face = self.prepare_face(image, self.options.source_face_index, role)
        return SourceFace(face, self.embed_batch([face.face]))

    def swap_photo(self, sources: list[SourceFace], target_image: np.ndarray, selection: FaceSelection,
                   references: np.ndarray | None = None):  # noqa: ANN201 - a pipeline FrameResult
        """The frame pipeline on one photo (a stream of one frame): detection at the photo size, errors for a
        missing face, edge inpainting after the modes with a mask. The NSFW checks are the caller's."""
        from utils.inference.pipeline import Frame, FramePipeline

        finish = self.inpaint if self.options.uses_inpainting else None
        pipeline = FramePipeline(self, sources, selection, references, photo=True, finish=finish)
        return pipeline.push([Frame(target_image)])[0]

    def swap_images(self, source_image: np.ndarray, target_image: np.ndarray) -> SwapResult:
        """Swap the chosen source face onto the chosen target face; both images H×W×3 uint8 BGR.

        Raises NSFWContentError, NoFaceFoundError or FaceIndexError with a message for the user.
        """
        self.timings = {}
        return self._swap(source_image, target_image)

    def _swap(self, source_image: np.ndarray, target_image: np.ndarray) -> SwapResult:
        """The stages of :meth:`swap_images`, adding to ``self.timings`` without resetting it."""
        self.check_nsfw(target_image, "target image")
        source = self.prepare_source(source_image)
        selection = FaceSelection(target_face_indices=(self.options.target_face_index,))
        result = self.swap_photo([source], target_image, selection)
        face = result.faces[0]
        if self.options.check_output_nsfw:
            self.check_nsfw(result.image, "swapped output")
        return SwapResult(result.image, source.face, face.target, face.swapped_face, face.enhanced_face, face.mask,
                          dict(self.timings))

    def swap_files(self, source_path: str | Path, target_path: str | Path, output_path: str | Path) -> SwapResult:
        """Read both images, swap, and write the output (and the --debug faces); inputs are never overwritten."""
        source_path, target_path, output_path = Path(source_path), Path(target_path), Path(output_path)
        inputs = (source_path, target_path)
        for path in inputs:
            if output_path.exists() and output_path.resolve() == path.resolve():
                raise GhostError(f"the output path {output_path} is an input file; choose another output path")
        self.timings = {}
        with self._stage("read"):
            source_image = read_image(source_path)
            target_image = read_image(target_path)
        result = self._swap(source_image, target_image)
        with self._stage("write"):
            write_image(output_path, result.image, protect=inputs)
            if self.options.debug:
                self.write_debug_faces(result, protect=inputs)
        result.timings = dict(self.timings)
        logger.info("wrote %s", output_path)
        return result

    def write_debug_faces(self, result: SwapResult, protect: tuple[Path, ...] = ()) -> None:
        """The aligned source/target faces (with landmark indices if asked), raw and enhanced swapped faces."""
        options = self.options
        faces = {
            options.debug_source_face_path: self._debug_face(result.source),
            options.debug_target_face_path: self._debug_face(result.target),
            options.debug_swapped_face_path: result.swapped_face,
            options.debug_enhanced_face_path: result.enhanced_face,
        }
        for path, face in faces.items():
            if path is not None and face is not None:
                write_image(path, face, protect=protect)
                logger.info("debug: wrote %s", path)

    def _debug_face(self, face: FaceInImage) -> np.ndarray:
        if not (self.options.debug_ghost_landmarks and face.landmarks is not None):
            return face.face
        return draw_landmark_indices(face.face, face.landmarks)


def draw_landmark_indices(face: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A copy of a BGR face with each landmark drawn as a dot and its index (to check the ghost mask's points)."""
    canvas = face.copy()
    for index, (x, y) in enumerate(np.asarray(landmarks, dtype=np.float64)):
        point = (int(round(x)), int(round(y)))
        cv2.circle(canvas, point, 1, (0, 255, 0), -1)
        cv2.putText(canvas, str(index), (point[0] + 2, point[1] - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.25, (0, 0, 255), 1)
    return canvas
