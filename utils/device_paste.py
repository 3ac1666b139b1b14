"""Paste-back on the compute device (CUDA): the face and its crop-space mask warped with kornia, blended there.

The CPU paste-back (utils.paste_back) reproduces OpenCV's arithmetic bit for bit, which the conformance vectors
need; on a GPU that exactness costs two host round trips per face. Video and live frames on CUDA therefore warp
and blend on the device: only the face's region of the frame goes up and comes back. kornia's ``warp_affine``
samples like ``cv2.warpAffine`` (pixel centres, bilinear), so the result differs from the CPU paste by rounding
only (tests/utils/test_device_paste.py measures it). Modes whose mask lives in the crop frame are supported
(``DEVICE_PASTE_MODES``); the others, and photos (whose full-frame mask feeds inpainting), stay on the CPU.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from utils.paste_back import face_region, ghost_masks_at, parser_face_masks

DEVICE_PASTE_MODES = ("ghost", "facexlib_with_parser", "basic")


def runs_on_device(device: torch.device, mode: str, keep_mask: bool) -> bool:
    """Whether a paste goes through :func:`paste_on_device`: CUDA, a crop-frame mask, no full-frame mask wanted."""
    return device.type == "cuda" and mode in DEVICE_PASTE_MODES and not keep_mask


def crop_alpha(mode: str, face_size: int, source_landmarks: np.ndarray | None = None,
               target_landmarks: np.ndarray | None = None, labels: np.ndarray | None = None,
               ghost_settings=None) -> np.ndarray:  # noqa: ANN001 - utils.paste_back.GhostMaskSettings
    """The mode's blending mask in the crop frame: ``S×S float32`` in [0, 1] (as utils.paste_back builds it)."""
    if mode == "ghost":
        soft, _, _ = ghost_masks_at(source_landmarks, target_landmarks, face_size, ghost_settings)
        return (soft / 255).astype(np.float32)
    if mode == "facexlib_with_parser":
        return parser_face_masks(labels, face_size)[1].astype(np.float32)
    if mode == "basic":
        return np.ones((face_size, face_size), np.float32)
    raise ValueError(f"paste-back mode {mode!r} is not run on the device; use one of {DEVICE_PASTE_MODES}")


def paste_on_device(target_image: np.ndarray, face: np.ndarray, alpha: np.ndarray, matrix: np.ndarray,
                    device: torch.device, replicate_border: bool) -> np.ndarray:
    """``target_image`` (H×W×3 uint8 BGR) with ``face`` (S×S×3 uint8 BGR) warped in through ``matrix`` (image →
    crop, 2×3) and blended with ``alpha`` (S×S float in [0, 1]); the warps and the blend run on ``device``.

    ``replicate_border``: the face's edge pixels extend past it (the ghost mode), else it is black outside (as
    cv2's constant border, the other modes)."""
    import kornia

    face_size = face.shape[0]
    region = face_region(matrix, face_size, target_image.shape)
    if region is None:
        return target_image.copy()
    x0, y0, x1, y1 = region
    to_region = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    to_region[:, 2] -= (x0, y0)
    transform = torch.from_numpy(to_region).float()[None].to(device)
    size = (y1 - y0, x1 - x0)
    face_tensor = torch.from_numpy(np.ascontiguousarray(face)).to(device).permute(2, 0, 1)[None].float()
    alpha_tensor = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32)).to(device)[None, None]
    warped_face = kornia.geometry.transform.warp_affine(face_tensor, transform, size, mode="bilinear",
                                                        padding_mode="border" if replicate_border else "zeros",
                                                        align_corners=True)
    warped_alpha = kornia.geometry.transform.warp_affine(alpha_tensor, transform, size, mode="bilinear",
                                                         padding_mode="zeros", align_corners=True)
    background = torch.from_numpy(target_image[y0:y1, x0:x1]).to(device).permute(2, 0, 1)[None].float()
    blended = (warped_alpha * warped_face + (1 - warped_alpha) * background).clamp(0, 255).to(torch.uint8)
    image = target_image.copy()
    image[y0:y1, x0:x1] = blended[0].permute(1, 2, 0).cpu().numpy()
    return image
