"""RetinaFace-ResNet50 face detector: network, priors, decoding, NMS and the detector API.

The network follows biubug6/Pytorch_Retinaface (ResNet-50 body, FPN, SSH, three heads with two
anchors per cell); the detection call reproduces the batch-face pipeline GhostV2 inherited (see the
conformance kit's faces/README.md §1): with a ``max_size`` the image is resized so that its long side
equals it (small images are upscaled too, unless ``upscale`` is off), it is fed as RGB minus
(104, 117, 123), and boxes/keypoints are mapped back to original-image pixels by dividing by the
resize factor.

Detection sizes of the original project (faces/README.md §1.3), which each caller sets where it builds
its detector: inference 1280 with upscaling; preprocessing, align.py, embedding_distance.py and the
demo's re-detection of its grid cells no ``max_size`` (the image as it is).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50

from models.priors import decode_boxes, decode_landmarks
from models.priors import prior_boxes as anchor_boxes
from models.registry import load_model
from utils.checkpoint import StateDict, strip_prefix
from utils.device import autocast

logger = logging.getLogger(__name__)

# Values of the reference config (cfg_re50) and of the batch-face post-processing.
MIN_SIZES: tuple[tuple[int, int], ...] = ((16, 32), (64, 128), (256, 512))
STEPS: tuple[int, ...] = (8, 16, 32)
# Subtracted from the R, G, B channels: the original was trained on BGR minus (104, 117, 123), but the
# pipeline we reproduce feeds RGB, and the released results were made that way.
CHANNEL_MEANS: tuple[float, float, float] = (104.0, 117.0, 123.0)
NMS_IOU = 0.4
PRE_NMS_TOP_K = 5000
POST_NMS_KEEP = 750
ANCHORS_PER_CELL = 2
DEFAULT_THRESHOLD = 0.97
DEFAULT_MAX_SIZE = 1280

NetworkOutput = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Conv (no bias) + BatchNorm, keys ``.0`` and ``.1`` as in the release."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class FeaturePyramid(nn.Module):
    """Top-down FPN over the stride 8/16/32 body outputs, 256 channels each."""

    def __init__(self, in_channels: Sequence[int] = (512, 1024, 2048), channels: int = 256) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], channels, 1)
        self.output2 = _conv_bn(in_channels[1], channels, 1)
        self.output3 = _conv_bn(in_channels[2], channels, 1)
        self.merge1 = _conv_bn(channels, channels, 3)
        self.merge2 = _conv_bn(channels, channels, 3)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        # The reference's leaky ReLU has slope 0 here (256 channels > 64), i.e. a plain ReLU.
        level1 = F.relu(self.output1(features[0]))
        level2 = F.relu(self.output2(features[1]))
        level3 = F.relu(self.output3(features[2]))
        level2 = F.relu(self.merge2(level2 + F.interpolate(level3, size=level2.shape[2:], mode="nearest")))
        level1 = F.relu(self.merge1(level1 + F.interpolate(level2, size=level1.shape[2:], mode="nearest")))
        return [level1, level2, level3]


class ContextModule(nn.Module):
    """SSH context module: parallel 3x3, "5x5" and "7x7" (stacked 3x3) branches, concatenated."""

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(channels, channels // 2, 3)
        self.conv5X5_1 = _conv_bn(channels, channels // 4, 3)
        self.conv5X5_2 = _conv_bn(channels // 4, channels // 4, 3)
        self.conv7X7_2 = _conv_bn(channels // 4, channels // 4, 3)
        self.conv7x7_3 = _conv_bn(channels // 4, channels // 4, 3)  # lower-case x: the released key

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        branch3 = self.conv3X3(features)
        shared = F.relu(self.conv5X5_1(features))
        branch5 = self.conv5X5_2(shared)
        branch7 = self.conv7x7_3(F.relu(self.conv7X7_2(shared)))
        return F.relu(torch.cat([branch3, branch5, branch7], dim=1))


class _Head(nn.Module):
    """1x1 conv predicting ``values`` numbers per anchor, flattened to (B, H*W*anchors, values)."""

    def __init__(self, channels: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(channels, ANCHORS_PER_CELL * values, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        output = self.conv1x1(features).permute(0, 2, 3, 1).contiguous()
        return output.view(output.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """RetinaFace with a ResNet-50 body (the released ``Resnet50_Final`` layout).

    forward: x [B,3,H,W] float32 RGB minus (104,117,123) (0-255 scale) -> (loc [B,N,4], conf [B,N,2]
    soft-maxed probabilities (background, face), landms [B,N,10]), N = 2 * sum over strides 8/16/32 of
    ceil(H/s) * ceil(W/s), rows ordered (level, row, column, anchor).
    """

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        body = resnet50(weights=None)
        del body.fc, body.avgpool  # only layers up to layer4 are part of the release
        self.body = body
        self.fpn = FeaturePyramid((512, 1024, 2048), channels)
        self.ssh1 = ContextModule(channels)
        self.ssh2 = ContextModule(channels)
        self.ssh3 = ContextModule(channels)
        self.ClassHead = nn.ModuleList(_Head(channels, 2) for _ in STEPS)
        self.BboxHead = nn.ModuleList(_Head(channels, 4) for _ in STEPS)
        self.LandmarkHead = nn.ModuleList(_Head(channels, 10) for _ in STEPS)

    def body_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ResNet-50 outputs after layer2, layer3 and layer4 (strides 8, 16, 32)."""
        body = self.body
        x = body.maxpool(body.relu(body.bn1(body.conv1(x))))
        stride8 = body.layer2(body.layer1(x))
        stride16 = body.layer3(stride8)
        return [stride8, stride16, body.layer4(stride16)]

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        pyramid = self.fpn(self.body_features(x))
        features = [self.ssh1(pyramid[0]), self.ssh2(pyramid[1]), self.ssh3(pyramid[2])]
        loc = torch.cat([head(level) for head, level in zip(self.BboxHead, features)], dim=1)
        logits = torch.cat([head(level) for head, level in zip(self.ClassHead, features)], dim=1)
        landms = torch.cat([head(level) for head, level in zip(self.LandmarkHead, features)], dim=1)
        return loc, F.softmax(logits, dim=-1), landms


