"""68-point face landmarks with 2D-FAN-4 (the face-alignment package's own ``FAN`` class).

The network class comes from ``face_alignment.models`` (its state dict is exactly the released file's
layout); only the package's download path is bypassed: we build ``FAN(4)`` and load our safetensors
file strictly. The crop and heatmap decoding reproduce ``get_landmarks_from_image`` with the
"default" detector's reference scale 195 (conformance kit faces/README.md §2.3), including its
float32 crop corners and the truncation of landmarks to integer pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from face_alignment.models import FAN
from torch import nn

from models.registry import load_model
from utils.device import autocast
from utils.image import check_face_box

NUM_STACKS = 4  # 2D-FAN-4 ("LARGE")
NUM_LANDMARKS = 68
CROP_SIZE = 256
REFERENCE_SCALE = 195.0  # face_alignment's default detector
SCALE_TO_PIXELS = 200.0
CENTRE_Y_SHIFT = 0.12


def build_fan(num_modules: int = NUM_STACKS) -> nn.Module:
    """face_alignment's FAN with ``num_modules`` stacked hourglasses (unloaded).

    forward: x [B,3,256,256] float32 RGB in [0, 1] -> list of ``num_modules`` heatmaps [B,68,64,64].
    """
    return FAN(num_modules)


def box_centre_and_scale(box: np.ndarray) -> tuple[np.ndarray, float]:
    """Crop centre (x, y) and scale of a detector box (x1, y1, x2, y2), as face_alignment computes them.

    The box differences are taken in the box's own precision (float32 for RetinaFace boxes) and the rest
    in float64, which is what the reference did under numpy 1 (and gives its crops bit for bit).
    """
    box = np.asarray(box)
    if not np.issubdtype(box.dtype, np.floating):
        box = box.astype(np.float64)
    x1, y1, x2, y2 = box[:4]
    width, height = x2 - x1, y2 - y1
    centre = np.array([float(x2) - float(width) / 2.0, float(y2) - float(height) / 2.0])
    centre[1] -= float(height) * CENTRE_Y_SHIFT
    scale = float(x2 - x1 + y2 - y1) / REFERENCE_SCALE
    return centre, scale


def _crop_to_image_matrix(centre: np.ndarray, scale: float, resolution: float, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of the image -> crop affine map (3x3), built and inverted in ``dtype`` like the reference."""
    size = SCALE_TO_PIXELS * scale
    forward = torch.eye(3, dtype=dtype)
    forward[0, 0] = resolution / size
    forward[1, 1] = resolution / size
    forward[0, 2] = resolution * (-centre[0] / size + 0.5)
    forward[1, 2] = resolution * (-centre[1] / size + 0.5)
    return torch.linalg.inv(forward)


def crop_face(image: np.ndarray, centre: np.ndarray, scale: float, resolution: int = CROP_SIZE) -> np.ndarray:
    """The square crop FAN sees: window of 200*scale pixels around ``centre`` resized to resolution².

    image: H x W x C uint8 -> resolution x resolution x C uint8; outside the image is black. The window
    corners are computed in float32 through the inverse map and truncated toward zero (reference quirk).
    """
    to_image = _crop_to_image_matrix(centre, scale, float(resolution), torch.float32)
    left, top = (to_image @ torch.tensor([1.0, 1.0, 1.0]))[:2].int().tolist()
    right, bottom = (to_image @ torch.tensor([float(resolution), float(resolution), 1.0]))[:2].int().tolist()
    canvas = np.zeros((bottom - top, right - left) + image.shape[2:], dtype=np.uint8)
    height, width = image.shape[:2]
    source_top, source_left = max(0, top), max(0, left)
    source_bottom, source_right = min(bottom, height), min(right, width)
    if source_bottom > source_top and source_right > source_left:
        canvas[source_top - top:source_bottom - top, source_left - left:source_right - left] = (
            image[source_top:source_bottom, source_left:source_right]
        )
    return cv2.resize(canvas, (resolution, resolution), interpolation=cv2.INTER_LINEAR)


