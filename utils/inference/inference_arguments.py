"""The command-line flags of inference.py and demo.py (the original project's names), built from SwapOptions.

Defaults live in :class:`utils.inference.options.SwapOptions`; this module only names and explains them.
"""
from __future__ import annotations

import argparse

from models.embeddings import FACE_EMBEDDING_NAMES
from network.aeinet import BACKBONES
from utils.align import ALIGN_MODES
from utils.cli import add_device_arguments, add_option_arguments, add_weight_path, options_from_arguments
from utils.inference.options import EMBEDDING_PATH_FIELDS, PRECISIONS, SwapOptions
from utils.paste_back import PASTE_BACK_MODES

# Per-model path flags: flag name -> (registry checkpoint name, help).
WEIGHT_PATH_FLAGS = {
    "G_path": ("ghostv2_generator", "generator weights (GhostV1: weights/GhostV1/G_unet_2blocks.safetensors)"),
    **{flag: (name, f"{name} embedding weights") for name, flag in EMBEDDING_PATH_FIELDS.items()},
    "gfpgan_model_path": ("gfpgan_v1_4", "GFPGAN v1.4 weights"),
    "face_alignment_model_path": ("face_alignment", "FAN 68-point landmark weights (ghost paste-back)"),
    "face_parser_model_path": ("bisenet", "BiSeNet face parser weights (facexlib_with_parser paste-back)"),
    "retina_face_model_path": ("retinaface", "RetinaFace detector weights"),
    "cvlface_aligner_model_path": ("cvlface_aligner", "CVLFace aligner weights (cvlface align mode)"),
}

OPTION_HELP = {
    "face_embeddings": "identity embedding model (GhostV1: arcface)",
    "backbone": "generator attribute-encoder backbone",
    "num_blocks": "AAD residual blocks per level",
    "align_corners": "generator upsampling with align_corners",
    "align_mode": "face alignment template (GhostV1: insightface_v1)",
    "paste_back_mode": "how the swapped face goes back into the target; none writes the 256x256 face",
    "enhance_output": "enhance the swapped face with GFPGAN v1.4",
    "inpaint_output": "SDXL inpainting of the face edge (only after the ghost and facexlib_with_parser paste-backs)",
    "detection_threshold": "RetinaFace score threshold",
    "detection_max_size": "long side each photo is resized to for detection, as the original (-1: detect the photo "
                          "as it is; a smaller value is faster, see bench/detection_size.py)",
    "detection_upscale": "also enlarge photos smaller than --detection_max_size, as the original; "
                         "--no-detection_upscale detects them as they are (faster, slightly different boxes)",
    "source_face_index": "which source face, counted from the left",
    "target_face_index": "which target face, counted from the left",
    "precision": "16 / 16-mixed: float16 autocast (CUDA only); default float32",
    "nsfw_model": "NSFW classifier: Hugging Face id or local folder [default: AdamCodd/vit-base-nsfw-detector]",
    "inpainting_model": "SDXL inpainting pipeline: Hugging Face id or local folder "
                        "[default: diffusers/stable-diffusion-xl-1.0-inpainting-0.1]",
    "inpainting_seed": "seed of the inpainting noise [default: derived from the inputs, so a rerun writes the "
                       "same file]",
}
CHOICES = {"face_embeddings": FACE_EMBEDDING_NAMES, "backbone": BACKBONES, "align_mode": ALIGN_MODES,
           "paste_back_mode": PASTE_BACK_MODES, "precision": PRECISIONS}
DEBUG_HELP = {
    "debug": "also write the aligned faces and the raw/enhanced swapped faces",
    "debug_ghost_landmarks": "draw the 68 landmark indices on the debug faces (ghost paste-back)",
}
DEBUG_FILES = {
    "source_face": "the aligned 256x256 source face",
    "target_face": "the aligned 256x256 target face",
    "swapped_face": "the generator's raw 256x256 swapped face",
    "enhanced_face": "the GFPGAN-enhanced swapped face (with --enhance_output)",
}


def add_swap_arguments(parser: argparse.ArgumentParser, debug_folder: str | None = None) -> None:
    """Every flag of :class:`SwapOptions` (except the input/output paths, which each script adds itself).

    The ``--debug*`` flags are added only with a ``debug_folder`` (their default location).
    """
    add_option_arguments(parser, SwapOptions, OPTION_HELP, CHOICES)
    add_device_arguments(parser)
    for flag, (checkpoint, help_text) in WEIGHT_PATH_FLAGS.items():
        add_weight_path(parser, flag, checkpoint, help_text)
    parser.add_argument("--verbose", action="store_true", help="log more")
    if debug_folder is None:
        return
    add_option_arguments(parser, SwapOptions, DEBUG_HELP)
    for name, what in DEBUG_FILES.items():
        parser.add_argument(f"--debug_{name}_path", default=f"{debug_folder}/{name}.jpg",
                            help=f"where --debug writes {what}")


def add_inference_arguments(parser: argparse.ArgumentParser, examples: str, results: str) -> None:
    """inference.py: the source, target and output files, then every swap flag."""
    parser.add_argument("--source_file_path", default=f"{examples}/astronaut.png", help="image giving the identity")
    parser.add_argument("--target_file_path", default=f"{examples}/cameraman.png", help="image whose face is replaced")
    parser.add_argument("--output_file_path", default=f"{results}/astronaut_cameraman.jpg",
                        help="where the result is written (folders are created; an input is never overwritten)")
    add_swap_arguments(parser, debug_folder=results)


def swap_options_from_arguments(args: argparse.Namespace) -> SwapOptions:
    """The SwapOptions whose fields have a flag of the same name."""
    return options_from_arguments(SwapOptions, args)
