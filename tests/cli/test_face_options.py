"""inference.py's face-quality options end to end, on stand-in weights: masks, the target's mouth, pixel boost,
the expression restorer, and their refusals.

The stand-in generator and embedder are the registry's (stand-in weights: meaningless faces, real code paths);
the detector is tests/cli/fakes.py's PatchDetector, so the target face sits where the test drew it, and BiSeNet is
replaced by parsers whose labels the test knows: by colour (a solid green occluder the test draws is "hat", i.e.
not face; a solid red patch is the inner mouth) or by position (the left half of every face is skin).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import inference
import utils.inference.swap
from models.bisenet import CLASS_NAMES
from tests.cli.fakes import NSFWStub, PatchDetector
from tests.video_clips import compose, write_clip
from utils.inference.expression import EXPRESSION_AREAS, ExpressionRestorer, posed_keypoints
from utils.inference.model_cache import ModelCache
from utils.inference.model_set import SwapModels
from utils.inference.options import SwapOptions
from utils.inference.pixel_boost import boosted_crop
from utils.inference.swap import FaceSwapper

SHARED_CACHE = ModelCache()
SKIN, HAIR, HAT, MOUTH = (CLASS_NAMES.index(name) for name in ("skin", "hair", "hat", "mouth"))
OCCLUDER_BGR, MOUTH_BGR = (0, 255, 0), (0, 0, 255)
FACE_BOX = (40, 30, 152, 142)  # x0, y0, x1, y1 of the target face in its picture


def textured_face(seed: int, colour: tuple[int, int, int], size: int) -> np.ndarray:
    """A ``size×size`` face-like patch far from the grey background (one blob for the patch detector)."""
    noise = np.random.default_rng(seed).integers(-25, 26, (size, size, 3))
    return np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """source.png, target.png and occluded.png (the target with a green occluder and a red inner mouth drawn on)."""
    folder = tmp_path_factory.mktemp("face_options")
    source = compose((160, 160), [(textured_face(1, (200, 60, 40), 96), (32, 32))])
    x0, y0, x1, y1 = FACE_BOX
    target = compose((200, 180), [(textured_face(2, (40, 90, 210), x1 - x0), (x0, y0))])
    occluded = target.copy()
    occluded[55:95, 60:95] = OCCLUDER_BGR  # over the left eye and cheek
    occluded[112:124, 82:112] = MOUTH_BGR  # the open mouth
    paths = {}
    for name, image in (("source", source), ("target", target), ("occluded", occluded)):
        paths[name] = folder / f"{name}.png"
        cv2.imwrite(str(paths[name]), image)
    return paths


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every swapper shares the module's models; the patch detector and an NSFW stub stand in for theirs."""
    detector, nsfw = PatchDetector(), NSFWStub()
    monkeypatch.setattr(utils.inference.swap, "ModelCache", lambda: SHARED_CACHE)
    monkeypatch.setattr(FaceSwapper, "detector", property(lambda self: detector))
    monkeypatch.setattr(FaceSwapper, "nsfw_filter", property(lambda self: nsfw))


def use_parser(monkeypatch: pytest.MonkeyPatch, parse) -> None:  # noqa: ANN001 - face → labels
    monkeypatch.setattr(SwapModels, "face_parser", property(lambda self: lambda faces: [parse(f) for f in faces]))


def colour_parser(face: np.ndarray) -> np.ndarray:
    labels = np.full(face.shape[:2], SKIN, np.uint8)
    labels[(face == OCCLUDER_BGR).all(axis=2)] = HAT
    labels[(face == MOUTH_BGR).all(axis=2)] = MOUTH
    return labels