def decode_heatmaps(
    heatmaps: np.ndarray, centre: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmaps -> landmarks, as face_alignment's ``get_preds_fromhm``.

    heatmaps: [B, 68, 64, 64] float32. Returns (heatmap-space points [B,68,2] float32 = 1-based argmax
    + a quarter-pixel step towards the larger neighbour - 0.5, image-space points [B,68,2] float32 with
    integer values (truncated toward zero), scores [B,68] float32 = the maxima).
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    batch, channels, height, width = heatmaps.shape
    flat = heatmaps.reshape(batch, channels, height * width)
    index = np.argmax(flat, axis=-1)
    scores = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
    column, row = index % width, index // width
    points = np.stack([column + 1, row + 1], axis=-1).astype(np.float32)
    inner = (column > 0) & (column < width - 1) & (row > 0) & (row < height - 1)
    batch_index, channel_index = np.nonzero(inner)
    cols, rows = column[inner], row[inner]
    maps = heatmaps[batch_index, channel_index]
    step = np.arange(len(cols))
    horizontal = maps[step, rows, cols + 1] - maps[step, rows, cols - 1]
    vertical = maps[step, rows + 1, cols] - maps[step, rows - 1, cols]
    points[batch_index, channel_index] += np.sign(np.stack([horizontal, vertical], axis=-1)) * np.float32(0.25)
    points -= np.float32(0.5)
    # The reference back-projects each point in float64 through a pseudo-inverse and truncates.
    size = SCALE_TO_PIXELS * scale
    forward = np.eye(3)
    forward[0, 0] = forward[1, 1] = height / size
    forward[0, 2] = height * (-centre[0] / size + 0.5)
    forward[1, 2] = height * (-centre[1] / size + 0.5)
    to_image = np.linalg.pinv(forward)
    x, y = points[..., 0].astype(np.float64), points[..., 1].astype(np.float64)
    image_points = np.stack([to_image[axis, 0] * x + to_image[axis, 1] * y + to_image[axis, 2] for axis in (0, 1)], -1)
    return points, image_points.astype(np.int32).astype(np.float32), scores


class LandmarkDetector:
    """68-point landmarks of a face given its detector box (FAN-4 on a 256x256 crop).

    ``fp16`` runs the network in float16 on CUDA (as the reference's inference); decoding is float32.
    """

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", fp16: bool = False) -> None:
        self.model = model
        self.device = torch.device(device)
        self.fp16 = fp16

    @torch.no_grad()
    def heatmaps(self, crop_rgb: np.ndarray) -> np.ndarray:
        """Last-stack heatmaps of a 256x256x3 uint8 RGB crop (or N of them, Nx256x256x3) -> [N,68,64,64] float32."""
        crops = crop_rgb if crop_rgb.ndim == 4 else crop_rgb[None]
        x = torch.from_numpy(crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0).to(self.device)
        with autocast(self.device, self.fp16):
            output = self.model(x)[-1]
        return output.float().cpu().numpy()

    def get_landmarks_batch(self, images_bgr: Sequence[np.ndarray], boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`get_landmarks` of several faces (one box per image, images may repeat) in one network call."""
        crops, frames = [], []
        for image_bgr, box in zip(images_bgr, boxes):
            check_face_box(box, image_bgr.shape, "landmark face box")
            centre, scale = box_centre_and_scale(box)
            frames.append((centre, scale))
            crops.append(crop_face(image_bgr, centre, scale)[:, :, ::-1])
        if not crops:
            return []
        heatmaps = self.heatmaps(np.stack(crops))
        return [decode_heatmaps(heatmaps[index:index + 1], centre, scale)[1][0]
                for index, (centre, scale) in enumerate(frames)]

    def get_landmarks(self, image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 landmarks (x, y) of the face in ``box`` (x1, y1, x2, y2) of an H x W x 3 uint8 BGR image.

        Returns [68, 2] float32, integer-valued image pixels (iBUG 68-point order).
        """
        return self.get_landmarks_with_details(image_bgr, box)["landmarks"]

    def get_landmarks_with_details(self, image_bgr: np.ndarray, box: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`get_landmarks` plus its intermediates: centre, scale, crop, heatmaps, heatmap points, scores.

        Raises FaceBoxError for a box that cannot be a face of the image (its crop window could need gigabytes).
        """
        check_face_box(box, image_bgr.shape, "landmark face box")
        centre, scale = box_centre_and_scale(box)
        # Cropping copies and resizes each channel alike, so only the 256×256 crop changes colour order.
        crop = np.ascontiguousarray(crop_face(image_bgr, centre, scale)[:, :, ::-1])
        heatmaps = self.heatmaps(crop)
        points, image_points, scores = decode_heatmaps(heatmaps, centre, scale)
        return {
            "center": centre,
            "scale": np.float64(scale),
            "crop": crop,
            "heatmaps": heatmaps,
            "heatmap_preds": points[0],
            "landmarks": image_points[0],
            "scores": scores[0],
        }


def load_landmark_detector(
    device: str | torch.device = "cpu",
    path: str | Path | None = None,
    weights_dir: str | Path | None = None,
    fp16: bool = False,
) -> LandmarkDetector:
    """Load the released FAN-4 weights strictly into face_alignment's FAN and wrap them."""
    model = load_model("face_alignment", device=device, path=path, weights_dir=weights_dir)
    return LandmarkDetector(model, device, fp16=fp16)
