"""The model stages of the frame pipeline: one object per model, each with a batched call.

A stage takes a batch (images or aligned faces, ``H×W×3 uint8 BGR``) and returns one result per item. It draws
its model lazily from the swap's ``SwapModels`` (loaded once, shared through the ModelCache), runs it on the
swap's device and precision, and times itself under its name. Stages never reach into each other: what they
exchange are arrays and identity tensors, so a stage's model can be a torch module or any callable with the
same batched contract (the ONNX Runtime twins of utils.ort).
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch

from utils.device import autocast
from utils.image import bgr_to_tensor, detection_problem, tensor_to_bgr_uint8
from utils.inference.options import GFPGAN_FACE_SIZE

if TYPE_CHECKING:
    from models.retinaface import DetectedFace
    from utils.inference.model_set import SwapModels

# BiSeNet parses the swapped face at this size (utils.paste_back.PARSER_INPUT_SIZE).
PARSER_INPUT_SIZE = 512


@dataclass
class FaceInImage:
    """One face picked in an image: its detection and its aligned crop."""

    image: np.ndarray  # H×W×3 uint8 BGR, the whole picture
    box: np.ndarray  # (4,) float32 x1, y1, x2, y2 in image pixels
    keypoints: np.ndarray  # (5, 2) float32 in image pixels
    face: np.ndarray  # 256×256×3 uint8 BGR aligned crop
    matrix: np.ndarray  # 2×3 float64, image → crop
    landmarks: np.ndarray | None = None  # (68, 2) float32 in crop pixels (ghost paste-back only)


class Stage:
    """Base of the model stages: the model comes from ``models.<attribute>`` at first use."""

    name = ""
    attribute = ""

    def __init__(self, models: SwapModels) -> None:
        self.models = models

    @property
    def model(self) -> Any:
        """The stage's model, loaded on first use (once per ModelCache)."""
        return getattr(self.models, self.attribute)

    @property
    def device(self) -> torch.device:
        return self.models.device

    @property
    def fp16(self) -> bool:
        return self.models.fp16

    def _timed(self, model: Any):  # noqa: ANN202 - a context manager
        return self.models._stage(self.name, model)


class NsfwStage(Stage):
    """The NSFW classifier: raises NSFWContentError naming the first flagged image."""

    name, attribute = "nsfw", "nsfw_filter"

    def __call__(self, images: Sequence[np.ndarray], descriptions: Sequence[str]) -> None:
        nsfw_filter = self.model
        with self._timed(nsfw_filter):
            for image, what in zip(images, descriptions):
                nsfw_filter.check(image, what)


class DetectStage(Stage):
    """RetinaFace: the faces of each image in CLI order (left to right).

    ``photos`` keep the options' detection size (the original's 1280 px, small photos scaled up) and are cached
    per content, since a picture used again (demo grids, a folder of targets, the web UI) need not be detected
    twice. ``frames`` are never cached, run as one batch per frame size, are not scaled up unless asked, and
    drop detections that cannot be faces of their frame (utils.image.detection_problem).
    """

    name, attribute = "detect", "detector"

    def photo(self, image: np.ndarray) -> list[DetectedFace]:
        detector = self.model
        options = self.models.options
        key = (hashlib.sha1(image.tobytes()).hexdigest(), image.shape, options.detection_threshold,
               options.detection_max_size, options.detection_upscale, options.retina_face_model_path,
               options.weights_dir)
        with self._timed(detector):
            return self.models.models.detections(key, lambda: detector.detect(image))

    def frames(self, images: Sequence[np.ndarray], upscale: bool) -> list[list[DetectedFace]]:
        detector = self.model
        if not upscale and hasattr(detector, "with_sizing"):
            detector = detector.with_sizing(self.models.options.detection_max_size, upscale=False)
        with self._timed(detector), torch.inference_mode():
            found = detector.detect_batch(list(images))
        return [[face for face in faces if detection_problem(face, image.shape) is None]
                for image, faces in zip(images, found)]