def half_parser(face: np.ndarray) -> np.ndarray:
    labels = np.full(face.shape[:2], SKIN, np.uint8)
    labels[:, face.shape[1] // 2:] = HAIR
    return labels


def flags(standin_weights: Path) -> list[str]:
    return ["--weights_dir", str(standin_weights), "--device", "cpu", "--face_embeddings", "facenet",
            "--no-enhance_output", "--no-inpaint_output"]


def swap(standin_weights: Path, pictures: dict[str, Path], output: Path, *extra: str, target: str = "target",
         debug: Path | None = None) -> np.ndarray:
    """inference.main on source → ``target`` with ``extra`` flags; returns the written output."""
    debug_flags = [] if debug is None else ["--debug", "--debug_target_face_path", str(debug / "target_face.png"),
                                            "--debug_swapped_face_path", str(debug / "swapped_face.png")]
    code = inference.main([*flags(standin_weights), "--source_file_path", str(pictures["source"]),
                           "--target_file_path", str(pictures[target]), "--output_file_path", str(output),
                           *debug_flags, *extra])
    assert code == 0
    return cv2.imread(str(output), cv2.IMREAD_UNCHANGED)


def interior(mask: np.ndarray, margin: int = 3) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0


# ---------------------------------------------------------------------------------------------------- defaults


@pytest.mark.parametrize("mode", ["ghost", "basic", "none"])
def test_neutral_values_give_todays_output_byte_for_byte(
    fakes: None, standin_weights: Path, pictures: dict[str, Path], tmp_path: Path, mode: str
) -> None:
    today = tmp_path / "today.png"
    swap(standin_weights, pictures, today, "--paste_back_mode", mode)
    loaded = sorted(SHARED_CACHE.loaded())
    neutral = tmp_path / "neutral.png"
    swap(standin_weights, pictures, neutral, "--paste_back_mode", mode, "--face_mask_types", "box",
         "--face_mask_blur", "0", "--face_mask_padding", "0", "--expression_restorer_factor", "0",
         "--expression_restorer_areas", "upper", "--pixel_boost", "256")
    assert today.read_bytes() == neutral.read_bytes()
    assert sorted(SHARED_CACHE.loaded()) == loaded  # no parser, no LivePortrait network loaded


# ---------------------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("mode", ["basic", "facexlib_with_parser", "insightface"])
def test_an_occluder_and_the_inner_mouth_of_the_target_stay_in_front(
    fakes: None, standin_weights: Path, pictures: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    use_parser(monkeypatch, colour_parser)
    target = cv2.imread(str(pictures["occluded"]))
    occluder, mouth = interior((target == OCCLUDER_BGR).all(2)), interior((target == MOUTH_BGR).all(2))
    plain = swap(standin_weights, pictures, tmp_path / "plain.png", "--paste_back_mode", mode, target="occluded")
    assert (plain[occluder] != target[occluder]).any(axis=1).mean() > 0.9  # without the masks the swap covers them
    assert (plain[mouth] != target[mouth]).any(axis=1).mean() > 0.9
    kept = swap(standin_weights, pictures, tmp_path / "kept.png", "--paste_back_mode", mode,
                "--face_mask_types", "occlusion", "--keep_target_mouth", target="occluded")
    np.testing.assert_array_equal(kept[occluder], target[occluder])
    np.testing.assert_array_equal(kept[mouth], target[mouth])
    x0, y0, x1, y1 = FACE_BOX
    face = np.zeros(target.shape[:2], bool)
    face[y0 + 12:y1 - 12, x0 + 12:x1 - 12] = True
    swapped_elsewhere = interior(face & ~cv2.dilate((occluder | mouth).astype(np.uint8), np.ones((25, 25))) > 0)
    assert (kept[swapped_elsewhere] != target[swapped_elsewhere]).any(axis=1).mean() > 0.9  # the rest is swapped


def test_the_region_mask_keeps_exactly_the_parsed_regions(
    fakes: None, standin_weights: Path, pictures: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_parser(monkeypatch, half_parser)
    face = swap(standin_weights, pictures, tmp_path / "face.png", "--paste_back_mode", "none",
                "--face_mask_types", "region", "--face_mask_regions", "skin", debug=tmp_path)
    swapped, target = (cv2.imread(str(tmp_path / f"{name}.png")) for name in ("swapped_face", "target_face"))
    np.testing.assert_array_equal(face[:, :128], swapped[:, :128])  # skin: the swap
    np.testing.assert_array_equal(face[:, 128:], target[:, 128:])  # hair: the target's own crop
    assert not np.array_equal(swapped[:, 128:], target[:, 128:])


# ---------------------------------------------------------------------------------------------------- pixel boost


def test_pixel_boost_512_gives_a_512_face_made_of_the_generators_tiles(
    fakes: None, standin_weights: Path, pictures: dict[str, Path], tmp_path: Path
) -> None:
    face = swap(standin_weights, pictures, tmp_path / "face.png", "--paste_back_mode", "none", "--pixel_boost", "512")
    assert face.shape == (512, 512, 3)
    swapper = FaceSwapper(SwapOptions(weights_dir=str(standin_weights), device="cpu", face_embeddings="facenet"))
    target_image, source_image = (cv2.imread(str(pictures[name])) for name in ("target", "source"))
    target = swapper.align(target_image, *swapper.detect(target_image, 0, "target"))
    crop = boosted_crop(target_image, target.matrix, 512, "insightface_v2")
    tiles = [crop[row::2, column::2] for row in range(2) for column in range(2)]
    identity = swapper.prepare_source(source_image).identity
    generated = swapper.stages.generate(tiles, identity.repeat(4, 1))
    for index, tile in enumerate(generated):
        row, column = divmod(index, 2)
        np.testing.assert_array_equal(face[row::2, column::2], tile)
    pasted = swap(standin_weights, pictures, tmp_path / "pasted.png", "--paste_back_mode", "basic",
                  "--pixel_boost", "512")
    assert pasted.shape == target_image.shape


# ---------------------------------------------------------------------------------------------------- expression


def keypoint_spy(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Record every call of ExpressionRestorer.keypoints (its inputs and outputs); the call goes through."""
    calls: list[dict] = []
    keypoints = ExpressionRestorer.keypoints

    def spy(self, swapped_faces, target_faces, factor, areas, target_expressions=None):  # noqa: ANN001, ANN202
        result = keypoints(self, swapped_faces, target_faces, factor, areas, target_expressions)
        calls.append({"swapped": list(swapped_faces), "factor": factor, "areas": tuple(areas),
                      "target_expressions": target_expressions, "result": result})
        return result

    monkeypatch.setattr(ExpressionRestorer, "keypoints", spy)
    return calls


@pytest.mark.slow
def test_the_expression_restorer_moves_the_chosen_keypoints_to_the_targets(
    fakes: None, standin_weights: Path, pictures: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = keypoint_spy(monkeypatch)
    off = swap(standin_weights, pictures, tmp_path / "off.png", "--paste_back_mode", "none")
    assert calls == []
    restored = swap(standin_weights, pictures, tmp_path / "restored.png", "--paste_back_mode", "none",
                    "--expression_restorer_factor", "100", "--expression_restorer_areas", "lower", debug=tmp_path)
    assert restored.shape == (256, 256, 3) and not np.array_equal(restored, off)
    (call,) = calls
    assert call["factor"] == 100 and call["areas"] == ("lower",)
    info, source, driving = call["result"]
    restorer = ExpressionRestorer(weights_dir=standin_weights, models=SHARED_CACHE)
    target_expression = restorer.target_expressions([cv2.imread(str(tmp_path / "target_face.png"))])
    torch.testing.assert_close(call["target_expressions"], target_expression)  # a photo: nothing to smooth
    expected = info["exp"].clone()
    lower = list(EXPRESSION_AREAS["lower"])
    expected[:, lower] = target_expression[:, lower]
    torch.testing.assert_close(driving, posed_keypoints(info, expected), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(source, posed_keypoints(info, info["exp"]))


def test_video_frames_are_restored_with_the_expression_smoothed_along_the_track(
    fakes: None, standin_weights: Path, pictures: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = keypoint_spy(monkeypatch)
    measured: list[torch.Tensor] = []
    target_expressions = ExpressionRestorer.target_expressions

    def measuring(self, faces):  # noqa: ANN001, ANN202
        measured.append(target_expressions(self, faces))
        return measured[-1]

    monkeypatch.setattr(ExpressionRestorer, "target_expressions", measuring)
    # The render is the slow part on CPU (bench/face_options.py); here the swapped face comes back as it was.
    monkeypatch.setattr(ExpressionRestorer, "render", lambda self, faces, source, driving: list(faces))
    x0, y0, x1, y1 = FACE_BOX
    frames = [compose((200, 180), [(textured_face(10 + index, (40, 90, 210), x1 - x0), (x0 + 2 * index, y0))])
              for index in range(3)]
    clip = write_clip(tmp_path / "clip.mp4", frames, audio_codec=None)
    code = inference.main([*flags(standin_weights), "--source_file_path", str(pictures["source"]),
                           "--target_file_path", str(clip), "--output_file_path", str(tmp_path / "out.mp4"),
                           "--paste_back_mode", "basic", "--smooth_window", "0", "--expression_restorer_factor", "80",
                           "--expression_restorer_smoothing", "0.5"])
    assert code == 0 and len(calls) == 3 and len(measured) == 3
    assert not torch.allclose(measured[0], measured[2])
    running = measured[0]  # a causal running average, started at the track's first frame
    for index in range(3):
        if index:
            running = 0.5 * running + 0.5 * measured[index]
        torch.testing.assert_close(calls[index]["target_expressions"], running)


# ---------------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("extra, message", [
    (["--face_mask_types", "region", "--face_mask_regions", "teeth"], "valid regions: skin, brows, eyes"),
    (["--face_mask_types", "occlusion", "--face_mask_padding", "10"], "add box to --face_mask_types"),
    (["--pixel_boost", "640"], "--pixel_boost must be a multiple of 256"),
    (["--expression_restorer_factor", "-5"], "--expression_restorer_factor must be between 0 and 100"),
])
def test_bad_face_options_are_one_line_and_nothing_is_loaded_or_written(
    standin_weights: Path, pictures: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
    extra: list[str], message: str,
) -> None:
    cache = ModelCache()
    monkeypatch.setattr(utils.inference.swap, "ModelCache", lambda: cache)
    output = tmp_path / "out.png"
    code = inference.main([*flags(standin_weights), "--source_file_path", str(pictures["source"]),
                           "--target_file_path", str(pictures["target"]), "--output_file_path", str(output), *extra])
    error = capsys.readouterr().err
    assert code == 1 and message in error
    assert [line for line in error.splitlines() if line.strip()] == [error.strip()]
    assert not output.exists() and list(tmp_path.iterdir()) == [] and cache.loaded() == []
