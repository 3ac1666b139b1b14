"""The one list of every checkpoint GhostV2 uses, and the one function that loads them.

Each record says where the released file comes from, where it lives under the weights folder, which
manifest describes its keys, how to build the module (a dotted path, imported only when needed), and
how to normalise the keys the file may carry. Nothing here imports a model family at import time.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from utils.checkpoint import StateDict, build_on_meta, load_into_module, read_state_dict
from utils.errors import CheckpointFormatError, WeightsNotFoundError

logger = logging.getLogger(__name__)

RELEASE_URL = "https://github.com/dimitribarbot/ghostv2/releases/download/v1.0.0/{file}"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS_DIR = REPO_ROOT / "weights"
MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
WEIGHTS_DIR_ENV = "GHOSTV2_WEIGHTS_DIR"
INFERENCE_SCRIPT = "download_inference_models.sh"
ALL_SCRIPT = "download_all_models.sh"


@dataclass(frozen=True)
class Licence:
    """What a user needs to know before choosing a model."""

    code: str
    weights: str
    trained_on: str


@dataclass(frozen=True)
class CheckpointSpec:
    """One released checkpoint file."""

    name: str
    description: str
    release_file: str
    path: str  # relative to the weights folder
    manifest: str  # file name in models/manifests/
    builder: str  # "module:callable" returning an nn.Module with the manifest's keys
    builder_kwargs: Mapping[str, Any] = field(default_factory=dict)
    convert: str | None = None  # "module:callable" mapping file keys to module keys
    describe: str | None = None  # "module:callable" naming what a (mismatching) file holds
    optional_key_suffixes: tuple[str, ...] = ()
    download_set: str = "inference"  # "inference" files are in both scripts, "all" only in the full one
    standin_prefix: str = ""  # prefix the released file is known to carry (stand-ins reproduce it)
    licence: Licence = Licence("", "", "")

    @property
    def url(self) -> str:
        return RELEASE_URL.format(file=self.release_file)

    @property
    def download_script(self) -> str:
        return INFERENCE_SCRIPT if self.download_set == "inference" else ALL_SCRIPT


@dataclass(frozen=True)
class HubModelSpec:
    """A Hugging Face model used by id (or a local folder with the same layout)."""

    name: str
    description: str
    model_id: str
    download_set: str
    licence: Licence


_BN = ("num_batches_tracked",)
# The GhostV2 release carries the original project's own licence.
_BSD_GHOSTV2 = Licence("BSD-3-Clause", "BSD-3-Clause (GhostV2 release)", "LAION-Face + Lagenda, preprocessed by GhostV2")
_WEBFACE = "WebFace4M/WebFace12M (the dataset's terms restrict use to non-commercial research)"

CHECKPOINTS: dict[str, CheckpointSpec] = {
    spec.name: spec
    for spec in [
        CheckpointSpec(
            "ghostv2_generator", "the GhostV2 generator (AEI-Net unet, 2 blocks)",
            "GhostV2_G_unet_2blocks.safetensors", "GhostV2/G_unet_2blocks.safetensors",
            "manifest_GhostV2_G_unet_2blocks.json", "network.aeinet:AEINet",
            {"backbone": "unet", "num_blocks": 2}, convert="network.aeinet:convert_state_dict",
            describe="network.aeinet:describe_state_dict", standin_prefix="_orig_mod.", licence=_BSD_GHOSTV2,
        ),
        CheckpointSpec(
            "ghostv1_generator", "the GhostV1 generator (AEI-Net unet, 2 blocks)",
            "GhostV1_G_unet_2blocks.safetensors", "GhostV1/G_unet_2blocks.safetensors",
            "manifest_GhostV1_G_unet_2blocks.json", "network.aeinet:AEINet",
            {"backbone": "unet", "num_blocks": 2}, convert="network.aeinet:convert_state_dict",
            describe="network.aeinet:describe_state_dict",
            licence=Licence("Apache-2.0", "Apache-2.0 (ai-forever GHOST)", "VGGFace2"),
        ),
        CheckpointSpec(
            "ghostv2_discriminator", "the GhostV2 multiscale discriminator",
            "GhostV2_D_unet_2blocks.safetensors", "GhostV2/D_unet_2blocks.safetensors",
            "manifest_GhostV2_D_unet_2blocks.json", "network.discriminator:MultiscaleDiscriminator",
            convert="network.aeinet:convert_state_dict", describe="network.aeinet:describe_state_dict",
            download_set="all", standin_prefix="_orig_mod.",
            licence=_BSD_GHOSTV2,
        ),
        CheckpointSpec(
            "retinaface", "the RetinaFace-ResNet50 face detector",
            "RetinaFace_Resnet50_Final.safetensors", "RetinaFace/Resnet50_Final.safetensors",
            "manifest_RetinaFace_Resnet50_Final.json", "models.retinaface:RetinaFace",
            convert="models.retinaface:convert_state_dict", optional_key_suffixes=_BN,
            licence=Licence("MIT (biubug6/Pytorch_Retinaface)", "MIT", "WIDER FACE"),
        ),
        CheckpointSpec(
            "arcface", "the ArcFace iresnet100 embedding model",
            "arcface_backbone.safetensors", "ArcFace/backbone.safetensors",
            "manifest_arcface_backbone.json", "models.arcface:IResNet100", optional_key_suffixes=_BN,
            licence=Licence("MIT (insightface code)", "non-commercial research only (insightface models)", "MS1MV3"),
        ),
        CheckpointSpec(
            "adaface", "the AdaFace IR-101 embedding model",
            "adaface_ir101_webface12m.safetensors", "AdaFace/adaface_ir101_webface12m.safetensors",
            "manifest_adaface_ir101_webface12m.json", "models.adaface:AdaFaceIR101",
            {"with_norm": True}, optional_key_suffixes=_BN,
            licence=Licence("MIT (mk-minchul/AdaFace)", "MIT", _WEBFACE),
        ),
        CheckpointSpec(
            "cvl_arcface", "the CVLFace ArcFace IR-101 embedding model",
            "cvlface_arcface_ir101_webface4m.safetensors", "CVLFace/cvlface_arcface_ir101_webface4m.safetensors",
            "manifest_cvlface_arcface_ir101_webface4m.json", "models.cvlface:CVLArcFace",
            convert="models.cvlface:convert_state_dict", optional_key_suffixes=_BN,
            licence=Licence("MIT (mk-minchul/CVLface)", "MIT", _WEBFACE),
        ),
        CheckpointSpec(
            "cvl_adaface", "the CVLFace AdaFace IR-101 embedding model",
            "cvlface_adaface_ir101_webface12m.safetensors", "CVLFace/cvlface_adaface_ir101_webface12m.safetensors",
            "manifest_cvlface_adaface_ir101_webface12m.json", "models.cvlface:CVLAdaFace",
            convert="models.cvlface:convert_state_dict", optional_key_suffixes=_BN,
            licence=Licence("MIT (mk-minchul/CVLface)", "MIT", _WEBFACE),
        ),
        CheckpointSpec(
            "cvl_vit", "the CVLFace AdaFace ViT-base embedding model",
            "cvlface_adaface_vit_base_webface4m.safetensors", "CVLFace/cvlface_adaface_vit_base_webface4m.safetensors",
            "manifest_cvlface_adaface_vit_base_webface4m.json", "models.cvlface:CVLViT",
            convert="models.cvlface:convert_state_dict", optional_key_suffixes=_BN,
            licence=Licence("MIT (mk-minchul/CVLface)", "MIT", _WEBFACE),
        ),
        CheckpointSpec(
            "cvlface_aligner", "the CVLFace differentiable face aligner (DFA mobilenet)",
            "cvlface_DFA_mobilenet.safetensors", "CVLFace/cvlface_DFA_mobilenet.safetensors",
            "manifest_cvlface_DFA_mobilenet.json", "models.cvlface_aligner:DifferentiableFaceAligner",
            convert="models.cvlface:convert_state_dict", optional_key_suffixes=_BN,
            licence=Licence("MIT (mk-minchul/CVLface)", "MIT", "WIDER FACE + CVLFace alignment data"),
        ),
        CheckpointSpec(
            "facenet", "the FaceNet InceptionResnetV1 embedding model",
            "facenet_pytorch.safetensors", "Facenet/facenet_pytorch.safetensors",
            "manifest_facenet_pytorch.json", "models.facenet:InceptionResnetV1", optional_key_suffixes=_BN,
            licence=Licence("MIT (timesler/facenet-pytorch)", "MIT", "VGGFace2"),
        ),
        CheckpointSpec(
            "gfpgan_v1_4", "GFPGAN v1.4 (face enhancement at inference)",
            "GFPGANv1.4.safetensors", "GFPGAN/GFPGANv1.4.safetensors",
            "manifest_GFPGANv1.4.json", "models.gfpgan:GFPGANv1Clean",
            licence=Licence("Apache-2.0 (TencentARC/GFPGAN)", "Apache-2.0", "FFHQ"),
        ),
        CheckpointSpec(
            "gfpgan_v1_2", "GFPGAN v1.2 clean (face enhancement during preprocessing)",
            "GFPGANCleanv1-NoCE-C2.safetensors", "GFPGAN/GFPGANCleanv1-NoCE-C2.safetensors",
            "manifest_GFPGANCleanv1-NoCE-C2.json", "models.gfpgan:GFPGANv1Clean", download_set="all",
            licence=Licence("Apache-2.0 (TencentARC/GFPGAN)", "Apache-2.0", "FFHQ"),
        ),
        CheckpointSpec(
            "face_alignment", "the 2D-FAN-4 68-point landmark network",
            "face_alignment_landmark.safetensors", "FaceAlignment/landmark.safetensors",
            "manifest_face_alignment_landmark.json", "models.fan_landmarks:build_fan",
            licence=Licence("BSD-3-Clause (1adrianb/face-alignment)", "BSD-3-Clause", "300W-LP"),
        ),
        CheckpointSpec(
            "bisenet", "the BiSeNet face parser",
            "bisenet_79999_iter.safetensors", "BiSeNet/79999_iter.safetensors",
            "manifest_bisenet_79999_iter.json", "models.bisenet:BiSeNet",
            licence=Licence("MIT (zllrunning/face-parsing.PyTorch)", "MIT", "CelebAMask-HQ (non-commercial terms)"),
        ),
        CheckpointSpec(
            "adaptive_wing_fan", "the AdaptiveWingLoss FAN (eye loss during training)",
            "WFLW_4HG.safetensors", "AdaptiveWingLoss/WFLW_4HG.safetensors",
            "manifest_WFLW_4HG.json", "models.adaptive_wing:AdaptiveWingFAN", download_set="all",
            licence=Licence("Apache-2.0 (protossw512/AdaptiveWingLoss)", "Apache-2.0", "WFLW"),
        ),
    ]
    + [
        CheckpointSpec(
            f"liveportrait_{part}", f"the LivePortrait {label}",
            f"live_portrait_{part}.safetensors", f"LivePortrait/{part}.safetensors",
            f"manifest_live_portrait_{part}.json", f"models.liveportrait:{builder}",
            convert=convert, download_set="all",
            licence=Licence("MIT (KwaiVGI/LivePortrait)", "MIT", "LivePortrait training data (public + private videos)"),
        )
        for part, label, builder, convert in [
            ("appearance_feature_extractor", "appearance feature extractor", "AppearanceFeatureExtractor", None),
            ("motion_extractor", "motion extractor", "MotionExtractor", None),
            ("warping_module", "warping module", "WarpingNetwork", None),
            ("spade_generator", "SPADE generator", "SPADEDecoder", None),
            ("stitching_retargeting_module", "stitching and retargeting MLPs", "StitchingRetargetingModules", None),
            ("landmark", "203-point landmark network", "LandmarkNetwork", "models.liveportrait:convert_landmark_state_dict"),
        ]
    ]
}

HUB_MODELS: dict[str, HubModelSpec] = {
    "nsfw": HubModelSpec(
        "nsfw", "the NSFW image classifier", "AdamCodd/vit-base-nsfw-detector", "inference",
        Licence("Apache-2.0", "Apache-2.0", "NSFW/SFW image collection (AdamCodd)"),
    ),
    "sdxl_inpainting": HubModelSpec(
        "sdxl_inpainting", "SDXL inpainting", "diffusers/stable-diffusion-xl-1.0-inpainting-0.1", "inference",
        Licence("Apache-2.0 (diffusers)", "CreativeML Open RAIL++-M", "LAION-5B subsets (Stability AI)"),
    ),
}


def weights_root(weights_dir: str | Path | None = None) -> Path:
    """The weights folder: the explicit argument, else $GHOSTV2_WEIGHTS_DIR, else weights/ beside the scripts."""
    if weights_dir:
        return Path(weights_dir)
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env) if env else DEFAULT_WEIGHTS_DIR


def checkpoint_path(name: str, weights_dir: str | Path | None = None) -> Path:
    """Default location of a registered checkpoint under the weights folder."""
    return weights_root(weights_dir) / CHECKPOINTS[name].path


@lru_cache(maxsize=None)
def read_manifest(manifest: str) -> dict:
    """The manifest of a checkpoint (keys, shapes, dtypes of the released file)."""
    with (MANIFEST_DIR / manifest).open() as handle:
        return json.load(handle)


def resolve(dotted: str) -> Callable[..., Any]:
    """Import ``"package.module:attribute"`` lazily."""
    module_name, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build_module(name: str, **builder_overrides: Any) -> torch.nn.Module:
    """Build the (unloaded) module of a registered checkpoint."""
    spec = CHECKPOINTS[name]
    return resolve(spec.builder)(**{**spec.builder_kwargs, **builder_overrides})


def convert_state_dict(name: str, state_dict: StateDict) -> StateDict:
    """Map a file's keys to the module's keys with the checkpoint's own key normalisation."""
    spec = CHECKPOINTS[name]
    return resolve(spec.convert)(state_dict) if spec.convert else dict(state_dict)


