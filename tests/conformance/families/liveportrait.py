"""Conformance checks of the LivePortrait family (models/liveportrait/): six manifests and the lp_* vectors."""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import torch

from models.liveportrait import (
    AppearanceFeatureExtractor,
    LandmarkNetwork,
    MotionExtractor,
    SPADEDecoder,
    StitchingRetargetingModules,
    WarpingNetwork,
)
from models.liveportrait import camera, crop
from models.liveportrait.motion import refine_kp_info
from models.liveportrait.retargeting import (
    LivePortraitPipeline,
    RetargetingParameters,
    draw_face_parameters,
)
from tests.conformance.runner import Checked, Tolerance, Vector, module_layout

BUILDERS: dict[str, Callable[[], torch.nn.Module]] = {
    "manifest_live_portrait_appearance_feature_extractor": AppearanceFeatureExtractor,
    "manifest_live_portrait_motion_extractor": MotionExtractor,
    "manifest_live_portrait_warping_module": WarpingNetwork,
    "manifest_live_portrait_spade_generator": SPADEDecoder,
    "manifest_live_portrait_stitching_retargeting_module": StitchingRetargetingModules,
    "manifest_live_portrait_landmark": LandmarkNetwork,
}


def _layout(builder: Callable[[], torch.nn.Module]) -> Callable[[dict], dict]:
    def layout(manifest: dict) -> dict:
        with torch.device("meta"):
            return module_layout(builder())
    return layout


MANIFESTS = {stem: _layout(builder) for stem, builder in BUILDERS.items()}


def stats(tensor: torch.Tensor) -> torch.Tensor:
    """The kit's float64 reductions [sum, mean, std (N-1), mean|x|, min, max] of a whole tensor."""
    values = torch.as_tensor(tensor).detach().to(torch.float64).flatten()
    return torch.stack([values.sum(), values.mean(), values.std(), values.abs().mean(), values.min(), values.max()])


def uint8_tolerance(meta: dict) -> Tolerance:
    """±1 for images produced by float→uint8 truncation, as the vectors' tolerance text allows."""
    text = str(meta.get("tolerance", ""))
    return Tolerance(absolute=1.0) if "+-1" in text or "±1" in text else Tolerance()


@cache
def _constants(folder: str) -> dict[str, float | list[float]]:
    manifest = json.loads((Path(folder) / "manifest_live_portrait_landmark.json").read_text())
    return {key: entry["value_in_conformance_standin"] for key, entry in manifest["onnx_constants"].items()}


def filled_landmark_network(vector: Vector) -> LandmarkNetwork:
    """L filled with fill.py, then its graph constants set to the manifest's stand-in values."""
    network = vector.fill(LandmarkNetwork())
    state = network.state_dict()
    for key, value in _constants(str(vector.folder)).items():
        state[key] = torch.tensor(value, dtype=state[key].dtype).reshape(state[key].shape)
    network.load_state_dict(state)
    return network.eval()


def filled_pipeline(vector: Vector) -> LivePortraitPipeline:
    """All six networks with the kit's stand-in weights, in float32 on the CPU."""
    return LivePortraitPipeline(
        appearance=vector.fill(AppearanceFeatureExtractor()).eval(),
        motion=vector.fill(MotionExtractor()).eval(),
        warping=vector.fill(WarpingNetwork()).eval(),
        generator=vector.fill(SPADEDecoder()).eval(),
        stitching=vector.fill(StitchingRetargetingModules()).eval(),
        landmark=filled_landmark_network(vector),
    )


@torch.no_grad()
def appearance_feature_extractor(vector: Vector) -> dict:
    network = vector.fill(AppearanceFeatureExtractor()).eval()
    volume = network(vector.inputs["x"])
    return {"feature_3d_center": volume[:, :, 4:12, 24:40, 24:40], "feature_3d_strided": volume[:, :, ::4, ::8, ::8],
            "feature_3d_stats": stats(volume)}


@torch.no_grad()
def motion_extractor(vector: Vector) -> dict:
    network = vector.fill(MotionExtractor()).eval()
    raw = network(vector.inputs["x"])
    info = refine_kp_info(raw)
    outputs = {f"raw.{key}": value for key, value in raw.items()}
    outputs.update({f"kp_info.{key}": value for key, value in info.items()})
    outputs["x_s"] = camera.transform_keypoint(info)
    return outputs


@torch.no_grad()
def warping_module(vector: Vector) -> dict:
    network = vector.fill(WarpingNetwork()).eval()
    inputs = vector.inputs
    result = network(inputs["feature_3d_fp16"].float(), kp_driving=inputs["kp_driving"], kp_source=inputs["kp_source"])
    out = result["out"]
    return {"occlusion_map": result["occlusion_map"], "deformation": result["deformation"],
            "out_center": out[:, :, 24:40, 24:40], "out_strided": out[:, ::4, ::8, ::8], "out_stats": stats(out)}


