"""utils.face_masks and the paste-back's face_mask: region, occlusion, box masks and the target's own mouth.

The parser is a stand-in callable that labels pixels by their colour, so each test knows exactly which pixels are
which class: a solid patch the test draws over the target's face is "hat" (not face), a red one is the mouth.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.bisenet import CLASS_NAMES
from tests.cli.test_inference import synthetic_landmarks
from utils import face_masks, paste_back
from utils.errors import GhostError
from utils.face_masks import FaceMaskOptions, crop_face_mask

SKIN, HAT, MOUTH = CLASS_NAMES.index("skin"), CLASS_NAMES.index("hat"), CLASS_NAMES.index("mouth")
OCCLUDER_BGR, MOUTH_BGR = (0, 255, 0), (0, 0, 255)
PASTE_MODES = ("basic", "insightface", "facexlib_without_parser", "facexlib_with_parser", "ghost")
# Image → crop matrix of a face about 200 px wide, slightly turned, inside a 300×400 target.
MATRIX = np.array([[1.25, 0.12, -120.0], [-0.12, 1.25, -40.0]])


def colour_parser(face: np.ndarray) -> np.ndarray:
    """Stand-in BiSeNet: the occluder's colour is hat (not face), the mouth's colour is mouth, the rest skin."""
    labels = np.full(face.shape[:2], SKIN, dtype=np.uint8)
    labels[(face == OCCLUDER_BGR).all(axis=2)] = HAT
    labels[(face == MOUTH_BGR).all(axis=2)] = MOUTH
    return labels


def crop_to_image(points: np.ndarray) -> np.ndarray:
    return cv2.transform(np.asarray(points, np.float64)[None], cv2.invertAffineTransform(MATRIX))[0]


def draw_in_face(image: np.ndarray, crop_box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> np.ndarray:
    """Fill the image pixels under a crop-frame box (x0, y0, x1, y1) with ``colour``; returns their H×W bool mask."""
    x0, y0, x1, y1 = crop_box
    corners = crop_to_image(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    painted = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(painted, [np.round(corners).astype(np.int32)], 255)
    image[painted > 0] = colour
    return painted > 0


def interior(mask: np.ndarray, margin: int = 3) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0


@pytest.fixture()
def scene() -> dict:
    """A noisy target with a solid occluder over the face centre and a red inner mouth below it."""
    random = np.random.default_rng(7)
    target = random.integers(0, 200, (300, 400, 3), dtype=np.uint8)
    occluder = draw_in_face(target, (80, 90, 130, 140), OCCLUDER_BGR)
    mouth = draw_in_face(target, (105, 170, 150, 195), MOUTH_BGR)
    target_face = cv2.warpAffine(target, MATRIX, (256, 256), flags=cv2.INTER_LINEAR)
    swapped = random.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return {"target": target, "occluder": occluder, "mouth": mouth, "target_face": target_face, "swapped": swapped,
            "target_labels": paste_back.parse_face_labels(target_face, colour_parser)}


def paste(mode: str, scene: dict, face_mask: np.ndarray | None) -> np.ndarray:
    extra = {"source_landmarks": synthetic_landmarks(), "target_landmarks": synthetic_landmarks()} \
        if mode == "ghost" else {"face_parser": lambda face: np.full(face.shape[:2], SKIN, np.uint8)}
    image, _ = paste_back.paste_back(mode, scene["target"], scene["swapped"], MATRIX, face_mask=face_mask, **extra)
    return image


# ---------------------------------------------------------------------------------------------------- options


def test_defaults_add_no_mask() -> None:
    options = FaceMaskOptions()
    assert not options.adds_face_mask and crop_face_mask(options, 256) is None
    assert face_masks.box_mask(256).min() == 1.0


@pytest.mark.parametrize("values, message", [
    ({"face_mask_regions": ("nose", "teeth"), "face_mask_types": ("region",)}, "unknown --face_mask_regions teeth"),
    ({"face_mask_types": ("box", "xseg")}, "unknown --face_mask_types xseg"),
    ({"face_mask_types": ("occlusion",), "face_mask_blur": 0.3}, "add box to --face_mask_types"),
    ({"face_mask_types": ("occlusion",), "face_mask_padding": (10,)}, "add box to --face_mask_types"),
    ({"face_mask_regions": ("nose",)}, "--face_mask_regions needs region"),
    ({"face_mask_blur": 1.5}, "between 0 and 1"),
    ({"face_mask_padding": (10, 20, 30)}, "1, 2 or 4"),
    ({"face_mask_padding": (60, 0, 50, 0)}, "leave part of the face"),
])
def test_bad_values_and_refused_combinations_are_one_line(values: dict, message: str) -> None:
    with pytest.raises(GhostError, match=message) as caught:
        FaceMaskOptions(**values)
    assert "\n" not in str(caught.value)


def test_unknown_region_lists_every_valid_region() -> None:
    with pytest.raises(GhostError) as caught:
        FaceMaskOptions(face_mask_types=("region",), face_mask_regions=("teeth",))
    for name in ("skin", "brows", "eyes", "glasses", "nose", "mouth", "lips", "u_lip", "hair"):
        assert name in str(caught.value)


def test_padding_spreads_like_css() -> None:
    assert FaceMaskOptions(face_mask_padding=(5,)).face_mask_padding == (5, 5, 5, 5)
    assert FaceMaskOptions(face_mask_padding=(5, 10)).face_mask_padding == (5, 10, 5, 10)


# ---------------------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("regions", [("lips",), ("nose", "eyes"), ("skin", "brows", "glasses", "mouth")])
def test_region_mask_selects_exactly_the_parsers_pixels_of_those_classes(regions: tuple[str, ...]) -> None:
    labels = np.random.default_rng(1).integers(0, len(CLASS_NAMES), (256, 256)).astype(np.uint8)
    classes = [index for name in regions for index in face_masks.FACE_MASK_REGIONS[name]]
    options = FaceMaskOptions(face_mask_types=("region",), face_mask_regions=regions)
    # At the parser's size, and at half of it when every label covers 2×2 parser pixels.
    for face_labels, face_size, expected in ((labels, 256, labels), (np.kron(labels, np.ones((2, 2), np.uint8)), 256,
                                                                     labels)):
        mask = crop_face_mask(options, face_size, face_labels=face_labels)
        np.testing.assert_array_equal(mask, np.isin(expected, classes).astype(np.float32))


def test_box_mask_padding_and_blur() -> None:
    padded = face_masks.box_mask(200, (10, 0, 25, 5))
    assert not padded[:20].any() and not padded[150:].any() and not padded[:, :10].any()
    assert (padded[20:150, 10:] == 1).all()
    blurred = face_masks.box_mask(200, (0, 0, 0, 0), blur=0.4)
    assert blurred[100, 100] == pytest.approx(1.0, abs=1e-4)
    assert 0 < blurred[100, 10] < blurred[100, 30] < 1 and blurred[100, 0] < 0.06


def test_a_mask_of_ones_changes_no_byte_in_any_mode(scene: dict) -> None:
    ones = np.ones((256, 256), np.float32)
    for mode in PASTE_MODES:
        assert np.array_equal(paste(mode, scene, ones), paste(mode, scene, None)), mode


def test_mode_none_refuses_a_face_mask(scene: dict) -> None:
    with pytest.raises(ValueError, match="blend_faces"):
        paste_back.paste_back("none", scene["target"], scene["swapped"], MATRIX, face_mask=np.ones((256, 256)))


@pytest.mark.parametrize("mode", PASTE_MODES)
def test_an_occluder_over_the_target_face_stays_in_front(scene: dict, mode: str) -> None:
    options = FaceMaskOptions(face_mask_types=("occlusion",))
    mask = crop_face_mask(options, 256, target_labels=scene["target_labels"])
    inside = interior(scene["occluder"])
    assert inside.sum() > 500
    without = paste(mode, scene, None)
    assert (without[inside] != scene["target"][inside]).any(axis=1).mean() > 0.9  # the swap covers it otherwise
    with_mask = paste(mode, scene, mask)
    np.testing.assert_array_equal(with_mask[inside], scene["target"][inside])
    assert (with_mask[inside] == OCCLUDER_BGR).all()
    changed = np.abs(without.astype(int) - with_mask).sum(2) > 0
    elsewhere = interior(~scene["occluder"] & ~scene["mouth"], 12) & changed
    assert elsewhere.sum() < 0.2 * inside.sum()  # only the occluder's surroundings change


def test_occlusion_in_the_crop_for_mode_none(scene: dict) -> None:
    mask = crop_face_mask(FaceMaskOptions(face_mask_types=("occlusion",)), 256, target_labels=scene["target_labels"])
    face = face_masks.blend_faces(scene["swapped"], scene["target_face"], mask)
    occluded = cv2.resize((scene["target_labels"] == HAT).astype(np.float32), (256, 256),
                          interpolation=cv2.INTER_AREA) == 1
    assert occluded.sum() > 1000
    np.testing.assert_array_equal(face[occluded], scene["target_face"][occluded])
    assert (face[~occluded] != scene["target_face"][~occluded]).any()


def test_mouth_mask_is_exact_inside_and_feathered_outside() -> None:
    labels = np.full((512, 512), SKIN, np.uint8)
    labels[300:340, 200:320] = MOUTH
    mouth = face_masks.mouth_mask(labels)
    assert (mouth[300:340, 200:320] == 1).all()
    assert 0 < mouth[344, 260] < 1 and 0 < mouth[320, 196] < 1  # the feather reaches past the mouth
    assert not mouth[:250].any() and not mouth[:, :150].any()


def test_keep_target_mouth_gives_the_targets_inner_mouth_in_the_crop(scene: dict) -> None:
    options = FaceMaskOptions(keep_target_mouth=True)
    mask = crop_face_mask(options, 256, target_labels=scene["target_labels"])
    face = face_masks.blend_faces(scene["swapped"], scene["target_face"], mask)
    mouth = cv2.resize((scene["target_labels"] == MOUTH).astype(np.float32), (256, 256),
                       interpolation=cv2.INTER_AREA) == 1
    assert mouth.sum() > 300
    np.testing.assert_array_equal(face[mouth], scene["target_face"][mouth])
    # keep_mouth says the same with the mouth mask itself
    mouth_only = face_masks.to_face_size(face_masks.mouth_mask(scene["target_labels"]), 256)
    np.testing.assert_array_equal(face_masks.keep_mouth(scene["swapped"], scene["target_face"], mouth_only), face)
    far = np.zeros_like(mouth)
    far[20:80, 20:236] = True
    np.testing.assert_array_equal(face[far], scene["swapped"][far])


@pytest.mark.parametrize("mode", ["ghost", "facexlib_with_parser", "basic"])
def test_keep_target_mouth_in_the_pasted_image(scene: dict, mode: str) -> None:
    mask = crop_face_mask(FaceMaskOptions(keep_target_mouth=True), 256, target_labels=scene["target_labels"])
    inside = interior(scene["mouth"])
    image = paste(mode, scene, mask)
    np.testing.assert_array_equal(image[inside], scene["target"][inside])
    assert (paste(mode, scene, None)[inside] != scene["target"][inside]).any()


def test_masks_combine_by_their_minimum(scene: dict) -> None:
    options = FaceMaskOptions(face_mask_types=("box", "occlusion", "region"), face_mask_padding=(30, 0, 0, 0),
                              face_mask_regions=("skin",), keep_target_mouth=True)
    face_labels = np.full((512, 512), SKIN, np.uint8)
    face_labels[400:] = HAT
    mask = crop_face_mask(options, 256, face_labels=face_labels, target_labels=scene["target_labels"])
    parts = [face_masks.box_mask(256, (30, 0, 0, 0)),
             face_masks.to_face_size(face_masks.region_mask(face_labels, (SKIN,)), 256),
             face_masks.to_face_size(face_masks.occlusion_mask(scene["target_labels"]), 256),
             1 - face_masks.to_face_size(face_masks.mouth_mask(scene["target_labels"]), 256)]
    np.testing.assert_array_equal(mask, np.minimum.reduce(parts))
    assert not mask[:76].any() and not mask[200:].any()
    with pytest.raises(ValueError, match="swapped face"):
        crop_face_mask(options, 256, target_labels=scene["target_labels"])


def test_kept_target_pixels_protect_the_occluder_only(scene: dict) -> None:
    options = FaceMaskOptions(face_mask_types=("box", "occlusion"), face_mask_padding=(20,))
    assert face_masks.protection_mask(FaceMaskOptions(face_mask_padding=(20,)), 256, None) is None
    protection = face_masks.protection_mask(options, 256, scene["target_labels"])
    kept = face_masks.kept_target_pixels(protection, MATRIX, scene["target"].shape)
    assert kept[interior(scene["occluder"])].all()
    assert kept.sum() < 1.2 * scene["occluder"].sum()  # not the box padding, not outside the crop