def describe_build(name: str, **builder_overrides: Any) -> str:
    """Human-readable name of what ``load_model(name, **overrides)`` expects."""
    spec = CHECKPOINTS[name]
    kwargs = {**spec.builder_kwargs, **builder_overrides}
    settings = ", ".join(f"{key}={value}" for key, value in kwargs.items())
    return spec.description + (f" [{settings}]" if settings else "")


def load_model(
    name: str,
    *,
    device: str | torch.device = "cpu",
    path: str | Path | None = None,
    weights_dir: str | Path | None = None,
    **builder_overrides: Any,
) -> torch.nn.Module:
    """Build a registered model, load its safetensors file strictly, and return it in eval mode.

    The module is built on the meta device and takes the file's (memory-mapped) tensors as its own, so
    no random initialisation runs and no weight is copied on the CPU.

    ``path`` overrides the default file location (the per-model CLI flags); ``builder_overrides``
    change constructor settings (e.g. ``backbone="linknet"``). Raises WeightsNotFoundError,
    CheckpointFormatError or CheckpointMismatchError with a message meant for users.
    """
    spec = CHECKPOINTS[name]
    file_path = Path(path) if path else checkpoint_path(name, weights_dir)
    if file_path.is_dir():
        raise CheckpointFormatError(file_path, "it is a folder; pass the .safetensors file")
    if not file_path.is_file():
        raise WeightsNotFoundError(
            file_path, spec.description, f"Run `bash {spec.download_script}` to download it (or pass its path)."
        )
    state_dict = convert_state_dict(name, read_state_dict(file_path))
    module = build_on_meta(build_module, name, **builder_overrides)
    load_into_module(
        module,
        state_dict,
        expected=describe_build(name, **builder_overrides),
        path=file_path,
        optional_suffixes=spec.optional_key_suffixes,
        describe=resolve(spec.describe) if spec.describe else None,
    )
    return module.to(device).eval()


