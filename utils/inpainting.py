"""SDXL inpainting of the band around a pasted face's edge (the last step of inference).

diffusers is imported only when a pipeline is loaded, so the rest of GhostV2 works without it. The
steps follow ../shared/conformance/geometry/README.md §5; §6.4 lists the library pitfalls handled
here (no ``pipeline.enable_vae_tiling`` in diffusers 0.42, xformers only on CUDA).
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from models.registry import HUB_MODELS, load_hub_model, looks_like_folder
from utils.device import use_fp16
from utils.errors import GhostError
from utils.masks import edge_mask, padding_to_multiple

LOGGER = logging.getLogger(__name__)

INPAINT_PROMPT = "a person's face"
INPAINT_NEGATIVE_PROMPT = (
    "deformed, glitch, noise, noisy, cross-eyed, bad anatomy, ugly, disfigured, sloppy, duplicate, mutated"
)


@dataclass(frozen=True)
class InpaintingSettings:
    """Arguments of the SDXL call (the original's values)."""

    prompt: str = INPAINT_PROMPT
    negative_prompt: str = INPAINT_NEGATIVE_PROMPT
    num_inference_steps: int = 20
    guidance_scale: float = 8.0
    strength: float = 0.4  # only the last 40 % of the schedule runs: the band is refined, not redrawn
    padding_mask_crop: int = 64  # diffusers crops around the band (grown by this) and works at full size there
    mask_blur: int = 4  # PIL Gaussian blur radius of the band, also the alpha of the final overlay
    resolution_multiple: int = 8  # the VAE downsamples by 8


@dataclass(frozen=True)
class EdgeInpainting:
    """Result of :func:`inpaint_face_edges` with its intermediate values (for debugging and tests)."""

    image: np.ndarray  # H×W×3 uint8 BGR, the final picture
    edge_mask: np.ndarray  # H×W uint8 0/255, the band that was repainted
    padding_wh: tuple[int, int]  # pixels added on the right and bottom (edge replication)
    blurred_mask: np.ndarray  # (H+pad)×(W+pad) uint8, the mask given to the pipeline
    crop_region_xyxy: tuple[int, int, int, int]  # the box diffusers works in (from padding_mask_crop)
    pipeline_output_mode: str  # PIL mode of the pipeline's image ("RGB")


def _has_fp16_variant(folder: Path) -> bool:
    return any(folder.glob("*/*.fp16.safetensors"))


def load_inpainting_pipeline(
    model: str | Path | None = None, device: torch.device | str = "cpu", fp16: bool = True
) -> Any:
    """Load the SDXL inpainting pipeline from a Hugging Face model id or a local folder.

    ``model`` defaults to ``HUB_MODELS["sdxl_inpainting"].model_id``. A model id is looked up in the
    Hugging Face cache first (no network), then downloaded. fp16 weights are used on CUDA when
    ``fp16`` holds, float32 elsewhere. Raises GhostError (with what to do) when it cannot be loaded.
    """
    try:
        from diffusers import AutoPipelineForInpainting
    except ImportError as error:
        raise GhostError("SDXL inpainting needs the 'diffusers' package (pip install -r requirements.txt)") from error
    device = torch.device(device)
    half = use_fp16(device, fp16)
    reference = str(model) if model else HUB_MODELS["sdxl_inpainting"].model_id
    options: dict[str, Any] = {"dtype": torch.float16 if half else torch.float32, "use_safetensors": True}

    def load(source: str, **extra: Any) -> Any:
        variant = {}
        # A local folder may hold float32 files only; the Hub model has an fp16 variant.
        if half and (not looks_like_folder(source) or _has_fp16_variant(Path(source))):
            variant["variant"] = "fp16"
        return AutoPipelineForInpainting.from_pretrained(source, **options, **variant, **extra)

    pipeline = load_hub_model(reference, "SDXL inpainting model", load, advice=(
        "Connect to the internet once, point HF_HOME to a cache that has it, pass a local folder, or turn "
        "inpainting off (--no-inpaint_output)."), marker="model_index.json")

    if device.type == "cuda" and importlib.util.find_spec("xformers") is not None:
        try:
            pipeline.enable_xformers_memory_efficient_attention()
        except Exception as error:  # noqa: BLE001 - an optional speed-up; the default attention works
            LOGGER.warning("xformers attention not enabled: %s", error)
    # diffusers 0.42 dropped the pipeline-level enable_vae_tiling(); the VAE method is the same thing.
    pipeline.vae.enable_tiling()
    return pipeline.to(device)


def inpaint_face_edges(
    pipeline: Any,
    image_bgr: np.ndarray,
    face_mask: np.ndarray,
    generator: torch.Generator | None = None,
    settings: InpaintingSettings = InpaintingSettings(),
) -> EdgeInpainting:
    """Repaint the band around the border of a pasted face with SDXL inpainting.

    ``image_bgr``: ``H×W×3 uint8 BGR`` paste-back result; ``face_mask``: its ``H×W uint8`` face mask (the
    second value of ``paste_back`` for ``ghost`` / ``facexlib_with_parser``, with some pixels equal to
    255). ``generator`` makes the result reproducible. Returns an :class:`EdgeInpainting` whose
    ``image`` is the ``H×W×3 uint8 BGR`` result; outside the blurred band it equals the input.
    """
    height, width = image_bgr.shape[:2]
    band = edge_mask(face_mask)
    pad_width, pad_height = padding_to_multiple((width, height), settings.resolution_multiple)
    rgba = np.pad(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGBA), ((0, pad_height), (0, pad_width), (0, 0)), mode="edge")
    padded_band = np.pad(band, ((0, pad_height), (0, pad_width)), mode="edge")
    padded_width, padded_height = width + pad_width, height + pad_height

    blurred = pipeline.mask_processor.blur(Image.fromarray(padded_band), blur_factor=settings.mask_blur)
    crop_region = pipeline.mask_processor.get_crop_region(
        blurred, padded_width, padded_height, pad=settings.padding_mask_crop
    )
    output = pipeline(
        prompt=settings.prompt,
        negative_prompt=settings.negative_prompt,
        image=Image.fromarray(rgba),
        mask_image=blurred,
        width=padded_width,
        height=padded_height,
        num_inference_steps=settings.num_inference_steps,
        guidance_scale=settings.guidance_scale,
        strength=settings.strength,
        padding_mask_crop=settings.padding_mask_crop,
        generator=generator,
    ).images[0]
    result = np.asarray(output)[:height, :width]
    conversion = cv2.COLOR_RGBA2BGR if result.shape[2] == 4 else cv2.COLOR_RGB2BGR
    return EdgeInpainting(
        image=cv2.cvtColor(np.ascontiguousarray(result), conversion),
        edge_mask=band,
        padding_wh=(pad_width, pad_height),
        blurred_mask=np.array(blurred),
        crop_region_xyxy=tuple(int(value) for value in crop_region),
        pipeline_output_mode=output.mode,
    )
