"""Every setting of a swap in one frozen record, each default written once (inference.py's flags are built from it).

The face-quality settings (masks, the target's mouth, the expression restorer, pixel boost) are fields of their own
records, which SwapOptions extends: their defaults, checks and helpers stay in utils/face_masks.py,
utils/inference/expression.py and utils/inference/pixel_boost.py, and every consumer of SwapOptions (flags, the web
UI's panel, evaluate.py's --compare_G_path settings) sees them as flat fields.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.embeddings import DEFAULT_FACE_EMBEDDINGS, FACE_EMBEDDING_NAMES
from models.retinaface import DEFAULT_MAX_SIZE, DEFAULT_THRESHOLD
from network.aeinet import BACKBONES
from utils.align import DEFAULT_ALIGN_MODE, check_align_mode
from utils.errors import GhostError
from utils.face_masks import FaceMaskOptions
from utils.inference.expression import ExpressionOptions
from utils.inference.pixel_boost import PixelBoostOptions
from utils.ort.options import RuntimeOptions
from utils.paste_back import MODES_WITH_MASK, PASTE_BACK_MODES

ALIGNED_FACE_SIZE = 256
GFPGAN_FACE_SIZE = 512
PRECISIONS = ("32", "32-true", "16", "16-mixed", "16-true")
STAGES = ("load", "read", "nsfw", "detect", "align", "landmarks", "embed", "generate", "expression", "enhance", "parse",
          "paste", "inpaint", "write")
# The per-model path flags of the original inference.py, by --face_embeddings name.
EMBEDDING_PATH_FIELDS = {
    "arcface": "arcface_model_path",
    "adaface": "adaface_model_path",
    "cvl_arcface": "cvl_arcface_model_path",
    "cvl_adaface": "cvl_adaface_model_path",
    "cvl_vit": "cvl_vit_model_path",
    "facenet": "facenet_model_path",
}


@dataclass(frozen=True)
class SwapOptions(FaceMaskOptions, ExpressionOptions, PixelBoostOptions):
    """Every setting of a swap; field names are inference.py's flags (the original project's names).

    Paths left as None resolve to the registry's file under ``weights_dir``; ``nsfw_model`` and
    ``inpainting_model`` take a Hugging Face id or a local folder (None: the registry's id). The face-quality
    fields come from the three base records; their defaults leave the swap as it was.
    """

    G_path: str | None = None
    backbone: str = "unet"
    num_blocks: int = 2
    align_corners: bool = True
    face_embeddings: str = DEFAULT_FACE_EMBEDDINGS
    align_mode: str = DEFAULT_ALIGN_MODE
    paste_back_mode: str = "ghost"
    enhance_output: bool = True
    inpaint_output: bool = True
    detection_threshold: float = DEFAULT_THRESHOLD
    # The original inference.py detects at a 1280 px long side, small photos scaled up (faces/README.md §1.3);
    # a smaller limit or --no-detection_upscale is our speed option (bench/detection_size.py).
    detection_max_size: int | None = DEFAULT_MAX_SIZE
    detection_upscale: bool = True
    # Weights are memory-mapped from their checkpoints; pages handed back after a stage stay in the OS file cache,
    # so the next use maps them again from memory, not from disk. Video frames keep them (FaceSwapper
    # .weights_resident); bench/inference.py and bench/video.py measure both settings.
    release_weights: bool = True
    source_face_index: int = 0
    target_face_index: int = 0
    device: str = "auto"
    precision: str | None = None
    weights_dir: str | None = None
    arcface_model_path: str | None = None
    adaface_model_path: str | None = None
    cvl_arcface_model_path: str | None = None
    cvl_adaface_model_path: str | None = None
    cvl_vit_model_path: str | None = None
    facenet_model_path: str | None = None
    gfpgan_model_path: str | None = None
    face_alignment_model_path: str | None = None
    face_parser_model_path: str | None = None
    retina_face_model_path: str | None = None
    cvlface_aligner_model_path: str | None = None
    nsfw_model: str | None = None
    inpainting_model: str | None = None
    inpainting_seed: int | None = None
    check_output_nsfw: bool = True
    debug: bool = False
    debug_ghost_landmarks: bool = False
    debug_source_face_path: str | None = None
    debug_target_face_path: str | None = None
    debug_swapped_face_path: str | None = None
    debug_enhanced_face_path: str | None = None
    # What runs the networks (torch or ONNX Runtime, its provider and threads); flags from RuntimeOptions.
    engine: RuntimeOptions = RuntimeOptions()

    def __post_init__(self) -> None:
        for record in (FaceMaskOptions, ExpressionOptions, PixelBoostOptions):
            record.__post_init__(self)
        check_align_mode(self.align_mode)
        for name, value, choices in (
            ("paste_back_mode", self.paste_back_mode, PASTE_BACK_MODES),
            ("face_embeddings", self.face_embeddings, FACE_EMBEDDING_NAMES),
            ("backbone", self.backbone, BACKBONES),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        if self.detection_max_size not in (None, -1) and self.detection_max_size <= 0:
            raise GhostError(f"--detection_max_size must be positive or -1 (got {self.detection_max_size})")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")

    @property
    def uses_landmarks(self) -> bool:
        return self.paste_back_mode == "ghost"

    @property
    def uses_parser(self) -> bool:
        """True when the paste-back mode parses the swapped face (facexlib_with_parser)."""
        return self.paste_back_mode == "facexlib_with_parser"

    @property
    def parses_swapped_face(self) -> bool:
        """True when BiSeNet parses the swapped face (the paste-back mode, or the region mask)."""
        return self.uses_parser or self.needs_face_labels

    @property
    def uses_face_parser(self) -> bool:
        """True when BiSeNet runs at all (on the swapped face, or on the target for occlusion and the mouth)."""
        return self.parses_swapped_face or self.needs_target_labels

    @property
    def uses_inpainting(self) -> bool:
        # Only the paste-back modes that return a face mask can be followed by inpainting.
        return self.inpaint_output and self.paste_back_mode in MODES_WITH_MASK

    @property
    def fp16_requested(self) -> bool:
        return self.precision is not None and self.precision.startswith("16")


