"""The command-line flags of a swap, shared by inference.py and demo.py (original names and defaults)."""
from __future__ import annotations

import argparse
from dataclasses import fields

from utils.cli import add_bool, add_device_arguments, add_weight_path
from utils.swap import ALIGN_MODES, EMBEDDING_PATH_FIELDS, PASTE_BACK_MODES, PRECISIONS, SwapOptions

# Per-model path flags: flag name -> registry checkpoint name.
WEIGHT_PATH_FLAGS = {
    "G_path": ("ghostv2_generator", "generator weights (GhostV1: weights/GhostV1/G_unet_2blocks.safetensors)"),
    **{flag: (name, f"{name} embedding weights") for name, flag in EMBEDDING_PATH_FIELDS.items()},
    "gfpgan_model_path": ("gfpgan_v1_4", "GFPGAN v1.4 weights"),
    "face_alignment_model_path": ("face_alignment", "FAN 68-point landmark weights (ghost paste-back)"),
    "face_parser_model_path": ("bisenet", "BiSeNet face parser weights (facexlib_with_parser paste-back)"),
    "retina_face_model_path": ("retinaface", "RetinaFace detector weights"),
    "cvlface_aligner_model_path": ("cvlface_aligner", "CVLFace aligner weights (cvlface align mode)"),
}


def add_swap_arguments(parser: argparse.ArgumentParser, debug_folder: str | None = None) -> None:
    """Every flag of :class:`utils.swap.SwapOptions` (except the file paths, which each script adds itself).

    The ``--debug*`` flags are added only with a ``debug_folder`` (their default location).
    """
    defaults = SwapOptions()
    parser.add_argument("--face_embeddings", choices=tuple(EMBEDDING_PATH_FIELDS), default=defaults.face_embeddings,
                        help="identity embedding model (GhostV1: arcface)")
    parser.add_argument("--backbone", choices=("unet", "linknet", "resnet"), default=defaults.backbone,
                        help="generator attribute-encoder backbone")
    parser.add_argument("--num_blocks", type=int, default=defaults.num_blocks, help="AAD residual blocks per level")
    add_bool(parser, "align_corners", defaults.align_corners, "generator upsampling with align_corners")
    parser.add_argument("--align_mode", choices=ALIGN_MODES, default=defaults.align_mode,
                        help="face alignment template (GhostV1: insightface_v1)")
    parser.add_argument("--paste_back_mode", choices=PASTE_BACK_MODES, default=defaults.paste_back_mode,
                        help="how the swapped face goes back into the target; none writes the 256x256 face")
    add_bool(parser, "enhance_output", defaults.enhance_output, "enhance the swapped face with GFPGAN v1.4")
    add_bool(parser, "inpaint_output", defaults.inpaint_output,
             "SDXL inpainting of the face edge (only after the ghost and facexlib_with_parser paste-backs)")
    parser.add_argument("--detection_threshold", type=float, default=defaults.detection_threshold,
                        help="RetinaFace score threshold")
    parser.add_argument("--source_face_index", type=int, default=defaults.source_face_index,
                        help="which source face, counted from the left")
    parser.add_argument("--target_face_index", type=int, default=defaults.target_face_index,
                        help="which target face, counted from the left")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="16 / 16-mixed: float16 autocast (CUDA only); default float32")
    add_device_arguments(parser)
    for flag, (checkpoint, help_text) in WEIGHT_PATH_FLAGS.items():
        add_weight_path(parser, flag, checkpoint, help_text)
    parser.add_argument("--nsfw_model", default=None,
                        help="NSFW classifier: Hugging Face id or local folder "
                        "[default: AdamCodd/vit-base-nsfw-detector]")
    parser.add_argument("--inpainting_model", default=None,
                        help="SDXL inpainting pipeline: Hugging Face id or local folder "
                        "[default: diffusers/stable-diffusion-xl-1.0-inpainting-0.1]")
    parser.add_argument("--inpainting_seed", type=int, default=None,
                        help="seed of the inpainting noise, for reproducible outputs [default: random]")
    parser.add_argument("--verbose", action="store_true", help="log more")
    if debug_folder is None:
        return
    add_bool(parser, "debug", defaults.debug, "also write the aligned faces and the raw/enhanced swapped faces")
    add_bool(parser, "debug_ghost_landmarks", defaults.debug_ghost_landmarks,
             "draw the 68 landmark indices on the debug faces (ghost paste-back)")
    debug_files = {
        "source_face": "the aligned 256x256 source face",
        "target_face": "the aligned 256x256 target face",
        "swapped_face": "the generator's raw 256x256 swapped face",
        "enhanced_face": "the GFPGAN-enhanced swapped face (with --enhance_output)",
    }
    for name, what in debug_files.items():
        parser.add_argument(f"--debug_{name}_path", default=f"{debug_folder}/{name}.jpg",
                            help=f"where --debug writes {what}")


def swap_options_from_arguments(args: argparse.Namespace) -> SwapOptions:
    """The SwapOptions whose fields have a flag of the same name."""
    names = {item.name for item in fields(SwapOptions)}
    return SwapOptions(**{name: value for name, value in vars(args).items() if name in names})