class LandmarkStage(Stage):
    """The 68-point FAN on detector boxes, one network call for the batch; points in image pixels."""

    name, attribute = "landmarks", "landmark_detector"

    def __call__(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
        detector = self.model
        with self._timed(detector), torch.inference_mode():
            return detector.get_landmarks_batch(list(images), list(boxes))


class EmbedStage(Stage):
    """The ``--face_embeddings`` model: aligned 256×256 faces → ``[N, 512]`` float32 identities on the device."""

    name, attribute = "embed", "embedder"

    def __call__(self, faces: Sequence[np.ndarray]) -> torch.Tensor:
        embedder = self.model
        with self._timed(embedder), torch.inference_mode(), autocast(self.device, self.fp16):
            return embedder(faces_to_device(faces, self.device)).float()


class GenerateStage(Stage):
    """The AEI-Net generator: aligned target faces and their ``[N, 512]`` identities → swapped faces.

    The faces come back to the host in one transfer, as ``256×256×3 uint8 BGR`` (truncated, as the original).
    """

    name, attribute = "generate", "generator"

    def __call__(self, target_faces: Sequence[np.ndarray], identities: torch.Tensor) -> list[np.ndarray]:
        if not target_faces:
            return []
        generator = self.model
        with self._timed(generator), torch.inference_mode(), autocast(self.device, self.fp16):
            swapped, _ = generator(faces_to_device(target_faces, self.device), identities.to(self.device))
            swapped = swapped.float().cpu()
        return [tensor_to_bgr_uint8(face[None]) for face in swapped]


class EnhanceStage(Stage):
    """GFPGAN v1.4 at 512×512 on S×S faces (256, or the --pixel_boost size), one network call, resized back to S×S.

    The released code draws fresh noise at each call; ours is seeded from the faces, so the same inputs give the
    same file (the global random state is left untouched).
    """

    name, attribute = "enhance", "gfpgan"

    def __call__(self, faces: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not faces:
            return []
        from models.gfpgan import enhance_faces, seeded_noise

        gfpgan = self.model
        seed = 0
        for face in faces:
            seed = zlib.crc32(face.tobytes(), seed)
        with (self._timed(gfpgan), torch.inference_mode(), seeded_noise(seed, self.device),
              autocast(self.device, self.fp16)):
            upscaled = [cv2.resize(face, (GFPGAN_FACE_SIZE, GFPGAN_FACE_SIZE), interpolation=cv2.INTER_LINEAR)
                        for face in faces]
            return [cv2.resize(enhanced, face.shape[1::-1], interpolation=cv2.INTER_LINEAR)
                    for face, enhanced in zip(faces, enhance_faces(upscaled, gfpgan))]


class ParseStage(Stage):
    """BiSeNet face parsing: ``S×S×3 uint8 BGR`` faces → ``512×512`` uint8 class maps, one network call."""

    name, attribute = "parse", "face_parser"

    def __call__(self, faces: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not faces:
            return []
        parser = self.model
        inputs = [cv2.resize(face, (PARSER_INPUT_SIZE, PARSER_INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
                  for face in faces]
        with self._timed(parser), torch.inference_mode():
            return parser(inputs)


def faces_to_device(faces: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """``N×3×S×S`` float32 RGB in [-1, 1] on ``device`` (through pinned memory on CUDA, without blocking)."""
    batch = torch.cat([bgr_to_tensor(face) for face in faces])
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


@dataclass
class Stages:
    """The model stages of one swapper (cheap: the models themselves live in its ModelCache)."""

    nsfw: NsfwStage
    detect: DetectStage
    landmarks: LandmarkStage
    embed: EmbedStage
    generate: GenerateStage
    enhance: EnhanceStage
    parse: ParseStage

    @classmethod
    def of(cls, models: SwapModels) -> Stages:
        return cls(NsfwStage(models), DetectStage(models), LandmarkStage(models), EmbedStage(models),
                   GenerateStage(models), EnhanceStage(models), ParseStage(models))
