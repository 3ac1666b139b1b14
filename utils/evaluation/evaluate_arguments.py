"""The command-line flags of evaluate.py, built from EvaluationOptions, plus every swap flag of inference.py.

Defaults live in :class:`utils.evaluation.options.EvaluationOptions` (and SwapOptions for the swap flags).
"""
from __future__ import annotations

import argparse

from models.embeddings import FACE_EMBEDDING_NAMES
from utils.cli import add_option_arguments, add_weight_path, options_from_arguments
from utils.evaluation.options import METRIC_NAMES, EvaluationOptions
from utils.inference.inference_arguments import add_swap_arguments
from utils.ray_cluster import RayOptions, add_ray_arguments

DEFAULTS = EvaluationOptions()
OPTION_HELP = {
    "sources": "folder of source pictures (identities), or one picture",
    "targets": "folder of target pictures and/or videos (every frame is scored), or one file",
    "pairs": "CSV with columns source,target (names inside --sources/--targets) instead of every source x target",
    "output_dir": "where pairs.csv, summary.json, worst_pairs.png and swapped/ are written",
    "eval_face_embeddings": "identity model of the metrics [default: the first of adaface, cvl_arcface, cvl_adaface, "
                            "facenet, cvl_vit, arcface that no evaluated generator was conditioned on]",
    "frame_step": "score every N-th video frame",
    "max_frames": "score at most N frames per video [default: all]",
    "worst_pairs": "frames per metric in worst_pairs.png (0: no picture)",
    "save_swapped": "write each result to <output_dir>/swapped/<source>__<target>.png (.mkv, lossless, for videos)",
}
LIST_HELP = {
    "swapped_dir": "score results made elsewhere instead of swapping: folder(s) of <source stem>__<target stem>.<ext>; "
                   "several folders are compared side by side",
    "compare_G_path": "more generators scored on the same pairs, side by side: PATH or "
                      "PATH:option=value,... (inference.py flags, e.g. face_embeddings=arcface,align_mode=insightface_v1 "
                      "for GhostV1)",
}


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """The evaluation flags, the two model path flags of the metrics, then inference.py's swap flags."""
    evaluation = parser.add_argument_group("evaluation")
    add_option_arguments(evaluation, EvaluationOptions, OPTION_HELP, {"eval_face_embeddings": FACE_EMBEDDING_NAMES})
    for name, text in LIST_HELP.items():
        evaluation.add_argument(f"--{name}", nargs="+", default=list(getattr(DEFAULTS, name)), metavar="PATH",
                                help=text)
    evaluation.add_argument("--compare_expression_restorer", nargs="+", type=float,
                            default=list(DEFAULTS.compare_expression_restorer), metavar="FACTOR",
                            help="also score every generator with --expression_restorer_factor FACTOR (e.g. 80), "
                                 "side by side with the run as given; pose_error and expression_error show what "
                                 "the restorer changes")
    evaluation.add_argument("--metrics", nargs="+", choices=METRIC_NAMES, default=list(DEFAULTS.metrics),
                            metavar="METRIC", help=f"metrics to compute (only their models load): {', '.join(METRIC_NAMES)}")
    add_weight_path(evaluation, "motion_extractor_model_path", "liveportrait_motion_extractor",
                    "LivePortrait motion extractor weights (pose_error, expression_error)")
    add_weight_path(evaluation, "eye_landmarks_model_path", "adaptive_wing_fan",
                    "AdaptiveWingLoss FAN weights (eye_error)")
    add_ray_arguments(parser.add_argument_group("Ray cluster (sources and pairs scored by actors, for long pair "
                                                "lists)"))
    add_swap_arguments(parser.add_argument_group("swap (the flags of inference.py)"))


def evaluation_options_from_arguments(args: argparse.Namespace) -> EvaluationOptions:
    """The EvaluationOptions of the parsed flags (lists become tuples)."""
    return options_from_arguments(EvaluationOptions, args, swapped_dir=tuple(args.swapped_dir),
                                  compare_G_path=tuple(args.compare_G_path), metrics=tuple(args.metrics),
                                  compare_expression_restorer=tuple(args.compare_expression_restorer))


def ray_options_from_arguments(args: argparse.Namespace) -> RayOptions:
    """The --ray_* flags (``ray_address`` None: score in this process)."""
    return options_from_arguments(RayOptions, args)