def convert_state_dict(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Map the released file's keys to ours: the DataParallel ``module.`` prefix may be present."""
    return strip_prefix(state_dict, "module.")


# ----------------------------------------------------------------------------------------------------
# Pre-processing, priors, decoding and NMS (pure functions, also used by the conformance checks)


def resize_factor(height: int, width: int, max_size: int | None, upscale: bool = True) -> float:
    """The reference's resize factor: ``max_size / long side`` whenever max_size is set (upscaling too).

    ``max_size`` None or -1: no resize. ``upscale`` False (our option) never enlarges: the factor is capped at 1.
    """
    if max_size is None or max_size == -1:
        return 1.0
    factor = max_size / max(height, width)
    return factor if upscale else min(factor, 1.0)


def preprocess(
    images: np.ndarray, max_size: int | None, bgr: bool = True, device: str | torch.device = "cpu",
    upscale: bool = True,
) -> tuple[torch.Tensor, float]:
    """Turn a batch of same-size images into the network input and the resize factor used.

    images: N x H x W x 3 uint8 (BGR when ``bgr``, else RGB) -> ([N,3,H',W'] float32 RGB minus the
    channel means, on ``device``; factor) with H' = int(H * factor), W' = int(W * factor).
    """
    batch = torch.from_numpy(np.ascontiguousarray(images)).to(device).float().permute(0, 3, 1, 2)
    height, width = batch.shape[2:]
    factor = resize_factor(height, width, max_size, upscale)
    if factor != 1:
        size = (int(height * factor), int(width * factor))
        batch = F.interpolate(batch, size=size, mode="bilinear", align_corners=False)
    if bgr:
        batch = batch.flip(1)
    means = torch.tensor(CHANNEL_MEANS, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
    return (batch - means).contiguous(), factor


def prior_boxes(height: int, width: int) -> torch.Tensor:
    """Anchor boxes [N, 4] float32 (cx, cy, w, h) of a ``height×width`` network input (cfg_re50 layout)."""
    return anchor_boxes(height, width, STEPS, MIN_SIZES)


def score_order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score as the reference sorts: numpy's default (unstable) argsort, reversed.

    Equal scores (confident faces saturate to exactly 1.0 in float32) come out in the order that sort
    leaves them in, which is not their input order; reproducing the call reproduces the reference's choice.
    """
    return np.asarray(scores, dtype=np.float32).argsort()[::-1]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU) -> list[int]:
    """Greedy NMS in float32 with the "+1 pixel" area convention, visiting boxes by descending score.

    boxes: [K, 4] float32 x1, y1, x2, y2 in pixels; scores: [K]. Returns the indices of kept boxes, in the
    order kept; a box is dropped when its IoU with an already kept box exceeds ``iou_threshold``. The visiting
    order is :func:`score_order` of ``scores`` even when they are already sorted: the reference's NMS sorts
    again, which reorders tied scores (faces/README.md §1.4).
    """
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    one = np.float32(1)
    keep = []
    # Untrained (stand-in) weights can decode to infinite boxes; their NaN IoUs count as overlaps.
    with np.errstate(over="ignore", invalid="ignore"):
        areas = (x2 - x1 + one) * (y2 - y1 + one)
        order = score_order(scores)
        while order.size:
            best, rest = order[0], order[1:]
            keep.append(int(best))
            inter_w = np.maximum(np.float32(0), np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + one)
            inter_h = np.maximum(np.float32(0), np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + one)
            intersection = inter_w * inter_h
            iou = intersection / (areas[best] + areas[rest] - intersection)
            order = rest[iou <= np.float32(iou_threshold)]
    return keep


@dataclass
class DetectedFace:
    """One detected face, in original-image pixels.

    box: (4,) float32 x1, y1, x2, y2; keypoints: (5, 2) float32 left eye, right eye, nose, left and
    right mouth corner (left = the image's left in a frontal face); score: face probability in [0, 1].
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float


@dataclass
class DecodedDetections:
    """Every prior's decoded box/landmarks/score for one image, in original-image pixels (float32)."""

    boxes: np.ndarray  # [N, 4]
    landmarks: np.ndarray  # [N, 10]
    scores: np.ndarray  # [N]


def decode_outputs(
    outputs: NetworkOutput, priors: torch.Tensor, input_hw: tuple[int, int], factor: float
) -> list[DecodedDetections]:
    """Decode the network outputs of a batch for every prior, scaled back by the resize factor."""
    loc, conf, landms = (output.float() for output in outputs)
    height, width = input_hw
    priors = priors.to(loc.device)
    box_scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=loc.device)
    landmark_scale = torch.tensor([width, height] * 5, dtype=torch.float32, device=loc.device)
    decoded = []
    for index in range(loc.shape[0]):
        boxes = decode_boxes(loc[index], priors) * box_scale / factor
        landmarks = decode_landmarks(landms[index], priors) * landmark_scale / factor
        decoded.append(DecodedDetections(
            boxes.cpu().numpy(), landmarks.cpu().numpy(), conf[index, :, 1].cpu().numpy()
        ))
    return decoded


def select_faces(decoded: DecodedDetections, threshold: float) -> list[DetectedFace]:
    """Threshold (strictly greater), top-k, NMS, keep-top-k, sorted by descending score."""
    candidates = np.nonzero(decoded.scores > threshold)[0]
    if candidates.size == 0:
        return []
    boxes, landmarks, scores = (
        decoded.boxes[candidates], decoded.landmarks[candidates], decoded.scores[candidates]
    )
    order = score_order(scores)[:PRE_NMS_TOP_K]
    boxes, landmarks, scores = boxes[order], landmarks[order], scores[order]
    keep = nms(boxes, scores)[:POST_NMS_KEEP]
    keep = sorted(keep, key=lambda index: -scores[index])  # stable: ties keep the NMS order
    return [
        DetectedFace(boxes[index].copy(), landmarks[index].reshape(5, 2).copy(), float(scores[index]))
        for index in keep
    ]


def best_face(faces: Sequence[DetectedFace]) -> DetectedFace | None:
    """The highest-score face (what align.py, demo.py and embedding_distance.py use), or None when there is none.

    Among tied scores the first listed wins: give it a ``detect(..., in_score_order=True)`` list to take the
    reference's ``detected_faces[0]``.
    """
    return max(faces, key=lambda face: float(face.score), default=None)


def sort_faces(faces: Sequence[DetectedFace]) -> list[DetectedFace]:
    """The CLIs' face order: left to right by the first keypoint's x, then its y; ties keep detector order.

    Index 0 is therefore the left-most face (the default ``--source_face_index``/``--target_face_index``).
    """
    return sorted(faces, key=lambda face: (float(face.keypoints[0, 0]), float(face.keypoints[0, 1])))


class FaceDetector:
    """Detects faces in BGR images with RetinaFace; boxes and keypoints come back in image pixels.

    ``model`` is any module returning ``(loc, conf, landms)`` like :class:`RetinaFace`. ``max_size``
    (None or -1: no resize) is the long side the image is resized to before the network (1280 limits
    the cost of large photos); with ``upscale`` False smaller images keep their size. ``fp16`` runs the
    network under float16 autocast on CUDA only.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[torch.Tensor], NetworkOutput],
        device: str | torch.device = "cpu",
        threshold: float = DEFAULT_THRESHOLD,
        max_size: int | None = DEFAULT_MAX_SIZE,
        fp16: bool = False,
        upscale: bool = True,
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.threshold = threshold
        self.max_size = max_size
        self.fp16 = fp16
        self.upscale = upscale

    def with_sizing(self, max_size: int | None, upscale: bool = True) -> FaceDetector:
        """The same network and threshold with another detection size (no weights are loaded again)."""
        return FaceDetector(self.model, self.device, self.threshold, max_size, self.fp16, upscale)

    @torch.no_grad()
    def decode(self, images: np.ndarray, bgr: bool = True) -> list[DecodedDetections]:
        """Every prior's decoded detection for a batch of same-size images (N x H x W x 3 uint8)."""
        x, factor = preprocess(images, self.max_size, bgr=bgr, device=self.device, upscale=self.upscale)
        with autocast(self.device, self.fp16):
            outputs = self.model(x)
        priors = prior_boxes(x.shape[2], x.shape[3])
        return decode_outputs(outputs, priors, (x.shape[2], x.shape[3]), factor)

    def detect(self, image_bgr: np.ndarray, in_score_order: bool = False) -> list[DetectedFace]:
        """Faces of one H x W x 3 uint8 BGR image in the CLI order (left to right); [] when none.

        ``in_score_order``: as the reference returns them instead (descending score, ties in its NMS order), so
        that ``[0]`` is the face the original's align.py, demo and preprocessing take.
        """
        return self.detect_batch([image_bgr], in_score_order=in_score_order)[0]

    def detect_batch(self, images: Sequence[np.ndarray], bgr: bool = True,
                     in_score_order: bool = False) -> list[list[DetectedFace]]:
        """Faces of several H x W x 3 uint8 images (BGR unless ``bgr`` is False), one list per image.

        Images of the same size run as one batch; each list is in the CLI order (left to right), or in the
        reference's score order with ``in_score_order`` (see :meth:`detect`).
        """
        results: list[list[DetectedFace]] = [[] for _ in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            _check_image(image)
            groups.setdefault(image.shape, []).append(index)
        for indices in groups.values():
            batch = np.stack([images[index] for index in indices])
            for index, decoded in zip(indices, self.decode(batch, bgr=bgr)):
                faces = select_faces(decoded, self.threshold)
                results[index] = faces if in_score_order else sort_faces(faces)
        return results


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an H x W x 3 uint8 image, got {type(image).__name__} with shape {shape}")


def load_face_detector(
    device: str | torch.device = "cpu",
    path: str | Path | None = None,
    weights_dir: str | Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_size: int | None = DEFAULT_MAX_SIZE,
    fp16: bool = False,
    upscale: bool = True,
) -> FaceDetector:
    """Load the released RetinaFace weights (strictly) and wrap them in a :class:`FaceDetector`."""
    model = load_model("retinaface", device=device, path=path, weights_dir=weights_dir)
    return FaceDetector(model, device, threshold=threshold, max_size=max_size, fp16=fp16, upscale=upscale)
