"""Cropping aligned faces from one image or a folder tree (the library side of align.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.retinaface import DEFAULT_THRESHOLD
from utils.align import DEFAULT_ALIGN_MODE
from utils.batch_files import SAME_AS_SOURCE, BatchReport, collect_sources, run_batch
from utils.device import resolve_device

logger = logging.getLogger(__name__)

ALIGN_OUTPUT_EXTENSIONS = (SAME_AS_SOURCE, ".png", ".jpg")


@dataclass
class AlignOptions:
    """Everything align.py can be asked (flag names of the original tool)."""

    aligned_folder: str | Path
    source_image: str | Path | None = None
    source_folder: str | Path | None = None
    output_extension: str = SAME_AS_SOURCE
    align_mode: str = DEFAULT_ALIGN_MODE
    final_crop_size: int = 256
    detection_threshold: float = DEFAULT_THRESHOLD
    overwrite: bool = False
    device: str = "auto"
    weights_dir: str | Path | None = None
    retina_face_model_path: str | Path | None = None
    cvlface_aligner_model_path: str | Path | None = None


def best_face_keypoints(detector, image_bgr: np.ndarray) -> np.ndarray | None:
    """Five keypoints ``(5, 2) float32`` (image pixels) of the highest-score face, or None when there is none."""
    from models.retinaface import best_face

    face = best_face(detector.detect(image_bgr, in_score_order=True))
    return None if face is None else face.keypoints


def align_images(options: AlignOptions, detector, cvlface_aligner: torch.nn.Module | None = None) -> BatchReport:
    """Detect, align and write the best face of every input; the folder structure is mirrored.

    Each output is a ``final_crop_size``² ``uint8 BGR`` crop. Faceless or unreadable images are reported and
    produce no file; existing outputs are kept unless ``overwrite``; inputs are never written to.
    """
    from utils.align import align_face

    def aligned(source: Path, image: np.ndarray) -> np.ndarray | None:
        keypoints = best_face_keypoints(detector, image)
        if keypoints is None:
            logger.info("no face found in %s (detection threshold %s); nothing written", source,
                        options.detection_threshold)
            return None
        face, _ = align_face(image, keypoints, options.align_mode, options.final_crop_size,
                             cvlface_aligner=cvlface_aligner)
        return face

    return run_batch(options.source_image, options.source_folder, options.aligned_folder, options.output_extension,
                     ALIGN_OUTPUT_EXTENSIONS, options.overwrite, "align", aligned)


def run_alignment(options: AlignOptions) -> BatchReport:
    """Load the detector (and the CVLFace aligner for ``cvlface`` mode) once, then align every input."""
    from models.retinaface import load_face_detector
    from utils.align import check_align_mode
    from utils.image import check_output_folder

    check_align_mode(options.align_mode)
    # Fail on a bad source or output before spending time on loading weights.
    collect_sources(options.source_image, options.source_folder)
    check_output_folder(options.aligned_folder)
    device = resolve_device(options.device)
    # No max_size: the original align.py detects every image at its own size (faces/README.md §1.3).
    detector = load_face_detector(
        device=device, path=options.retina_face_model_path, weights_dir=options.weights_dir,
        threshold=options.detection_threshold, max_size=None,
    )
    cvlface_aligner = None
    if options.align_mode == "cvlface":
        from models.registry import load_model

        cvlface_aligner = load_model(
            "cvlface_aligner", device=device, path=options.cvlface_aligner_model_path, weights_dir=options.weights_dir
        )
    with torch.inference_mode():
        return align_images(options, detector, cvlface_aligner)
