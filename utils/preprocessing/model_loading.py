"""Loading the networks a preprocessing run needs, and only those."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from utils.preprocessing.options import PreprocessOptions


@dataclass
class PreprocessModels:
    """The networks a run needs (only those its options use are loaded)."""

    detector: Any  # models.retinaface.FaceDetector
    landmark_detector: Any | None = None  # models.fan_landmarks.LandmarkDetector
    liveportrait: Any | None = None  # models.liveportrait.retargeting.LivePortraitPipeline
    gfpgan: torch.nn.Module | None = None
    cvlface_aligner: torch.nn.Module | None = None
    face_parser: torch.nn.Module | None = None  # BiSeNet, for enhance_faces_in_original_image only


LIVEPORTRAIT_CHECKPOINTS = ("liveportrait_appearance_feature_extractor", "liveportrait_motion_extractor",
                            "liveportrait_warping_module", "liveportrait_spade_generator",
                            "liveportrait_stitching_retargeting_module", "liveportrait_landmark")


def required_checkpoints(options: PreprocessOptions) -> list[str]:
    """Registry names of the checkpoints :func:`load_models` reads for ``options`` (the nodes' pre-flight check)."""
    names = ["retinaface"]
    if options.retargeting:
        names += ["face_alignment", *LIVEPORTRAIT_CHECKPOINTS]
    if options.enhance_output_face or options.enhance_faces_in_original_image:
        names.append("gfpgan_v1_2")
    if options.enhance_faces_in_original_image:
        names.append("bisenet")
    if options.align_mode == "cvlface":
        names.append("cvlface_aligner")
    return names


def load_models(options: PreprocessOptions, device: torch.device, weights_dir: str | Path | None,
                paths: dict[str, str | None]) -> PreprocessModels:
    """Load the networks the options need; ``paths`` maps registry names to explicit file paths."""
    from models.fan_landmarks import load_landmark_detector
    from models.gfpgan import load_gfpgan
    from models.liveportrait.retargeting import load_pipeline
    from models.registry import load_model
    from models.retinaface import load_face_detector

    fp16 = device.type == "cuda"
    # No max_size by default, as the original (faces/README.md §1.3); --detection_max_size only shrinks.
    detector = load_face_detector(device, paths.get("retinaface"), weights_dir, threshold=options.detection_threshold,
                                  max_size=options.detection_max_size, fp16=fp16, upscale=False)
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


