"""The face-swap pipeline of inference.py and demo.py: one object that loads each model once, lazily.

Stages of one swap (SPEC §2, geometry README §4): read → NSFW check of the target → detect → align →
(68-point landmarks for the ghost paste-back) → source identity embedding → generator → (GFPGAN) →
paste back → (SDXL edge inpainting) → NSFW check of the output → write. Each stage's wall time is kept
in ``FaceSwapper.timings`` for the benchmark.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch

from utils.checkpoint import release_weight_pages
from utils.device import autocast, resolve_device, use_fp16
from utils.errors import GhostError
from utils.image import bgr_to_tensor, detection_problem, read_image, tensor_to_bgr_uint8, write_image
from utils.inference.model_cache import ModelCache
from utils.inference.options import (
    ALIGNED_FACE_SIZE,
    EMBEDDING_PATH_FIELDS,
    GFPGAN_FACE_SIZE,
    SwapOptions,
)
from utils.inference.selection import check_face_index

if TYPE_CHECKING:
    from models.fan_landmarks import LandmarkDetector
    from models.nsfw import NSFWFilter
    from models.retinaface import FaceDetector
    from utils.paste_back import GhostMaskSettings

logger = logging.getLogger(__name__)


@dataclass
class FaceInImage:
    """One face picked in an image: its detection and its aligned crop."""

    image: np.ndarray  # H×W×3 uint8 BGR, the whole picture
    box: np.ndarray  # (4,) float32 x1, y1, x2, y2 in image pixels
    keypoints: np.ndarray  # (5, 2) float32 in image pixels
    face: np.ndarray  # 256×256×3 uint8 BGR aligned crop
    matrix: np.ndarray  # 2×3 float64, image → crop
    landmarks: np.ndarray | None = None  # (68, 2) float32 in crop pixels (ghost paste-back only)


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


class FaceSwapper:
    """Swap the face of a source image into a target image; models load on first use, once.

    ``FaceSwapper(options).swap_files(source, target, output)`` is what inference.py does;
    ``swap_images`` works on arrays; ``with_options(...)`` gives a swapper with other settings that
    reuses the models already loaded.
    """

    def __init__(self, options: SwapOptions | None = None, models: ModelCache | None = None) -> None:
        self.options = options or SwapOptions()
        self.device = resolve_device(self.options.device)
        self.fp16 = use_fp16(self.device, self.options.fp16_requested)
        self.models = models or ModelCache()
        self.timings: dict[str, float] = {}
        self._release_weights = self.options.release_weights  # off inside weights_resident()

    def with_options(self, **changes: Any) -> FaceSwapper:
        """A swapper with some options changed, sharing this one's loaded models."""
        return FaceSwapper(replace(self.options, **changes), self.models)

    # ------------------------------------------------------------------------------------------------ timing

    @contextmanager
    def _stage(self, name: str, model: Any = None) -> Iterator[None]:
        """Time a stage; then, with --release_weights, hand back the memory of ``model``'s mapped weights."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if model is not None and self._release_weights:
                release_weights_of([model])
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    @contextmanager
    def weights_resident(self) -> Iterator[None]:
        """Keep every model's weights in memory inside this block, whatever --release_weights says.

        For videos, which run each model on every frame: mapping the weights back per frame made CPU frames
        10-20 % slower (bench/video.py: 8 720p frames in 39.7-42.3 s against 34.1-37.1 s). With
        --release_weights the loaded models' pages are handed back at the end of the block.
        """
        released, self._release_weights = self._release_weights, False
        try:
            yield
        finally:
            self._release_weights = released
            if released:
                release_weights_of(self.models.models())

    def _load(self, key: tuple, load: Callable[[], Any]) -> Any:
        if key in self.models:
            return self.models.get(key, load)
        logger.debug("loading %s", key[0])
        with self._stage("load"):
            return self.models.get(key, load)

    def _registered(self, name: str, path: str | None, **settings: Any) -> torch.nn.Module:
        """The registry's checkpoint ``name`` (from ``path``, else the weights folder) built with ``settings``."""
        weights_dir = self.options.weights_dir

        def load():
            from models.registry import load_model

            return load_model(name, device=self.device, path=path, weights_dir=weights_dir, **settings)

        return self._load((name, path, weights_dir, tuple(settings.items())), load)

    # ------------------------------------------------------------------------------------------------ models

    @property
    def detector(self) -> FaceDetector:
        """RetinaFace (``models.retinaface.FaceDetector``) with ``--detection_threshold``."""
        options = self.options

        def load():
            from models.retinaface import load_face_detector

            return load_face_detector(
                device=self.device, path=options.retina_face_model_path, weights_dir=options.weights_dir,
                threshold=options.detection_threshold, max_size=options.detection_max_size,
                upscale=options.detection_upscale,
            )

        return self._load(("retinaface", options.retina_face_model_path, options.weights_dir,
                           options.detection_threshold, options.detection_max_size, options.detection_upscale), load)

    @property
    def landmark_detector(self) -> LandmarkDetector:
        """The 68-point FAN (``models.fan_landmarks.LandmarkDetector``), for the ghost paste-back."""
        options = self.options

        def load():
            from models.fan_landmarks import load_landmark_detector

            return load_landmark_detector(
                device=self.device, path=options.face_alignment_model_path, weights_dir=options.weights_dir
            )

        return self._load(("face_alignment", options.face_alignment_model_path, options.weights_dir), load)

    @property
    def embedder(self) -> torch.nn.Module:
        """The ``--face_embeddings`` model (``models.embeddings.FaceEmbedder``)."""
        options = self.options
        path = getattr(options, EMBEDDING_PATH_FIELDS[options.face_embeddings])

        def load():
            from models.embeddings import load_face_embedder

            return load_face_embedder(options.face_embeddings, device=self.device, path=path,
                                      weights_dir=options.weights_dir)

        return self._load((options.face_embeddings, path, options.weights_dir), load)

    @property
    def generator(self) -> torch.nn.Module:
        """The AEI-Net generator from ``--G_path`` with ``--backbone/--num_blocks/--align_corners``."""
        options = self.options
        return self._registered("ghostv2_generator", options.G_path, backbone=options.backbone,
                                num_blocks=options.num_blocks, align_corners=options.align_corners)

    @property
    def gfpgan(self) -> torch.nn.Module:
        """GFPGAN v1.4 (``--enhance_output``)."""
        options = self.options

        def load():
            from models.gfpgan import load_gfpgan

            return load_gfpgan("v1.4", device=self.device, path=options.gfpgan_model_path,
                               weights_dir=options.weights_dir)

        return self._load(("gfpgan_v1_4", options.gfpgan_model_path, options.weights_dir), load)

    @property
    def face_parser(self) -> Callable[[np.ndarray], np.ndarray]:
        """BiSeNet as a callable: ``512×512×3 uint8 BGR`` face → ``512×512`` class labels."""
        options = self.options

        def load():
            from models.bisenet import load_bisenet, parse_face

            model = load_bisenet(device=self.device, path=options.face_parser_model_path,
                                 weights_dir=options.weights_dir)
            return functools.partial(parse_face, model=model)

        return self._load(("bisenet", options.face_parser_model_path, options.weights_dir), load)

    @property
    def cvlface_aligner(self) -> torch.nn.Module:
        """The CVLFace DFA network of the ``cvlface`` align mode."""
        return self._registered("cvlface_aligner", self.options.cvlface_aligner_model_path)

    @property
    def nsfw_filter(self) -> NSFWFilter:
        """The NSFW classifier (``models.nsfw.NSFWFilter``) from ``--nsfw_model`` (a Hub id or a folder)."""
        from models.registry import HUB_MODELS

        model = self.options.nsfw_model or HUB_MODELS["nsfw"].model_id

        def load():
            from models.nsfw import NSFWFilter

            return NSFWFilter.from_pretrained(model, self.device)

        return self._load(("nsfw", model), load)

    @property
    def inpainter(self) -> Any:
        """The SDXL inpainting pipeline from ``--inpainting_model`` (a Hub id or a folder)."""
        from models.registry import HUB_MODELS

        model = self.options.inpainting_model or HUB_MODELS["sdxl_inpainting"].model_id

        def load():
            from utils.inpainting import load_inpainting_pipeline

            return load_inpainting_pipeline(model, device=self.device, fp16=self.fp16)

        return self._load(("sdxl_inpainting", model), load)

    def load_models(self) -> None:
        """Load now every model the options need (otherwise each loads at its first use)."""
        _ = self.nsfw_filter, self.detector, self.embedder, self.generator
        if self.options.align_mode == "cvlface":
            _ = self.cvlface_aligner
        if self.options.uses_landmarks:
            _ = self.landmark_detector
        if self.options.enhance_output:
            _ = self.gfpgan
        if self.options.uses_parser:
            _ = self.face_parser
        if self.options.uses_inpainting:
            _ = self.inpainter

    # ------------------------------------------------------------------------------------------------ stages

    def check_nsfw(self, image: np.ndarray, what: str) -> None:
        """Raise NSFWContentError when the classifier calls ``image`` (H×W×3 uint8 BGR) NSFW."""
        nsfw_filter = self.nsfw_filter
        with self._stage("nsfw", nsfw_filter):
            nsfw_filter.check(image, what)

    def detections(self, image: np.ndarray) -> list:
        """Every face RetinaFace finds in ``image`` (H×W×3 uint8 BGR), in CLI order (left to right).

        Cached per image content, so a picture used again (demo grids, a source swapped into a folder of
        targets, the web UI re-running a target with other settings) is detected once. Video frames go
        through :meth:`detect_frames`, which never hashes.
        """
        detector = self.detector
        options = self.options
        key = (hashlib.sha1(image.tobytes()).hexdigest(), image.shape, options.detection_threshold,
               options.detection_max_size, options.detection_upscale, options.retina_face_model_path,
               options.weights_dir)
        with self._stage("detect", detector):
            return self.models.detections(key, lambda: detector.detect(image))

    def detect_frames(self, images: list[np.ndarray]) -> list[list]:
        """The faces of several H×W×3 uint8 BGR video frames (one batch per frame size), never cached.

        Detections that cannot be faces of their frame (utils.image.detection_problem: an absurd box or keypoints)
        are dropped, so one bad detection leaves its frame unchanged instead of stopping the video.
        """
        detector = self.detector
        with self._stage("detect", detector), torch.inference_mode():
            found = detector.detect_batch(images)
        return [[face for face in faces if detection_problem(face, image.shape) is None]
                for image, faces in zip(images, found)]

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

    def add_landmarks(self, face: FaceInImage) -> None:
        """68-point FAN landmarks of the face, moved into its 256×256 crop frame (ghost paste-back)."""
        from utils.align import transform_points

        landmark_detector = self.landmark_detector
        with self._stage("landmarks", landmark_detector), torch.inference_mode():
            landmarks = landmark_detector.get_landmarks(face.image, face.box)
            face.landmarks = transform_points(landmarks, face.matrix)

    def embed(self, source_face: np.ndarray) -> torch.Tensor:
        """Identity embedding ``[1, 512]`` of an aligned 256×256 BGR face with ``--face_embeddings``."""
        embedder = self.embedder
        with self._stage("embed", embedder), torch.inference_mode(), autocast(self.device, self.fp16):
            return embedder(bgr_to_tensor(source_face).to(self.device)).float()

    def embed_batch(self, faces: list[np.ndarray]) -> torch.Tensor:
        """Identity embeddings ``[N, 512]`` (float32, on the device) of aligned 256×256 BGR faces, one batch."""
        embedder = self.embedder
        with self._stage("embed", embedder), torch.inference_mode(), autocast(self.device, self.fp16):
            return embedder(self._to_device(faces)).float()

    def _to_device(self, faces: list[np.ndarray]) -> torch.Tensor:
        """``N×3×S×S`` float32 RGB in [-1, 1] on the device (through pinned memory on CUDA, without blocking)."""
        batch = torch.cat([bgr_to_tensor(face) for face in faces])
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    def generate_batch(self, target_faces: list[np.ndarray], identities: torch.Tensor) -> list[np.ndarray]:
        """The generator on a batch: aligned faces and their ``[N, 512]`` identities → N 256×256×3 uint8 BGR."""
        generator = self.generator
        with self._stage("generate", generator), torch.inference_mode(), autocast(self.device, self.fp16):
            swapped, _ = generator(self._to_device(target_faces), identities.to(self.device))
            swapped = swapped.float()
        return [tensor_to_bgr_uint8(face[None]) for face in swapped]

    def enhance_batch(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        """GFPGAN v1.4 at 512×512 on 256×256×3 uint8 BGR faces in one network call, resized back to 256×256.

        The released code draws fresh noise at each call; ours is seeded from the faces, so the same inputs give
        the same file (the global random state is left untouched).
        """
        from models.gfpgan import enhance_faces, seeded_noise

        gfpgan = self.gfpgan
        seed = 0
        for face in faces:
            seed = zlib.crc32(face.tobytes(), seed)
        with self._stage("enhance", gfpgan), torch.inference_mode(), seeded_noise(seed, self.device):
            upscaled = [cv2.resize(face, (GFPGAN_FACE_SIZE, GFPGAN_FACE_SIZE), interpolation=cv2.INTER_LINEAR)
                        for face in faces]
            return [cv2.resize(face, (ALIGNED_FACE_SIZE, ALIGNED_FACE_SIZE), interpolation=cv2.INTER_LINEAR)
                    for face in enhance_faces(upscaled, gfpgan)]

    def generate(self, target_face: np.ndarray, identity: torch.Tensor) -> np.ndarray:
        """The generator's swapped face, 256×256×3 uint8 BGR (truncated, as the original converts it)."""
        return self.generate_batch([target_face], identity)[0]

    def enhance(self, face: np.ndarray) -> np.ndarray:
        """:meth:`enhance_batch` on one 256×256×3 uint8 BGR face."""
        return self.enhance_batch([face])[0]

    def paste(
        self, face: np.ndarray, source: FaceInImage, target: FaceInImage, image: np.ndarray | None = None,
        ghost_settings: GhostMaskSettings | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Put the 256×256 face back with ``--paste_back_mode``; (image, mask or None).

        ``image`` (default: the target's own picture) is what the face goes into, e.g. a frame where other
        faces were already pasted; ``ghost_settings`` fixes the ghost mask settings (kept per video track).
        """
        from utils.paste_back import paste_back

        mode = self.options.paste_back_mode
        if mode == "none":
            return face, None
        parser = self.face_parser if self.options.uses_parser else None
        with self._stage("paste", parser), torch.inference_mode():
            return paste_back(
                mode, target.image if image is None else image, face, target.matrix,
                source_landmarks=source.landmarks, target_landmarks=target.landmarks, face_parser=parser,
                ghost_settings=ghost_settings,
            )

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """SDXL inpainting of a band around the pasted face's edge (uint8 BGR in and out, same size).

        The noise is seeded with ``--inpainting_seed``, else from the image and mask (the same inputs repaint alike).
        """
        from utils.inpainting import inpaint_face_edges

        pipeline = self.inpainter
        with self._stage("inpaint", pipeline):
            seed = self.options.inpainting_seed
            if seed is None:
                seed = zlib.crc32(mask.tobytes(), zlib.crc32(image.tobytes()))
            generator = torch.Generator("cpu").manual_seed(seed)
            return inpaint_face_edges(pipeline, image, mask, generator=generator).image

    # ------------------------------------------------------------------------------------------------ whole swaps

    def prepare_face(self, image: np.ndarray, face_index: int, role: str) -> FaceInImage:
        """Detect, pick, align (and landmark, for ghost) one face of an image."""
        box, keypoints = self.detect(image, face_index, role)
        face = self.align(image, box, keypoints)
        if self.options.uses_landmarks:
            self.add_landmarks(face)
        return face

    def swap_images(self, source_image: np.ndarray, target_image: np.ndarray) -> SwapResult:
        """Swap the chosen source face onto the chosen target face; both images H×W×3 uint8 BGR.

        Raises NSFWContentError, NoFaceFoundError or FaceIndexError with a message for the user.
        """
        self.timings = {}
        return self._swap(source_image, target_image)

    def _swap(self, source_image: np.ndarray, target_image: np.ndarray) -> SwapResult:
        """The stages of :meth:`swap_images`, adding to ``self.timings`` without resetting it."""
        self.check_nsfw(target_image, "target image")
        source = self.prepare_face(source_image, self.options.source_face_index, "source")
        target = self.prepare_face(target_image, self.options.target_face_index, "target")
        identity = self.embed(source.face)
        swapped_face = self.generate(target.face, identity)
        enhanced_face = self.enhance(swapped_face) if self.options.enhance_output else None
        image, mask = self.paste(swapped_face if enhanced_face is None else enhanced_face, source, target)
        if self.options.inpaint_output and mask is not None:
            if np.any(mask == 255):
                image = self.inpaint(image, mask)
            else:
                # A face mask with no inside pixel has no edge to repaint (degenerate landmarks or parse).
                logger.warning("the %s paste-back returned an empty face mask; edge inpainting skipped",
                               self.options.paste_back_mode)
        if self.options.check_output_nsfw:
            self.check_nsfw(image, "swapped output")
        return SwapResult(image, source, target, swapped_face, enhanced_face, mask, dict(self.timings))

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


def networks_of(model: Any) -> list[torch.nn.Module]:
    """The torch networks inside a loaded model: the module itself, a wrapper's ``.model`` (detectors, NSFW
    filter), a partial's module arguments (the face parser) or a diffusers pipeline's components."""
    if isinstance(model, torch.nn.Module):
        return [model]
    if isinstance(model, functools.partial):
        candidates = list(model.keywords.values())
    elif hasattr(model, "components"):
        candidates = list(model.components.values())
    else:
        candidates = [getattr(model, "model", None)]
    return [candidate for candidate in candidates if isinstance(candidate, torch.nn.Module)]


def release_weights_of(models: Iterable[Any]) -> None:
    """Hand back the memory-mapped weight pages of every network inside ``models`` (utils.checkpoint)."""
    for model in models:
        for network in networks_of(model):
            release_weight_pages(network)


def draw_landmark_indices(face: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A copy of a BGR face with each landmark drawn as a dot and its index (to check the ghost mask's points)."""
    canvas = face.copy()
    for index, (x, y) in enumerate(np.asarray(landmarks, dtype=np.float64)):
        point = (int(round(x)), int(round(y)))
        cv2.circle(canvas, point, 1, (0, 255, 0), -1)
        cv2.putText(canvas, str(index), (point[0] + 2, point[1] - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.25, (0, 0, 255), 1)
    return canvas
