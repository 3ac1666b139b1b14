"""Stand-ins with known outputs for the many-face and video tests (stand-in weights give meaningless faces).

* ``PatchDetector``: a "face" is a blob that differs from the clips' grey background; its box is the blob's
  bounding box and its 5 keypoints sit at fixed places in the box (optionally with seeded jitter).
* ``ColourEmbedder``: the identity of an aligned face is the direction of its mean colour (so a red face and
  a red reference photo match, a green face does not).
* ``ColourGenerator``: the swapped face is a flat square of the identity's colour, so the output shows which
  source replaced which face.
``use_fakes`` puts them in place of FaceSwapper's models for every swapper of a test (inference.main too).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from models.retinaface import DetectedFace, sort_faces
from tests.video_clips import BACKGROUND
from utils.errors import NSFWContentError
from utils.inference.swap import FaceSwapper

# Keypoints as fractions of the box: left eye, right eye, nose, left and right mouth corners.
KEYPOINT_LAYOUT = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], dtype=np.float32)
MIN_BLOB_AREA = 40


def patch_boxes(image: np.ndarray) -> list[np.ndarray]:
    """``(4,)`` float32 boxes of the blobs that differ from the grey background (codec noise tolerated)."""
    differs = (np.abs(image.astype(np.int16) - BACKGROUND).max(axis=2) > 40).astype(np.uint8)
    differs = cv2.morphologyEx(differs, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(differs)
    return [np.array([x, y, x + w, y + h], dtype=np.float32)
            for x, y, w, h, area in stats[1:count] if area >= MIN_BLOB_AREA]


class PatchDetector:
    """Stands in for ``FaceDetector``: ``detect``/``detect_batch`` of H×W×3 uint8 BGR images, CLI order.

    ``jitter`` adds seeded Gaussian noise (pixels) to the keypoints, in call order, like a detector's.
    """

    def __init__(self, jitter: float = 0.0, seed: int = 0) -> None:
        self.jitter = jitter
        self.random = np.random.default_rng(seed)
        self.images_seen = 0

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        results = []
        for image in images:
            self.images_seen += 1
            faces = []
            for box in patch_boxes(image):
                size = box[2:] - box[:2]
                keypoints = box[:2] + KEYPOINT_LAYOUT * size
                if self.jitter:
                    keypoints = keypoints + self.random.normal(0, self.jitter, keypoints.shape).astype(np.float32)
                faces.append(DetectedFace(box, keypoints.astype(np.float32), 0.99))
            results.append(sort_faces(faces))
        return results


def colour_direction(images: torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` RGB in [-1, 1] → ``[N, 3]`` unit vectors of the mean colour minus its grey level."""
    mean = images.float().mean(dim=(2, 3))
    centred = mean - mean.mean(dim=1, keepdim=True)
    return torch.nn.functional.normalize(centred, dim=1, eps=1e-6)


class ColourEmbedder(nn.Module):
    """Stands in for ``FaceEmbedder``: ``[N, 3, H, W]`` → ``[N, 512]``, the colour direction then zeros."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        embedding = torch.zeros(images.shape[0], 512)
        embedding[:, :3] = colour_direction(images)
        return embedding


class ColourGenerator(nn.Module):
    """Stands in for AEI-Net: the swapped face is a flat square of the identity's first 3 values as RGB."""

    def forward(self, target: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        colour = identity[:, :3].clamp(-1, 1).to(target.dtype)
        return colour[:, :, None, None].expand(-1, -1, *target.shape[2:]).contiguous(), ()


def expected_colour_bgr(source_patch: np.ndarray) -> np.ndarray:
    """The BGR colour ColourGenerator paints for a source that is ``source_patch`` on the grey background."""
    rgb = torch.from_numpy(source_patch[:, :, ::-1].astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    direction = colour_direction(rgb)[0].numpy()
    return np.clip((direction * 0.5 + 0.5) * 255, 0, 255)[::-1]


class NSFWStub:
    """Stands in for ``NSFWFilter``: flags the images whose description starts with one of ``flag``."""

    def __init__(self, flag: tuple[str, ...] = ()) -> None:
        self.flag = flag
        self.checked: list[str] = []

    def check(self, image: np.ndarray, what: str = "target image") -> None:
        self.checked.append(what)
        if any(what.startswith(prefix) for prefix in self.flag):
            raise NSFWContentError(f"the {what} was classified as NSFW; nothing was written")


def use_fakes(monkeypatch: pytest.MonkeyPatch, detector: PatchDetector | None = None,
              nsfw: NSFWStub | None = None) -> tuple[PatchDetector, NSFWStub]:
    """Every FaceSwapper of the test gets the patch detector, colour embedder/generator and an NSFW stub."""
    detector = detector or PatchDetector()
    nsfw = nsfw or NSFWStub()
    embedder, generator = ColourEmbedder(), ColourGenerator()
    monkeypatch.setattr(FaceSwapper, "detector", property(lambda self: detector))
    monkeypatch.setattr(FaceSwapper, "embedder", property(lambda self: embedder))
    monkeypatch.setattr(FaceSwapper, "generator", property(lambda self: generator))
    monkeypatch.setattr(FaceSwapper, "nsfw_filter", property(lambda self: nsfw))
    return detector, nsfw
