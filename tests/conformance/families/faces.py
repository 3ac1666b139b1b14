"""Conformance checks of the faces family: RetinaFace, FAN landmarks, GFPGAN, BiSeNet, NSFW gate."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tests.conformance.runner import Checked, Tolerance, Vector, module_layout

Layout = dict[str, tuple[tuple[int, ...], str]]


def _layout(build: Callable[[], torch.nn.Module]) -> Callable[[dict], Layout]:
    def layout(manifest: dict) -> Layout:
        with torch.device("meta"):
            return module_layout(build())

    return layout


def _retinaface() -> torch.nn.Module:
    from models.retinaface import RetinaFace

    return RetinaFace()


def _fan() -> torch.nn.Module:
    from models.fan_landmarks import build_fan

    return build_fan()


def _gfpgan() -> torch.nn.Module:
    from models.gfpgan import GFPGANv1Clean

    return GFPGANv1Clean()


def _bisenet() -> torch.nn.Module:
    from models.bisenet import BiSeNet

    return BiSeNet()


MANIFESTS: dict[str, Callable[[dict], Layout]] = {
    "manifest_RetinaFace_Resnet50_Final": _layout(_retinaface),
    "manifest_face_alignment_landmark": _layout(_fan),
    "manifest_GFPGANv1.4": _layout(_gfpgan),
    "manifest_GFPGANCleanv1-NoCE-C2": _layout(_gfpgan),
    "manifest_bisenet_79999_iter": _layout(_bisenet),
}


def _filled(vector: Vector, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    return vector.fill(build()).eval()


def _network(vector: Vector, name: str, build: Callable[[], torch.nn.Module], *example: torch.Tensor) -> Any:
    """The filled network, or its ONNX Runtime twin when the runner checks a runtime (registry name ``name``)."""
    return vector.twin(name, _filled(vector, build), example)


# ---------------------------------------------------------------------------------------------- RetinaFace


def retinaface_forward(vector: Vector) -> dict[str, Any]:
    from models.retinaface import preprocess

    inputs = vector.inputs
    x, factor = preprocess(inputs["image_bgr"].numpy()[None], max_size=None, bgr=True)
    if factor != 1.0 or not torch.equal(x, inputs["x"]):
        raise AssertionError("preprocessing of image_bgr differs from input.x")
    with torch.no_grad():
        loc, conf, landms = _network(vector, "retinaface", _retinaface, inputs["x"])(inputs["x"])
    return {"loc": loc, "conf": conf, "landms": landms}


def _faces_as_arrays(faces: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.stack([face.box for face in faces]) if faces else np.zeros((0, 4), np.float32)
    keypoints = np.stack([face.keypoints for face in faces]) if faces else np.zeros((0, 5, 2), np.float32)
    scores = np.asarray([face.score for face in faces], dtype=np.float32)
    return boxes, keypoints, scores


def retinaface_detect(vector: Vector) -> dict[str, Any]:
    from models.retinaface import FaceDetector, preprocess, prior_boxes, select_faces, sort_faces

    settings = vector.meta["settings"]
    image = vector.inputs["image_bgr"].numpy()
    x, factor = preprocess(image[None], settings["max_size"], bgr=settings["cv"])
    network = _network(vector, "retinaface", _retinaface, x)
    detector = FaceDetector(network, "cpu", settings["threshold"], settings["max_size"])
    (decoded,) = detector.decode(image[None], bgr=settings["cv"])
    faces = select_faces(decoded, settings["threshold"])
    boxes, keypoints, scores = _faces_as_arrays(faces)
    ordered = sort_faces(faces)
    sorted_order = [next(i for i, face in enumerate(faces) if face is chosen) for chosen in ordered]
    return {
        "x": x,
        "priors": prior_boxes(x.shape[2], x.shape[3]),
        "all_boxes": decoded.boxes,
        "all_landmarks": decoded.landmarks,
        "all_scores": decoded.scores,
        "boxes": boxes,
        "kps": keypoints,
        "scores": scores,
        "sorted_order": torch.tensor(sorted_order, dtype=torch.int64),
    }


def retinaface_detect_batch(vector: Vector) -> dict[str, Any]:
    from models.retinaface import FaceDetector, preprocess, select_faces

    settings = vector.meta["settings"]
    names = sorted(name for name in vector.inputs if name.startswith("image_rgb_"))
    images = np.stack([vector.inputs[name].numpy() for name in names])
    example = preprocess(images[:1], settings["max_size"], bgr=settings["cv"])[0]
    network = _network(vector, "retinaface", _retinaface, example)
    detector = FaceDetector(network, "cpu", settings["threshold"], settings["max_size"])
    outputs = {}
    for name, decoded in zip(names, detector.decode(images, bgr=settings["cv"])):
        suffix = name.rsplit("_", 1)[1]
        boxes, keypoints, scores = _faces_as_arrays(select_faces(decoded, settings["threshold"]))
        outputs.update({f"boxes_{suffix}": boxes, f"kps_{suffix}": keypoints, f"scores_{suffix}": scores})
    return outputs


def face_sort(vector: Vector) -> dict[str, Any]:
    from models.retinaface import DetectedFace, sort_faces

    keypoints = vector.inputs["kps"].numpy()
    faces = [DetectedFace(np.zeros(4, np.float32), points, 1.0) for points in keypoints]
    ordered = sort_faces(faces)
    return {"order": torch.tensor([next(i for i, face in enumerate(faces) if face is chosen) for chosen in ordered])}


VECTORS: dict[str, Callable[[Vector], dict[str, Any]]] = {
    "retinaface_forward": retinaface_forward,
    "retinaface_detect": retinaface_detect,
    "retinaface_detect_batch": retinaface_detect_batch,
    "face_sort": face_sort,
}


# ---------------------------------------------------------------------------------------------- FAN


def fan_forward(vector: Vector) -> dict[str, Any]:
    with torch.no_grad():
        heatmaps = _network(vector, "face_alignment", _fan, vector.inputs["x"])(vector.inputs["x"])
    return {f"heatmaps_{index}": value for index, value in enumerate(heatmaps)}


def fan_decode(vector: Vector) -> dict[str, Any]:
    from models.fan_landmarks import decode_heatmaps

    inputs = vector.inputs
    points, image_points, scores = decode_heatmaps(
        inputs["heatmaps"].numpy(), inputs["center"].numpy().astype(np.float64), float(inputs["scale"])
    )
    return {"preds": points, "preds_orig": image_points, "scores": scores}


def fan_landmarks(vector: Vector) -> dict[str, Any]:
    from models.fan_landmarks import LandmarkDetector

    example = torch.zeros(1, 3, 256, 256)
    detector = LandmarkDetector(_network(vector, "face_alignment", _fan, example), "cpu")
    image_bgr = vector.inputs["image_rgb"].numpy()[:, :, ::-1]
    details = detector.get_landmarks_with_details(image_bgr, vector.inputs["box"].numpy())
    if not np.array_equal(details["landmarks"], detector.get_landmarks(image_bgr, vector.inputs["box"].numpy())):
        raise AssertionError("get_landmarks differs from get_landmarks_with_details")
    return {name: details[name] for name in vector.expected}


VECTORS.update({"fan_forward": fan_forward, "fan_decode": fan_decode, "fan_landmarks": fan_landmarks})


# ---------------------------------------------------------------------------------------------- GFPGAN


def gfpgan_forward(vector: Vector) -> dict[str, Any]:
    model = _filled(vector, _gfpgan)
    network = vector.twin("gfpgan_v1_4", model, (vector.inputs["x"],))
    with torch.no_grad():
        style_code = model.style_code(vector.inputs["x"])[0]
        image, previews = network(vector.inputs["x"], return_rgb=False, randomize_noise=False)
    if previews:
        raise AssertionError("return_rgb=False must return no previews")
    return {"image": image, "style_code": style_code}


def gfpgan_enhance_face(vector: Vector) -> dict[str, Any]:
    """Exact, except where the json allows a difference of 1: pixels whose value*255 is within float error of .5.

    The network output is captured with a hook so that every differing pixel can be checked against
    that condition ("float error" = the kit's default 1e-5 relative tolerance, times 255) before the
    uint8 comparison is relaxed to 1 level.
    """
    from models.gfpgan import enhance_face

    model = _network(vector, "gfpgan_v1_4", _gfpgan, torch.zeros(1, 3, 512, 512))
    captured = []
    handle = model.register_forward_hook(lambda module, args, output: captured.append(output[0].detach()))
    try:
        restored = enhance_face(vector.inputs["image_bgr"].numpy(), model, randomize_noise=False)
    finally:
        handle.remove()
    expected = vector.expected["restored_bgr"].numpy()
    differs = restored != expected
    if not differs.any():
        return {"restored_bgr": restored}
    scaled = ((captured[0][0].clamp(-1, 1) + 1) / 2 * 255).numpy().transpose(1, 2, 0)[:, :, ::-1]
    distance_to_half = np.abs(scaled[differs] % 1 - 0.5)
    float_error = 1e-5 * 255
    if distance_to_half.max() > float_error or np.abs(restored.astype(int) - expected).max() > 1:
        raise AssertionError(
            f"{int(differs.sum())} pixels differ, not all by 1 at a rounding tie "
            f"(largest distance of value*255 to .5: {distance_to_half.max():.3g} > {float_error:.3g})"
        )
    return {"restored_bgr": Checked(restored, Tolerance(absolute=1))}


VECTORS.update({"gfpgan_forward": gfpgan_forward, "gfpgan_enhance_face": gfpgan_enhance_face})


# ---------------------------------------------------------------------------------------------- BiSeNet


def bisenet_forward(vector: Vector) -> dict[str, Any]:
    """Logits within the json's tolerance; the argmax exact wherever the top-2 margin is at least 1e-4."""
    with torch.no_grad():
        logits = _network(vector, "bisenet", _bisenet, vector.inputs["x"])(vector.inputs["x"])[0]
    parsing = logits.argmax(1)
    margin = re.search(r"margin is >= ([0-9.e-]+)", str(vector.meta.get("tolerance", "")))
    top2 = vector.expected["logits"].topk(2, dim=1)
    near_tie = (top2.values[:, 0] - top2.values[:, 1]) < (float(margin.group(1)) if margin else 1e-4)
    one_of_top2 = (parsing == top2.indices[:, 0]) | (parsing == top2.indices[:, 1])
    # At a near-tie either of the two leading classes is acceptable: count it as the expected one.
    parsing = torch.where(near_tie & one_of_top2, vector.expected["parsing"], parsing)
    return {"logits": logits, "parsing": parsing}


VECTORS.update({"bisenet_forward": bisenet_forward})


# ---------------------------------------------------------------------------------------------- NSFW gate


def nsfw_tiny(vector: Vector) -> dict[str, Any]:
    from models.nsfw import NSFWFilter

    gate = NSFWFilter.from_pretrained(vector.folder / "tiny_nsfw_vit", device="cpu")
    names = [name for name in vector.inputs if name.startswith("image_bgr_")]
    names.sort(key=lambda name: int(name.rsplit("_", 1)[1]))
    outputs: dict[str, Any] = {}
    predicted = []
    for name in names:
        suffix = name.rsplit("_", 1)[1]
        image = vector.inputs[name].numpy()
        batch = gate.processor(images=np.ascontiguousarray(image[:, :, ::-1]), return_tensors="pt")
        logits = gate.logits(image)
        outputs[f"pixel_values_{suffix}"] = batch["pixel_values"]
        outputs[f"logits_{suffix}"] = logits
        predicted.append(int(logits.argmax(-1)[0]))
        if gate.is_nsfw(image) != (gate.model.config.id2label[predicted[-1]] == "nsfw"):
            raise AssertionError("is_nsfw disagrees with the predicted label")
    outputs["predicted_index"] = torch.tensor(predicted, dtype=torch.int64)
    return outputs


VECTORS.update({"nsfw_tiny": nsfw_tiny})


# Vectors whose networks also run on ONNX Runtime twins (``--runtime onnxruntime``), and the expected tensors there
# that are not outputs of an exported network (GFPGAN's style code is an intermediate of its encoder).
RUNTIME_VECTORS = frozenset({
    "retinaface_forward", "retinaface_detect", "retinaface_detect_batch", "fan_forward", "fan_landmarks",
    "gfpgan_forward", "gfpgan_enhance_face", "bisenet_forward",
})
TORCH_ONLY = {"gfpgan_forward": ("style_code",)}
