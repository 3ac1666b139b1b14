"""The flags of preprocess_laion.py and preprocess_lagenda.py (the original's names), built from PreprocessOptions.

Defaults live in :class:`utils.preprocessing.options.PreprocessOptions`; this module only names and explains them.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from utils.align import ALIGN_MODES
from utils.cli import (
    add_device_arguments,
    add_option_arguments,
    add_weight_path,
    configure_logging,
    options_from_arguments,
    run_cli,
)
from utils.preprocessing.options import PreprocessOptions
from utils.ray_cluster import RayOptions, add_ray_arguments

logger = logging.getLogger("ghostv2")

# flag -> (registry checkpoint, help)
MODEL_FLAGS = {
    "gfpgan_model_path": ("gfpgan_v1_2", "GFPGAN v1.2 weights (enhancement flags only)"),
    "face_alignment_model_path": ("face_alignment", "FaceAlignment 2D-FAN-4 weights"),
    "face_parser_model_path": ("bisenet", "BiSeNet face parser weights"),
    "retina_face_model_path": ("retinaface", "RetinaFace weights"),
    "cvlface_aligner_model_path": ("cvlface_aligner", "CVLFace DFA aligner weights (--align_mode cvlface)"),
    "live_portrait_landmark_model_path": ("liveportrait_landmark", "LivePortrait landmark network"),
    "live_portrait_F_model_path": ("liveportrait_appearance_feature_extractor", "LivePortrait appearance extractor"),
    "live_portrait_M_model_path": ("liveportrait_motion_extractor", "LivePortrait motion extractor"),
    "live_portrait_W_model_path": ("liveportrait_warping_module", "LivePortrait warping module"),
    "live_portrait_G_model_path": ("liveportrait_spade_generator", "LivePortrait SPADE generator"),
    "live_portrait_S_model_path": ("liveportrait_stitching_retargeting_module", "LivePortrait stitching MLPs"),
}

OPTION_HELP = {
    "output_dir": "unaligned images (--save_full_size)",
    "output_dir_resized": "aligned faces, one folder per identity",
    "output_dir_retargeted": "full retargeted images (--save_retargeted)",
    "detection_threshold": "RetinaFace confidence threshold",
    "detection_max_size": "shrink images whose long side exceeds this before RetinaFace (faster, our option; "
                          "default: photos above 1280 px are shrunk to 1280, then detected as they are, "
                          "like the original)",
    "min_original_image_size": "skip images whose height or width is not above this",
    "min_original_face_size": "minimum face box side (0: off)",
    "eye_dist_threshold": "minimum distance between the eyes",
    "final_crop_size": "side of the aligned output faces",
    "align_mode": "face alignment",
    "stop_if_error": "stop at the first failing image instead of skipping it",
    "retargeting": "make LivePortrait expression variants of each face",
    "number_of_variants_per_face": "variants per face",
    "enhance_output_face": "restore each face with GFPGAN v1.2 (the 512 px crop before retargeting; with "
                           "--retargeting_do_crop or --no-retargeting, each saved face)",
    "enhance_faces_in_original_image": "restore the faces inside the full image with GFPGAN v1.2 "
                                       "(BiSeNet-masked paste-back) first",
    "retargeting_do_crop": "retarget the faces inside the full image and paste the variants back "
                           "(one image per variant)",
    "retargeting_crop_scale": "size of the do_crop face crop relative to the landmarks' box",
    "filter_valid_faces": "drop faces that are not frontal, open-eyed, closed-mouthed",
    "save_full_size": "also write the unaligned 512px images to --output_dir",
    "save_retargeted": "with --retargeting_do_crop, also write the full retargeted images to --output_dir_retargeted",
    "max_faces_per_image": "keep at most this many faces (0: all)",
    "seed": "seed of the random expressions and flips",
    "render_batch_size": "variants rendered per LivePortrait batch",
    "num_workers_total": "number of workers sharing the dataset (a hand-made split for a few machines; "
                         "--ray_address balances the work over a cluster and retries what a dead node was doing)",
    "worker_index": "this worker's index in [0, num_workers_total)",
}

# Each dataset's default folders: (dataset flag's default, output_dir, output_dir_resized, output_dir_retargeted).
LAION_BASE = "datasets/LAION-Face"
LAION_OUTPUTS = (f"{LAION_BASE}/laion_face_cropped_512x512_unaligned", f"{LAION_BASE}/laion_face_cropped_256x256",
                 f"{LAION_BASE}/laion_face_retargeted_data")
LAGENDA_BASE = "datasets/Lagenda"
LAGENDA_OUTPUTS = (f"{LAGENDA_BASE}/lag_benchmark_face_cropped_512x512_unaligned",
                   f"{LAGENDA_BASE}/lag_benchmark_face_cropped_256x256_2",
                   f"{LAGENDA_BASE}/lag_benchmark_retargeted_data")


def add_preprocess_arguments(parser: argparse.ArgumentParser, output_defaults: tuple[str, str, str]) -> None:
    """Flags shared by both preprocessing scripts (names and defaults of the original, §6.5)."""
    add_device_arguments(parser)
    for flag, (checkpoint, text) in MODEL_FLAGS.items():
        add_weight_path(parser, flag, checkpoint, text)
    add_option_arguments(parser, PreprocessOptions, OPTION_HELP, choices={"align_mode": ALIGN_MODES})
    parser.set_defaults(**dict(zip(("output_dir", "output_dir_resized", "output_dir_retargeted"), output_defaults)))
    add_ray_arguments(parser.add_argument_group("Ray cluster (instead of --num_workers_total / --worker_index)"))
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def add_laion_arguments(parser: argparse.ArgumentParser) -> None:
    """preprocess_laion.py: the shard folder, the splits, and the shared flags."""
    parser.add_argument("--laion_face_base_dir", default=LAION_BASE, help="folder holding laion_face_data/split_NNNNN/")
    parser.add_argument("--laion_face_part_indices", type=int, nargs="+", default=[0], help="split numbers to process")
    add_preprocess_arguments(parser, LAION_OUTPUTS)


def add_lagenda_arguments(parser: argparse.ArgumentParser) -> None:
    """preprocess_lagenda.py: the image folder, and the shared flags."""
    parser.add_argument("--lagenda_base_dir", default=f"{LAGENDA_BASE}/lag_benchmark", help="folder of input images")
    add_preprocess_arguments(parser, LAGENDA_OUTPUTS)


def options_from_args(args: argparse.Namespace) -> tuple[PreprocessOptions, dict[str, str | None]]:
    """Checked options and per-checkpoint path overrides from parsed arguments."""
    folders = {name: Path(getattr(args, name)) for name in ("output_dir", "output_dir_resized", "output_dir_retargeted")}
    options = options_from_arguments(PreprocessOptions, args, **folders)
    options.check()
    paths = {checkpoint: getattr(args, flag) for flag, (checkpoint, _) in MODEL_FLAGS.items()}
    return options, paths


def run_preprocess_cli(
    parser: argparse.ArgumentParser, argv: list[str] | None,
    dataset: Callable[[argparse.Namespace], Callable[[PreprocessOptions, Any], Any]],
    ray_dataset: Callable[[argparse.Namespace], Callable[..., Any]],
) -> int:
    """What both preprocessing scripts do: parse ``argv``, load the models, run the dataset, log the summary.

    ``dataset(args)`` returns the dataset walker (utils.preprocessing.datasets) with its own flags bound, and
    ``ray_dataset(args)`` its Ray version (utils.preprocessing.ray_runner), used with ``--ray_address``; errors
    become one line and exit code 1 (utils.cli.run_cli).
    """
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        options, paths = options_from_args(args)
        cluster = options_from_arguments(RayOptions, args)
        if cluster.ray_address:
            import torch

            from models.registry import weights_root
            from utils.preprocessing.ray_runner import ModelSettings, run_on_ray

            # The weights folder is resolved here, so that every node looks at the same path.
            models = ModelSettings(args.device, str(weights_root(args.weights_dir)), paths, torch.get_num_threads())
            summary = run_on_ray(ray_dataset(args), options, models, cluster)
        else:
            from utils.preprocessing.datasets import run_preprocessing

            summary = run_preprocessing(dataset(args), options, paths, args.device, args.weights_dir)
        for line in summary.lines():
            logger.info(line)
        return 0

    return run_cli(body)
