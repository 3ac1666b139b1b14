"""The command-line flags of inference.py and demo.py (the original project's names), built from SwapOptions.

Defaults live in :class:`utils.inference.options.SwapOptions`; this module only names and explains them.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from models.embeddings import FACE_EMBEDDING_NAMES
from network.aeinet import BACKBONES
from utils.align import ALIGN_MODES
from utils.cli import (
    add_device_arguments,
    add_option_arguments,
    add_weight_path,
    options_from_arguments,
)
from utils.inference.face_options import add_face_option_arguments
from utils.inference.options import EMBEDDING_PATH_FIELDS, PRECISIONS, SwapOptions
from utils.inference.selection import DEFAULT_SIMILARITY_TH, FaceSelection
from utils.inference.video import VideoOptions
from utils.ort.options import RUNTIME_CHOICES, RUNTIME_HELP, RuntimeOptions
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
    "release_weights": "after each stage of a photo swap, and after a video, give back the memory holding the "
                       "models' weights (they stay in the system's file cache and map back on the next use): a "
                       "lower peak RSS; video frames always keep them; --no-release_weights keeps them resident",
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


VIDEO_HELP = {
    "batch_size": "video frames detected together, and faces through the generator and GFPGAN together "
                  "[default: 8 on CUDA, 1 on CPU, where batching is slower and multiplies the memory]",
    "smooth_window": "average each face's 5 keypoints and box over +-N frames of its track (GHOST v1: 2); 0 = off",
    "keep_audio": "keep the audio streams (copied as they are when the output container takes their codec, "
                  "else re-encoded)",
    "video_codec": "video encoder: auto = the container's default (H.264 for .mp4/.mkv/.mov, VP9 for .webm); "
                   "ffv1 (in .mkv) is lossless",
    "video_quality": "constant-quality factor (CRF) of H.264/H.265/VP9: lower is better, 18 is visually lossless, "
                     "0 lossless for H.264",
    "video_preset": "x264/x265 speed preset (ultrafast ... veryslow)",
    "nsfw_check_seconds": "the NSFW classifier checks one target frame (and its output) per this many seconds "
                          "of video",
    "video_detection_upscale": "scale video frames smaller than --detection_max_size up before detection, as "
                               "photos are (off: frames are detected at their own size, faster)",
}


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """Which target faces are replaced and by which source (see utils.inference.selection)."""
    parser.add_argument("--target_faces_paths", nargs="+", default=[], metavar="PHOTO",
                        help="one photo per --source_file_path showing the target face that source replaces; "
                             "every face whose identity matches it is replaced (overrides --target_face_index)")
    parser.add_argument("--similarity_th", type=float, default=DEFAULT_SIMILARITY_TH,
                        help="a face matches a reference photo when the cosine similarity of their "
                             "--face_embeddings identities is at least this (in [-1, 1])")
    add_option_arguments(parser, FaceSelection, {"swap_all_faces": "replace every face with the first source"})


def add_swap_arguments(parser: argparse.ArgumentParser, debug_folder: str | None = None) -> None:
    """Every flag of :class:`SwapOptions` (except the input/output paths, which each script adds itself).

    The ``--debug*`` flags are added only with a ``debug_folder`` (their default location).
    """
    add_option_arguments(parser, SwapOptions, OPTION_HELP, CHOICES)
    add_face_option_arguments(parser)
    add_device_arguments(parser)
    add_option_arguments(parser, RuntimeOptions, RUNTIME_HELP, RUNTIME_CHOICES)
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
    parser.add_argument("--source_file_path", nargs="+", default=[f"{examples}/astronaut.png"], metavar="IMAGE",
                        help="image(s) giving the identity; several go with --target_faces_paths")
    parser.add_argument("--target_file_path", default=f"{examples}/cameraman.png",
                        help="image or video whose faces are replaced (a video is recognised by its content)")
    parser.add_argument("--output_file_path", default=f"{results}/astronaut_cameraman.jpg",
                        help="where the result is written (folders are created; an input is never overwritten)")
    parser.add_argument("--target_folder", default=None,
                        help="swap into every image and video of this folder tree instead of --target_file_path")
    parser.add_argument("--output_folder", default=None, help="where --target_folder's tree is mirrored")
    add_option_arguments(parser, FolderFlags, {"overwrite": "redo outputs of --target_folder that already exist"})
    add_selection_arguments(parser)
    add_option_arguments(parser, VideoOptions, VIDEO_HELP)
    add_swap_arguments(parser, debug_folder=results)


@dataclass(frozen=True)
class FolderFlags:
    """inference.py's folder-mode switches."""

    overwrite: bool = False


def swap_options_from_arguments(args: argparse.Namespace) -> SwapOptions:
    """The SwapOptions whose fields have a flag of the same name (``engine`` from the runtime flags); GhostError,
    one line, for a bad value or combination of the face options, before anything loads."""
    return options_from_arguments(SwapOptions, args, engine=options_from_arguments(RuntimeOptions, args))


def selection_from_arguments(args: argparse.Namespace) -> FaceSelection:
    """The FaceSelection of --target_face_index, --swap_all_faces, --target_faces_paths and --similarity_th."""
    return FaceSelection(target_face_indices=(args.target_face_index,), swap_all_faces=args.swap_all_faces,
                         reference_face_paths=tuple(args.target_faces_paths), similarity_th=args.similarity_th)


def video_options_from_arguments(args: argparse.Namespace) -> VideoOptions:
    """The VideoOptions whose fields have a flag of the same name."""
    return options_from_arguments(VideoOptions, args)
