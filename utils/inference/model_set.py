"""The models of a swap, each loaded lazily once and shared through a ModelCache, with per-stage timing.

``SwapModels`` is the base of ``FaceSwapper``: one property per model (what the stage objects of
utils.inference.stages call), keyed in the cache by what it was loaded from, so swappers with other options
reuse what is already in memory. ``_stage`` times a stage and, with ``--release_weights``, hands back the
memory-mapped weight pages of the model it used.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from utils.checkpoint import release_weight_pages
from utils.device import resolve_device, use_fp16
from utils.inference.model_cache import ModelCache
from utils.inference.options import EMBEDDING_PATH_FIELDS, SwapOptions

if TYPE_CHECKING:
    from models.fan_landmarks import LandmarkDetector
    from models.nsfw import NSFWFilter
    from models.retinaface import FaceDetector
    from utils.inference.expression import ExpressionRestorer

logger = logging.getLogger(__name__)


class SwapModels:
    """Every model a swap may need, as lazily loaded properties (see the module doc)."""

    def __init__(self, options: SwapOptions | None = None, models: ModelCache | None = None) -> None:
        self.options = options or SwapOptions()
        self.device = resolve_device(self.options.device)
        self.fp16 = use_fp16(self.device, self.options.fp16_requested)
        self.models = models or ModelCache()
        self.timings: dict[str, float] = {}
        self._release_weights = self.options.release_weights  # off inside weights_resident()

    # ------------------------------------------------------------------------------------------------ timing

    @contextmanager
    def _stage(self, name: str, model: Any = None) -> Iterator[None]:
        """Time a stage; then, with --release_weights, hand back the memory of ``model``'s mapped weights."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if model is not None and self._release_weights:
                release_weights_of([model])
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    @contextmanager
    def weights_resident(self) -> Iterator[None]:
        """Keep every model's weights in memory inside this block, whatever --release_weights says.

        For videos, which run each model on every frame: mapping the weights back per frame made CPU frames
        10-20 % slower (bench/video.py: 8 720p frames in 39.7-42.3 s against 34.1-37.1 s). With
        --release_weights the loaded models' pages are handed back at the end of the block.
        """
        released, self._release_weights = self._release_weights, False
        try:
            yield
        finally:
            self._release_weights = released
            if released:
                release_weights_of(self.models.models())

    def release_networks(self, networks: Iterable[torch.nn.Module]) -> None:
        """With --release_weights (and outside weights_resident), hand back the weight pages of ``networks``."""
        if self._release_weights:
            release_weights_of(networks)

    def _load(self, key: tuple, load: Callable[[], Any]) -> Any:
        engine = self.options.engine
        if engine.runtime != "torch":
            key = (*key, engine)  # an ONNX Runtime twin is another model than the torch network
        if key in self.models:
            return self.models.get(key, load)
        logger.debug("loading %s", key[0])
        with self._stage("load"):
            return self.models.get(key, load)

    def _registered(self, name: str, path: str | None, **settings: Any) -> torch.nn.Module:
        """The registry's checkpoint ``name`` (from ``path``, else the weights folder) built with ``settings``."""
        weights_dir = self.options.weights_dir

        def load():
            from models.registry import load_model

            return load_model(name, device=self.device, path=path, weights_dir=weights_dir, **settings)

        return self._load((name, path, weights_dir, tuple(settings.items())), load)

    def _on_engine(self, name: str, network: torch.nn.Module, path: str | None) -> torch.nn.Module:
        """``network`` (registry checkpoint ``name``, from ``path`` or the weights folder) itself under the torch
        runtime, else its ONNX Runtime twin (utils.ort), exported beside the checkpoint on first use."""
        engine = self.options.engine
        if engine.runtime == "torch":
            return network
        from models.registry import checkpoint_path
        from utils.ort import wrap_network
        from utils.ort.networks import example_inputs

        checkpoint = Path(path) if path else checkpoint_path(name, self.options.weights_dir)
        return wrap_network(name, network, checkpoint, example_inputs(name), engine, self.device)

    # ------------------------------------------------------------------------------------------------ models

    @property
    def detector(self) -> FaceDetector:
        """RetinaFace (``models.retinaface.FaceDetector``) with ``--detection_threshold``."""
        options = self.options

        def load():
            from models.retinaface import load_face_detector

            detector = load_face_detector(
                device=self.device, path=options.retina_face_model_path, weights_dir=options.weights_dir,
                threshold=options.detection_threshold, max_size=options.detection_max_size,
                upscale=options.detection_upscale,
            )
            detector.model = self._on_engine("retinaface", detector.model, options.retina_face_model_path)
            return detector

        return self._load(("retinaface", options.retina_face_model_path, options.weights_dir,
                           options.detection_threshold, options.detection_max_size, options.detection_upscale), load)

    @property
    def landmark_detector(self) -> LandmarkDetector:
        """The 68-point FAN (``models.fan_landmarks.LandmarkDetector``), for the ghost paste-back."""
        options = self.options

        def load():
            from models.fan_landmarks import load_landmark_detector

            detector = load_landmark_detector(
                device=self.device, path=options.face_alignment_model_path, weights_dir=options.weights_dir
            )
            detector.model = self._on_engine("face_alignment", detector.model, options.face_alignment_model_path)
            return detector

        return self._load(("face_alignment", options.face_alignment_model_path, options.weights_dir), load)

    @property
    def embedder(self) -> torch.nn.Module:
        """The ``--face_embeddings`` model (``models.embeddings.FaceEmbedder``)."""
        options = self.options
        path = getattr(options, EMBEDDING_PATH_FIELDS[options.face_embeddings])

        def load():
            from models.embeddings import load_face_embedder

            embedder = load_face_embedder(options.face_embeddings, device=self.device, path=path,
                                          weights_dir=options.weights_dir)
            embedder.model = self._on_engine(options.face_embeddings, embedder.model, path)
            return embedder

        return self._load((options.face_embeddings, path, options.weights_dir), load)

    @property
    def generator(self) -> torch.nn.Module:
        """The AEI-Net generator from ``--G_path`` with ``--backbone/--num_blocks/--align_corners``."""
        options = self.options
        settings = {"backbone": options.backbone, "num_blocks": options.num_blocks,
                    "align_corners": options.align_corners}

        def load():
            from models.registry import load_model

            generator = load_model("ghostv2_generator", device=self.device, path=options.G_path,
                                   weights_dir=options.weights_dir, **settings)
            return self._on_engine("ghostv2_generator", generator, options.G_path)

        return self._load(("ghostv2_generator", options.G_path, options.weights_dir, tuple(settings.items())), load)

    @property
    def gfpgan(self) -> torch.nn.Module:
        """GFPGAN v1.4 (``--enhance_output``)."""
        options = self.options

        def load():
            from models.gfpgan import load_gfpgan

            gfpgan = load_gfpgan("v1.4", device=self.device, path=options.gfpgan_model_path,
                                 weights_dir=options.weights_dir)
            return self._on_engine("gfpgan_v1_4", gfpgan, options.gfpgan_model_path)

        return self._load(("gfpgan_v1_4", options.gfpgan_model_path, options.weights_dir), load)

    @property
    def face_parser(self) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
        """BiSeNet as a batched callable: ``512×512×3 uint8 BGR`` faces → ``512×512`` uint8 class labels each."""
        options = self.options

        def load():
            from models.bisenet import load_bisenet, parse_faces

            model = load_bisenet(device=self.device, path=options.face_parser_model_path,
                                 weights_dir=options.weights_dir)
            return functools.partial(parse_faces, model=self._on_engine("bisenet", model,
                                                                        options.face_parser_model_path))

        return self._load(("bisenet", options.face_parser_model_path, options.weights_dir), load)

    @property
    def expression_restorer(self) -> ExpressionRestorer:
        """The LivePortrait expression restorer stage (its four networks load at its first use, into the cache)."""
        from utils.inference.expression import ExpressionRestorer

        return ExpressionRestorer(self.device, self.options.weights_dir, fp16=self.fp16, models=self.models)

    @property
    def cvlface_aligner(self) -> torch.nn.Module:
        """The CVLFace DFA network of the ``cvlface`` align mode."""
        return self._registered("cvlface_aligner", self.options.cvlface_aligner_model_path)

    @property
    def nsfw_filter(self) -> NSFWFilter:
        """The NSFW classifier (``models.nsfw.NSFWFilter``) from ``--nsfw_model`` (a Hub id or a folder)."""
        from models.registry import HUB_MODELS

        model = self.options.nsfw_model or HUB_MODELS["nsfw"].model_id

        def load():
            from models.nsfw import NSFWFilter

            return NSFWFilter.from_pretrained(model, self.device)

        return self._load(("nsfw", model), load)

    @property
    def inpainter(self) -> Any:
        """The SDXL inpainting pipeline from ``--inpainting_model`` (a Hub id or a folder)."""
        from models.registry import HUB_MODELS

        model = self.options.inpainting_model or HUB_MODELS["sdxl_inpainting"].model_id

        def load():
            from utils.inpainting import load_inpainting_pipeline

            return load_inpainting_pipeline(model, device=self.device, fp16=self.fp16)

        return self._load(("sdxl_inpainting", model), load)

    def load_models(self) -> None:
        """Load now every model the options need (otherwise each loads at its first use)."""
        _ = self.nsfw_filter, self.detector, self.embedder, self.generator
        if self.options.align_mode == "cvlface":
            _ = self.cvlface_aligner
        if self.options.uses_landmarks:
            _ = self.landmark_detector
        if self.options.enhance_output:
            _ = self.gfpgan
        if self.options.uses_face_parser:
            _ = self.face_parser
        if self.options.restores_expression:
            with self._stage("load"):
                self.expression_restorer.load()
        if self.options.uses_inpainting:
            _ = self.inpainter


def networks_of(model: Any) -> list[torch.nn.Module]:
    """The torch networks inside a loaded model: the module itself, a wrapper's ``.model`` (detectors, NSFW
    filter), a partial's module arguments (the face parser) or a diffusers pipeline's components."""
    if isinstance(model, torch.nn.Module):
        return [model]
    if isinstance(model, functools.partial):
        candidates = list(model.keywords.values())
    elif hasattr(model, "components"):
        candidates = list(model.components.values())
    else:
        candidates = [getattr(model, "model", None)]
    return [candidate for candidate in candidates if isinstance(candidate, torch.nn.Module)]


def release_weights_of(models: Iterable[Any]) -> None:
    """Hand back the memory-mapped weight pages of every network inside ``models`` (utils.checkpoint)."""
    for model in models:
        for network in networks_of(model):
            release_weight_pages(network)
