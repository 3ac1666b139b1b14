"""The NSFW gate: a Hugging Face image classifier run on the target image before any face swap.

The released pipeline uses ``AdamCodd/vit-base-nsfw-detector`` (a ViT-B/16 at 384 px, labels
"sfw"/"nsfw") with the PIL-based ViT image processor of transformers 4.x. transformers 5 made the
torchvision processor the default, which rejects negative-stride (channel-reversed) arrays and
resizes slightly differently, so we ask for the PIL backend explicitly and pass a contiguous RGB copy
(conformance kit faces/README.md §5). The model is looked up in the Hugging Face cache first and only
then downloaded; a local ``save_pretrained`` folder works the same way (``--nsfw_model PATH``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.registry import HUB_MODELS, INFERENCE_SCRIPT, load_hub_model
from utils.errors import NSFWContentError

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = HUB_MODELS["nsfw"].model_id
NSFW_LABEL = "nsfw"


def _load_pretrained(model_id_or_path: str) -> tuple[Any, Any]:
    """(image processor, classifier) from a local folder, the Hugging Face cache, or the hub, in that order."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    def load(source: str, **options: Any) -> tuple[Any, Any]:
        processor = AutoImageProcessor.from_pretrained(source, backend="pil", **options)
        model = AutoModelForImageClassification.from_pretrained(source, use_safetensors=True, **options)
        return processor, model

    advice = (f"Run `bash {INFERENCE_SCRIPT}` while online (it fills the cache), or pass --nsfw_model PATH with a "
              "local copy (a save_pretrained folder).")
    return load_hub_model(str(model_id_or_path), "NSFW classifier", load, advice)


class NSFWFilter:
    """Classifies images as safe or not; ``check`` refuses NSFW images with NSFWContentError."""

    def __init__(self, model: Any, processor: Any, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        labels = {str(label).lower() for label in model.config.id2label.values()}
        if NSFW_LABEL not in labels:
            logger.warning("the NSFW classifier has no %r label (its labels: %s): it will never flag an image",
                           NSFW_LABEL, sorted(labels))

    @classmethod
    def from_pretrained(
        cls, model_id_or_path: str | Path | None = None, device: str | torch.device = "cpu"
    ) -> NSFWFilter:
        """Load a classifier by hub id (default: the released one) or from a save_pretrained folder."""
        processor, model = _load_pretrained(str(model_id_or_path or DEFAULT_MODEL_ID))
        return cls(model, processor, device)

    @torch.no_grad()
    def logits(self, image_bgr: np.ndarray) -> torch.Tensor:
        """Class logits of one H x W x 3 uint8 BGR image -> [1, num_labels] float32 (on the CPU)."""
        batch = self.processor(images=np.ascontiguousarray(image_bgr[:, :, ::-1]), return_tensors="pt")
        batch = {key: value.to(self.device) for key, value in batch.items()}
        return self.model(**batch).logits.float().cpu()

    def label(self, image_bgr: np.ndarray) -> str:
        """The predicted label (e.g. "sfw" or "nsfw") of one H x W x 3 uint8 BGR image."""
        return str(self.model.config.id2label[int(self.logits(image_bgr).argmax(-1)[0])])

    def is_nsfw(self, image_bgr: np.ndarray) -> bool:
        """Whether the classifier labels the H x W x 3 uint8 BGR image "nsfw"."""
        return self.label(image_bgr).lower() == NSFW_LABEL

    def check(self, image_bgr: np.ndarray, what: str = "target image") -> None:
        """Raise NSFWContentError when the image is classified NSFW (``what`` names it in the message)."""
        if self.is_nsfw(image_bgr):
            raise NSFWContentError(f"the {what} was classified as NSFW; nothing was written")