@torch.no_grad()
def spade_generator(vector: Vector) -> dict:
    network = vector.fill(SPADEDecoder()).eval()
    logits = network.logits(vector.inputs["feature_fp16"].float())
    image = torch.sigmoid(logits)
    outputs = {}
    for name, tensor in (("image", image), ("logits", logits)):
        outputs[f"{name}_center"] = tensor[:, :, 224:288, 224:288]
        outputs[f"{name}_strided"] = tensor[:, :, ::8, ::8]
        outputs[f"{name}_stats"] = stats(tensor)
    return outputs


@torch.no_grad()
def stitching_retargeting(vector: Vector) -> dict:
    modules = vector.fill(StitchingRetargetingModules()).eval()
    inputs = vector.inputs
    source, driving = inputs["kp_source"], inputs["kp_driving"]
    batch = source.shape[0]
    stitching_in = modules.stitching_input(source, driving)
    eye_in = torch.cat([source.reshape(batch, -1), inputs["eye_close_ratio"]], dim=1)
    lip_in = torch.cat([source.reshape(batch, -1), inputs["lip_close_ratio"]], dim=1)
    return {
        "stitching_mlp_in": stitching_in,
        "stitching_mlp_out": modules.retarget_shoulder_module(stitching_in),
        "stitched_kp_driving": modules.stitch(source, driving),
        "eye_mlp_out": modules.retarget_eye_module(eye_in),
        "retarget_eye": modules.retarget_eye(source, inputs["eye_close_ratio"]),
        "lip_mlp_out": modules.retarget_mouth_module(lip_in),
        "retarget_lip": modules.retarget_lip(source, inputs["lip_close_ratio"]),
    }


@torch.no_grad()
def landmark(vector: Vector) -> dict:
    coeff, lmk, pts = filled_landmark_network(vector)(vector.inputs["x"])
    return {"coeff": coeff, "lmk": lmk, "pts": pts}


def camera_keypoints(vector: Vector) -> dict:
    inputs = vector.inputs
    pitch, yaw, roll = inputs["pitch_deg"], inputs["yaw_deg"], inputs["roll_deg"]
    kp_info = {"pitch": inputs["tk_pitch"], "yaw": inputs["tk_yaw"], "roll": inputs["tk_roll"], "kp": inputs["tk_kp"],
               "exp": inputs["tk_exp"], "t": inputs["tk_t"], "scale": inputs["tk_scale"]}
    return {
        "rotation": camera.get_rotation_matrix(pitch, yaw, roll),
        "rotation_from_Bx1": camera.get_rotation_matrix(pitch[:, None], yaw[:, None], roll[:, None]),
        "bins_to_degree": camera.headpose_pred_to_degree(inputs["bin_logits"]),
        "degree_passthrough": camera.headpose_pred_to_degree(pitch[:, None]),
        "transform_keypoint": camera.transform_keypoint(kp_info),
    }


def crop_utils(vector: Vector) -> dict:
    inputs = vector.inputs
    image, points = inputs["image_rgb"].numpy(), inputs["lmk68"].numpy()
    centre, size, angle = crop.parse_rect_from_landmark(points, scale=1.5, vx_ratio=0, vy_ratio=-0.1)
    runner_crop = crop.crop_image(image, points, dsize=224, scale=1.5, vy_ratio=-0.1)
    source_crop, source_256 = crop.crop_source_image(image, points, crop_scale=2.3)
    pts203 = inputs["pts203"].numpy()[None]
    exact_ish = uint8_tolerance(vector.meta)
    return {
        "lr.center": centre, "lr.size": size, "lr.angle_rad": np.array([angle], dtype=np.float64),
        "lr.M_o2c": runner_crop.original_to_crop, "lr.M_c2o": runner_crop.crop_to_original,
        "lr.img_crop": Checked(runner_crop.image, exact_ish), "lr.pt_crop": runner_crop.points,
        "src.M_o2c": source_crop.original_to_crop, "src.M_c2o": source_crop.crop_to_original,
        "src.pt_crop": source_crop.points, "src.img_crop_256x256": Checked(source_256, exact_ish),
        "eye_close_ratio": crop.eye_close_ratio(pts203), "lip_close_ratio": crop.lip_close_ratio(pts203),
    }


def retarget_params(vector: Vector) -> dict:
    inputs = vector.inputs
    rng = random.Random(int(inputs["python_random_seed"][0]))
    faces = int(inputs["number_of_faces"][0])
    variants = int(inputs["number_of_variants_per_face"][0])
    table = [[variant.as_row() for variant in draw_face_parameters(rng, variants)] for _ in range(faces)]
    return {"parameters": torch.tensor(table, dtype=torch.float64)}


def _source_outputs(source) -> dict:
    outputs = {"lmk203": source.landmarks, "x_s": source.x_s,
               "source_eye_ratio_rounded": torch.tensor([source.eye_ratio_rounded], dtype=torch.float64),
               "source_lip_ratio_rounded": torch.tensor([source.lip_ratio_rounded], dtype=torch.float64)}
    outputs.update({f"kp_info.{key}": value for key, value in source.kp_info.items()})
    return outputs


