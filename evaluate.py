"""Score face swaps with the GHOST paper's metrics: identity, pose, expression, eyes (and, for videos, flicker).

Swaps every source into every target (or the pairs of --pairs), scores each result and prints a table (mean, std
and the published values we know); writes pairs.csv, summary.json and worst_pairs.png into --output_dir.

Examples:
  python evaluate.py --sources faces/ --targets frames/ --output_dir results/ghostv2
  python evaluate.py --sources faces/ --targets frames/ --compare_G_path
         weights/GhostV1/G_unet_2blocks.safetensors:face_embeddings=arcface,align_mode=insightface_v1
  python evaluate.py --sources faces/ --targets frames/ --swapped_dir other_tool_results/
  python evaluate.py --sources faces/ --targets clips/ --frame_step 10 --metrics id_similarity temporal_flicker
  python evaluate.py --sources ffpp_frames --targets ffpp_frames --pairs ffpp_pairs.csv --ray_address auto

Every flag is defined in utils/evaluation/evaluate_arguments.py (defaults in utils/evaluation/options.py);
the swap flags are inference.py's.
"""
from __future__ import annotations

import sys

from utils.cli import configure_logging, make_parser, run_cli
from utils.evaluation.evaluate_arguments import (
    add_evaluate_arguments,
    evaluation_options_from_arguments,
    ray_options_from_arguments,
)
from utils.inference.inference_arguments import swap_options_from_arguments


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("evaluate.py", __doc__)
    add_evaluate_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> None:
        # Imported here so that --help and flag errors do not wait for torch and the models.
        from utils.evaluation.run import run_evaluation

        report = run_evaluation(evaluation_options_from_arguments(args), swap_options_from_arguments(args),
                                cluster=ray_options_from_arguments(args))
        print(report.table)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
