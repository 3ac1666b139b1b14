"""LivePortrait expression randomisation: random retargeting parameters and the multi-variant pipeline.

A face is given as a ``512×512×3 uint8 RGB`` crop with its 68 FaceAlignment points (crop pixels). The
pipeline finds its 203 LivePortrait landmarks, measures eye/lip openness and head pose (the validity
check), then renders one ``512×512×3 uint8 RGB`` variant per parameter set.
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from models.liveportrait import crop
from models.liveportrait.camera import get_rotation_matrix, transform_keypoint
from models.liveportrait.motion import refine_kp_info
from utils.device import autocast

LANDMARK_CROP_SIZE = 224
# (field, low, high, decimals) in the order the original draws them (13 uniform draws per variant).
DRAWS = (
    ("input_eye_ratio", 0.34, 0.42, 2),
    ("input_lip_ratio", 0.0, 0.3, 2),
    ("input_head_pitch_variation", -8.0, 8.0, 0),
    ("input_head_yaw_variation", -15.0, 15.0, 0),
    ("input_head_roll_variation", -8.0, 8.0, 0),
    ("lip_variation_zero", -0.01, 0.01, 2),
    ("lip_variation_one", -10.0, 10.0, 2),
    ("lip_variation_two", 0.0, 5.0, 2),
    ("lip_variation_three", -10.0, 20.0, 0),
    ("smile", -0.2, 0.6, 2),
    ("eyebrow", -7.5, 7.5, 2),
    ("eyeball_direction_x", -10.0, 10.0, 2),
    ("eyeball_direction_y", -10.0, 10.0, 2),
)
# Validity ranges (inclusive) of a source face: eyes open, mouth closed enough, head nearly frontal.
VALID_RANGES = {"eye_ratio": (0.34, 0.42), "lip_ratio": (0.0, 0.8), "pitch": (-15.0, 15.0), "yaw": (-25.0, 25.0),
                "roll": (-15.0, 15.0)}


@dataclass
class RetargetingParameters:
    """One expression/pose variant (fields in the original's order; angles in degrees)."""

    input_eye_ratio: float = 0.0
    input_lip_ratio: float = 0.0
    input_head_pitch_variation: float = 0.0
    input_head_yaw_variation: float = 0.0
    input_head_roll_variation: float = 0.0
    mov_x: float = 0.0
    mov_y: float = 0.0
    mov_z: float = 1.0
    lip_variation_zero: float = 0.0
    lip_variation_one: float = 0.0
    lip_variation_two: float = 0.0
    lip_variation_three: float = 0.0
    smile: float = 0.0
    wink: float = 0.0
    eyebrow: float = 0.0
    eyeball_direction_x: float = 0.0
    eyeball_direction_y: float = 0.0

    def as_row(self) -> list[float]:
        return [float(value) for value in astuple(self)]


FIELDS = tuple(item.name for item in fields(RetargetingParameters))


def draw_variant_parameters(rng: random.Random) -> RetargetingParameters:
    """One random variant, drawn exactly as the original (``uniform`` then ``round``) from ``rng``."""
    values = {name: round(rng.uniform(low, high), decimals) for name, low, high, decimals in DRAWS}
    return RetargetingParameters(**values)


def draw_face_parameters(rng: random.Random, number_of_variants: int) -> list[RetargetingParameters]:
    """``number_of_variants`` random variants for one face."""
    return [draw_variant_parameters(rng) for _ in range(number_of_variants)]


def apply_expression_edits(delta: torch.Tensor, parameters: RetargetingParameters) -> None:
    """Add one variant's expression edits to its expression keypoints ``21×3`` in place.

    Coefficients are LivePortrait's (keypoint, axis) recipes; an edit whose control is zero is skipped.
    """
    p = parameters
    x, y = p.eyeball_direction_x, p.eyeball_direction_y
    if x + y != 0:
        delta[11, 0] += x * 0.0007 if x > 0 else x * 0.001
        delta[15, 0] += x * 0.001 if x > 0 else x * 0.0007
        delta[11, 1] += y * -0.001
        delta[15, 1] += y * -0.001
        blink = -y / 2.0
        delta[11, 1] += blink * -0.001
        delta[13, 1] += blink * 0.0003
        delta[15, 1] += blink * -0.001
        delta[16, 1] += blink * 0.0003
    if p.smile != 0:
        delta[20, 1] += p.smile * -0.01
        delta[14, 1] += p.smile * -0.02
        delta[17, 1] += p.smile * 0.0065
        delta[17, 2] += p.smile * 0.003
        delta[13, 1] += p.smile * -0.00275
        delta[16, 1] += p.smile * -0.00275
        delta[3, 1] += p.smile * -0.0035
        delta[7, 1] += p.smile * -0.0035
    if p.wink != 0:
        delta[11, 1] += p.wink * 0.001
        delta[13, 1] += p.wink * -0.0003
        delta[17, 0] += p.wink * 0.0003
        delta[17, 1] += p.wink * 0.0003
        delta[3, 1] += p.wink * -0.0003
    if p.eyebrow > 0:
        delta[1, 1] += p.eyebrow * 0.001
        delta[2, 1] += p.eyebrow * -0.001
    elif p.eyebrow < 0:
        delta[1, 0] += p.eyebrow * -0.001
        delta[2, 0] += p.eyebrow * 0.001
        delta[1, 1] += p.eyebrow * 0.0003
        delta[2, 1] += p.eyebrow * -0.0003
    if p.lip_variation_zero != 0:
        delta[19, 0] += p.lip_variation_zero
    if p.lip_variation_one != 0:
        delta[14, 1] += p.lip_variation_one * 0.001
        delta[3, 1] += p.lip_variation_one * -0.0005
        delta[7, 1] += p.lip_variation_one * -0.0005
        delta[17, 2] += p.lip_variation_one * -0.0005
    if p.lip_variation_two != 0:
        delta[20, 2] += p.lip_variation_two * -0.001
        delta[20, 1] += p.lip_variation_two * -0.001
        delta[14, 1] += p.lip_variation_two * -0.001
    if p.lip_variation_three != 0:
        delta[19, 1] += p.lip_variation_three * 0.001
        delta[19, 2] += p.lip_variation_three * 0.0001
        delta[17, 1] += p.lip_variation_three * -0.0001
    if p.mov_x != 0:
        delta[5, 0] += -p.mov_x
    if p.mov_y != 0:
        delta[5, 1] += p.mov_y


@dataclass
class SourceFace:
    """What the pipeline measures on one source face (float32 tensors on the pipeline's device)."""

    landmarks: np.ndarray  # 203×2 float32, pixels of the image analysed (the 512 crop, or the full image with do_crop)
    source_image: torch.Tensor  # 1×3×256×256 RGB [0, 1]
    kp_info: dict[str, torch.Tensor]
    x_s: torch.Tensor  # 1×21×3 posed source keypoints
    eye_ratios: np.ndarray  # 1×2 unrounded (left, right)
    lip_ratio: np.ndarray  # 1×1 unrounded
    eye_ratio_rounded: float
    lip_ratio_rounded: float

    def validity_inputs(self) -> list[float]:
        """[eye ratio, lip ratio, pitch, yaw, roll] as the validity check sees them."""
        return [self.eye_ratio_rounded, self.lip_ratio_rounded,
                *(float(self.kp_info[name].reshape(-1)[0]) for name in ("pitch", "yaw", "roll"))]

    def is_valid(self) -> bool:
        """True when the face is frontal, open-eyed and closed-mouthed enough (bounds inclusive)."""
        return all(low <= value <= high for value, (low, high) in zip(self.validity_inputs(), VALID_RANGES.values()))


@dataclass
class RetargetingResult:
    """Rendered variants ``V×512×512×3 uint8 RGB`` and the intermediate keypoints that produced them."""

    images: np.ndarray
    R_s: torch.Tensor
    R_d: torch.Tensor
    x_d_before_stitching: torch.Tensor
    x_d_after_stitching: torch.Tensor
    eye_inputs: torch.Tensor | None = None
    eye_delta: torch.Tensor | None = None
    lip_inputs: torch.Tensor | None = None
    lip_delta: torch.Tensor | None = None
    feature_volume: torch.Tensor | None = None
    warp: dict[str, torch.Tensor] = field(default_factory=dict)
    logits: torch.Tensor | None = None


class LivePortraitPipeline:
    """The six LivePortrait networks and the steps that turn one face into expression variants."""

    def __init__(self, appearance: torch.nn.Module, motion: torch.nn.Module, warping: torch.nn.Module,
                 generator: torch.nn.Module, stitching: torch.nn.Module, landmark: torch.nn.Module,
                 device: torch.device | str = "cpu", fp16: bool = False, render_batch_size: int = 4) -> None:
        self.appearance, self.motion, self.warping = appearance, motion, warping
        self.generator, self.stitching, self.landmark = generator, stitching, landmark
        self.device = torch.device(device)
        self.fp16 = fp16  # the original runs F, M, W and G under fp16 autocast on CUDA
        self.render_batch_size = max(1, render_batch_size)

    @torch.no_grad()
    def landmarks_203(self, image_rgb: np.ndarray, landmarks_68: np.ndarray) -> np.ndarray:
        """203 LivePortrait landmarks ``203×2`` (image pixels), seeded by 68 FaceAlignment points."""
        runner_crop = crop.crop_image(image_rgb, landmarks_68.astype(np.float32), dsize=LANDMARK_CROP_SIZE,
                                      scale=1.5, vy_ratio=-0.1)
        network_input = torch.from_numpy((runner_crop.image.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        points = self.landmark(network_input.to(self.device))[2]
        points = points[0].float().cpu().numpy().reshape(-1, 2) * LANDMARK_CROP_SIZE
        return crop.transform_points(points, runner_crop.crop_to_original)

    @torch.no_grad()
    def analyse(self, face_rgb: np.ndarray, landmarks_68: np.ndarray, source_rgb: np.ndarray | None = None
                ) -> SourceFace:
        """Landmarks, motion and ratios of a ``512×512×3 uint8 RGB`` face crop (68 points in crop pixels).

        ``source_rgb`` (``H×W×3 uint8 RGB``, default ``face_rgb``) is what the motion and appearance networks
        see; the do_crop mode passes the full image as ``face_rgb`` and its face crop as ``source_rgb``.
        """
        landmarks = self.landmarks_203(face_rgb, landmarks_68)
        source_image = crop.prepare_source(face_rgb if source_rgb is None else source_rgb).to(self.device)
        with autocast(self.device, self.fp16):
            raw = self.motion(source_image)
        kp_info = {key: value.float() for key, value in refine_kp_info(raw).items()}
        eye_ratios = crop.eye_close_ratio(landmarks[None])
        lip_ratio = crop.lip_close_ratio(landmarks[None])
        return SourceFace(
            landmarks=landmarks, source_image=source_image, kp_info=kp_info,
            x_s=transform_keypoint(kp_info), eye_ratios=eye_ratios, lip_ratio=lip_ratio,
            eye_ratio_rounded=round(float(eye_ratios.mean()), 2), lip_ratio_rounded=round(float(lip_ratio[0][0]), 2),
        )

    def analyse_in_image(self, image_rgb: np.ndarray, landmarks_68: np.ndarray, crop_scale: float = 2.3
                         ) -> tuple[SourceFace, crop.Crop]:
        """The do_crop mode's analysis of one face of a full ``H×W×3 uint8 RGB`` image (68 points in pixels).

        The face is cropped at ``crop_scale`` to 512 (its 256 INTER_AREA reduction feeds the networks); the 203
        landmarks and ratios are measured on the full image. Returns the face and the 512 crop, whose
        ``crop_to_original`` matrix pastes the rendered variants back.
        """
        source_crop, source_256 = crop.crop_source_image(image_rgb, landmarks_68.astype(np.float32), crop_scale)
        return self.analyse(image_rgb, landmarks_68, source_rgb=source_256), source_crop

    @torch.no_grad()
    def retarget(self, source: SourceFace, variants: Sequence[RetargetingParameters],
                 keep_intermediates: bool = False) -> RetargetingResult:
        """Render one ``512×512×3 uint8 RGB`` image per parameter set (``V×512×512×3``)."""
        count = len(variants)
        info = source.kp_info
        table = {name: torch.tensor([getattr(v, name) for v in variants], dtype=torch.float32, device=self.device)
                 for name in FIELDS}
        R_s = get_rotation_matrix(info["pitch"], info["yaw"], info["roll"]).expand(count, 3, 3)
        R_d = get_rotation_matrix(info["pitch"] + table["input_head_pitch_variation"][:, None],
                                  info["yaw"] + table["input_head_yaw_variation"][:, None],
                                  info["roll"] + table["input_head_roll_variation"][:, None])
        delta = info["exp"].repeat(count, 1, 1)
        for index, parameters in enumerate(variants):
            apply_expression_edits(delta[index], parameters)
        rotation = (R_d @ R_s.permute(0, 2, 1)) @ R_s
        mov_z = table["mov_z"][:, None, None]
        # The full translation, t_z included, is added to all three coordinates (unlike transform_keypoint).
        x_d = mov_z * info["scale"] * (info["kp"] @ rotation + delta) + info["t"]
        x_s = source.x_s.expand(count, -1, -1)
        result = RetargetingResult(np.empty(0), R_s, R_d, x_d, x_d)

        # Eye and lip retargeting only for variants whose target differs from the rounded source ratio.
        eye_rows = torch.nonzero(table["input_eye_ratio"] - source.eye_ratio_rounded != 0).flatten()
        if eye_rows.numel():
            eye_source = torch.from_numpy(source.eye_ratios).float().to(self.device).expand(eye_rows.numel(), 2)
            result.eye_inputs = torch.cat([eye_source, table["input_eye_ratio"][eye_rows, None]], dim=1)
            result.eye_delta = self.stitching.retarget_eye(x_s[eye_rows], result.eye_inputs)
            x_d = x_d.index_add(0, eye_rows, result.eye_delta)
        lip_rows = torch.nonzero(table["input_lip_ratio"] - source.lip_ratio_rounded != 0).flatten()
        if lip_rows.numel():
            lip_source = torch.from_numpy(source.lip_ratio).float().to(self.device).expand(lip_rows.numel(), 1)
            result.lip_inputs = torch.cat([lip_source, table["input_lip_ratio"][lip_rows, None]], dim=1)
            result.lip_delta = self.stitching.retarget_lip(x_s[lip_rows], result.lip_inputs)
            x_d = x_d.index_add(0, lip_rows, result.lip_delta)
        result.x_d_before_stitching = x_d
        x_d = self.stitching.stitch(x_s, x_d)
        result.x_d_after_stitching = x_d

        with autocast(self.device, self.fp16):
            feature_volume = self.appearance(source.source_image)
        images, warps, logits = [], [], []
        for start in range(0, count, self.render_batch_size):
            rows = slice(start, start + self.render_batch_size)
            batch = x_d[rows].shape[0]
            with autocast(self.device, self.fp16):
                warp = self.warping(feature_volume.expand(batch, -1, -1, -1, -1), kp_driving=x_d[rows],
                                    kp_source=x_s[rows])
                chunk_logits = self.generator.logits(warp["out"]).float()
            images.append(crop.parse_output(torch.sigmoid(chunk_logits)))
            if keep_intermediates:
                warps.append({key: value.float() for key, value in warp.items()})
                logits.append(chunk_logits)
        result.images = np.concatenate(images, axis=0)
        if keep_intermediates:
            result.feature_volume = feature_volume.float()
            result.warp = {key: torch.cat([w[key] for w in warps]) for key in warps[0]}
            result.logits = torch.cat(logits)
        return result


def load_pipeline(device: torch.device | str = "cpu", weights_dir: str | Path | None = None,
                  paths: Mapping[str, str | Path | None] | None = None, fp16: bool = False,
                  render_batch_size: int = 4) -> LivePortraitPipeline:
    """Load the six LivePortrait checkpoints through the registry (``paths`` overrides per checkpoint name)."""
    from models.registry import load_model

    paths = dict(paths or {})
    names = {"appearance": "liveportrait_appearance_feature_extractor", "motion": "liveportrait_motion_extractor",
             "warping": "liveportrait_warping_module", "generator": "liveportrait_spade_generator",
             "stitching": "liveportrait_stitching_retargeting_module", "landmark": "liveportrait_landmark"}
    modules = {role: load_model(name, device=device, path=paths.get(name), weights_dir=weights_dir)
               for role, name in names.items()}
    return LivePortraitPipeline(**modules, device=device, fp16=fp16, render_batch_size=render_batch_size)