def specs_for_set(download_set: str) -> list[CheckpointSpec]:
    """Checkpoints fetched by a download script: ``inference`` or ``all``."""
    if download_set not in ("inference", "all"):
        raise ValueError(f"unknown download set {download_set!r} (expected 'inference' or 'all')")
    return [spec for spec in CHECKPOINTS.values() if download_set == "all" or spec.download_set == "inference"]


def looks_like_folder(reference: str) -> bool:
    """Whether a model reference means a folder on disk: it exists, or it is written like a path.

    Hugging Face ids look like ``owner/name``; anything starting with ``.``, ``/`` or ``~``, or with more than
    one slash, was meant as a folder.
    """
    return Path(reference).expanduser().exists() or reference.startswith(("/", ".", "~")) or reference.count("/") > 1


def load_hub_model(reference: str, what: str, load: Callable[..., Any], advice: str,
                   marker: str | None = None) -> Any:
    """Load a Hugging Face model from a local folder, else from the Hugging Face cache, else from the Hub.

    ``load(source, **options)`` does the work; for the cache attempt ``options`` is ``local_files_only=True``.
    A folder must exist, be a folder, and hold ``marker`` (e.g. ``model_index.json``) when one is given. Every
    failure becomes one GhostError naming ``what`` (and, when nothing could be had, ``advice``).
    """
    from utils.errors import GhostError

    if looks_like_folder(reference):
        folder = Path(reference).expanduser()
        if not folder.exists():
            raise GhostError(f"{what} folder {folder} not found: it does not exist")
        if not folder.is_dir():
            raise GhostError(f"{what} {folder} is a file; pass the folder written by save_pretrained")
        if marker is not None and not (folder / marker).is_file():
            raise GhostError(f"{what} folder {folder} not found: it has no {marker}")
        try:
            return load(str(folder))
        except Exception as error:  # noqa: BLE001 - any loading failure is reported the same way
            raise GhostError(f"cannot load the {what} from folder {folder}: {error}") from None
    try:
        return load(reference, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the cache (or incomplete): download it below
        logger.info("%s %s is not in the Hugging Face cache; downloading it", what, reference)
    try:
        return load(reference)
    except Exception as error:  # noqa: BLE001 - network, hub and file errors all mean "not available"
        raise GhostError(
            f"cannot load the {what} {reference!r}: it is not in the Hugging Face cache and downloading it failed "
            f"({type(error).__name__}: {error}). {advice}"
        ) from None
