"""Compare two identity embeddings of the same face: each side picks its model, align mode and crop size.

Prints "Distance between embeddings is: D" with D = 1 - cosine similarity (0: same direction).

Examples:
  python embedding_distance.py --source_image_path examples/astronaut.png
  python embedding_distance.py --source_face_embeddings arcface --target_face_embeddings cvl_arcface
         --source_align_mode insightface_v2 --source_crop_size 112
"""
from __future__ import annotations

import sys

from models.registry import REPO_ROOT
from utils.align import ALIGN_MODES
from utils.cli import (
    add_bool,
    add_device_arguments,
    add_option_arguments,
    add_weight_path,
    configure_logging,
    make_parser,
    run_cli,
)
from utils.inference.embedding_distance import (
    EmbeddingDistanceOptions,
    EmbeddingSide,
    measure_embedding_distance,
)
from utils.inference.options import EMBEDDING_PATH_FIELDS

RESULTS = REPO_ROOT / "examples/results/embedding_distance"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("embedding_distance.py", __doc__)
    parser.add_argument("--source_image_path", default=str(REPO_ROOT / "examples/astronaut.png"),
                        help="photo holding the face (its highest-score face is used)")
    names = tuple(EMBEDDING_PATH_FIELDS)
    sides = (("source", "cvl_vit", "insightface_v1", 256), ("target", "cvl_vit", "insightface_v2", 112))
    for side, model, mode, size in sides:
        parser.add_argument(f"--{side}_face_embeddings", choices=names, default=model, help=f"{side} embedding model")
        parser.add_argument(f"--{side}_align_mode", choices=ALIGN_MODES, default=mode, help=f"{side} crop alignment")
        parser.add_argument(f"--{side}_crop_size", type=int, default=size, help=f"{side} crop side in pixels")
    add_option_arguments(parser, EmbeddingDistanceOptions, {"detection_threshold": "RetinaFace score threshold"})
    add_device_arguments(parser)
    for name, flag in EMBEDDING_PATH_FIELDS.items():
        add_weight_path(parser, flag, name, f"{name} embedding weights")
    add_weight_path(parser, "retina_face_model_path", "retinaface", "RetinaFace weights")
    add_weight_path(parser, "cvlface_aligner_model_path", "cvlface_aligner", "CVLFace aligner weights (cvlface mode)")
    add_bool(parser, "debug", False, "also write the two aligned crops to the --debug_*_face_path files")
    for side in ("source", "target"):
        parser.add_argument(f"--debug_{side}_face_path", default=str(RESULTS / f"{side}_face.jpg"),
                            help=f"where --debug writes the {side} crop")
    parser.add_argument("--verbose", action="store_true", help="log more")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def side(prefix: str) -> EmbeddingSide:
        model = getattr(args, f"{prefix}_face_embeddings")
        return EmbeddingSide(model, getattr(args, f"{prefix}_align_mode"), getattr(args, f"{prefix}_crop_size"),
                             getattr(args, EMBEDDING_PATH_FIELDS[model]))

    options = EmbeddingDistanceOptions(
        source_image_path=args.source_image_path, source=side("source"), target=side("target"),
        detection_threshold=args.detection_threshold, device=args.device, weights_dir=args.weights_dir,
        retina_face_model_path=args.retina_face_model_path,
        cvlface_aligner_model_path=args.cvlface_aligner_model_path,
        debug_source_face_path=args.debug_source_face_path if args.debug else None,
        debug_target_face_path=args.debug_target_face_path if args.debug else None,
    )

    def body() -> None:
        result = measure_embedding_distance(options)
        print(f"Distance between embeddings is: {result.distance}")

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