def _retarget_outputs(result) -> dict:
    outputs = {"R_s": result.R_s, "R_d": result.R_d, "x_d_before_stitching": result.x_d_before_stitching,
               "x_d_after_stitching": result.x_d_after_stitching,
               "gen.logits_center": result.logits[:, :, 224:288, 224:288], "gen.logits_stats": stats(result.logits)}
    if result.eye_inputs is not None:
        outputs.update({"eye.in_ratio": result.eye_inputs, "eye.delta": result.eye_delta})
    if result.lip_inputs is not None:
        outputs.update({"lip.in_ratio": result.lip_inputs, "lip.delta": result.lip_delta})
    return outputs


def retarget_e2e(vector: Vector) -> dict:
    inputs = vector.inputs
    pipeline = filled_pipeline(vector)
    face_bgr = inputs["cropped_bgr"].numpy()
    face_rgb = face_bgr[:, :, ::-1].copy()
    rng = random.Random(int(inputs["python_random_seed"][0]))
    variants = draw_face_parameters(rng, int(inputs["parameters"].shape[0]))
    source = pipeline.analyse(face_rgb, inputs["kps68"].numpy())
    result = pipeline.retarget(source, variants, keep_intermediates=True)
    outputs = _source_outputs(source)
    outputs.update(_retarget_outputs(result))
    images = torch.sigmoid(result.logits)
    outputs.update({
        "variants_bgr": Checked(result.images[..., ::-1].copy(), uint8_tolerance(vector.meta)),
        "validity_inputs": torch.tensor(source.validity_inputs(), dtype=torch.float64),
        "is_valid": torch.tensor([int(source.is_valid())], dtype=torch.uint8),
        "source_rgb_256": Checked((source.source_image[0].permute(1, 2, 0) * 255).round().to(torch.uint8),
                                  uint8_tolerance(vector.meta)),
        "f_s_center": result.feature_volume[:, :, 4:12, 24:40, 24:40], "f_s_stats": stats(result.feature_volume),
        "c_s_eyes": source.eye_ratios, "c_s_lip": source.lip_ratio,
        "warp.occlusion_map": result.warp["occlusion_map"],
        "warp.deformation_stats": stats(result.warp["deformation"]), "warp.out_stats": stats(result.warp["out"]),
        "warp.out_center": result.warp["out"][:, :, 24:40, 24:40],
        "gen.image_center": images[:, :, 224:288, 224:288], "gen.image_stats": stats(images),
    })
    return outputs


def edge_case_variants(eye_ratio: float, lip_ratio: float) -> list[RetargetingParameters]:
    """The three hand-written variants the edge-case vector's json describes (they depend on the source ratios)."""
    return [
        RetargetingParameters(input_eye_ratio=eye_ratio, input_lip_ratio=lip_ratio),
        RetargetingParameters(input_eye_ratio=eye_ratio + 0.05, input_lip_ratio=lip_ratio,
                              input_head_pitch_variation=5, input_head_yaw_variation=-12, input_head_roll_variation=3,
                              lip_variation_zero=0.01, lip_variation_one=-7, lip_variation_two=3,
                              lip_variation_three=15, smile=-0.2, wink=0.7, eyebrow=-5, eyeball_direction_x=6,
                              eyeball_direction_y=-6),
        RetargetingParameters(input_eye_ratio=eye_ratio, input_lip_ratio=lip_ratio + 0.1, mov_x=0.02, mov_y=-0.01,
                              mov_z=1.05, smile=0.5, eyebrow=6, eyeball_direction_x=-4, eyeball_direction_y=7),
    ]


def retarget_edgecases(vector: Vector) -> dict:
    inputs = vector.inputs
    pipeline = filled_pipeline(vector)
    source = pipeline.analyse(inputs["face_rgb"].numpy(), inputs["kps68"].numpy())
    variants = edge_case_variants(source.eye_ratio_rounded, source.lip_ratio_rounded)
    result = pipeline.retarget(source, variants, keep_intermediates=True)
    outputs = _source_outputs(source)
    outputs.update(_retarget_outputs(result))
    images = torch.from_numpy(result.images)
    outputs.update({
        "parameters_used": torch.tensor([variant.as_row() for variant in variants], dtype=torch.float64),
        "variants_rgb_center": Checked(images[:, 192:320, 192:320], uint8_tolerance(vector.meta)),
        "variants_rgb_stats": torch.stack([stats(image) for image in images]),
    })
    return outputs


VECTORS = {
    "lp_appearance_feature_extractor": appearance_feature_extractor,
    "lp_motion_extractor": motion_extractor,
    "lp_warping_module": warping_module,
    "lp_spade_generator": spade_generator,
    "lp_stitching_retargeting": stitching_retargeting,
    "lp_landmark": landmark,
    "lp_camera_keypoints": camera_keypoints,
    "lp_crop_utils": crop_utils,
    "lp_retarget_params": retarget_params,
    "lp_retarget_e2e": retarget_e2e,
    "lp_retarget_edgecases": retarget_edgecases,
}
