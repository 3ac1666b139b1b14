"""Face masks chosen by the user: box, occlusion and region masks in the aligned crop, and the target's own mouth.

Every mask here is a ``float32`` array in ``[0, 1]`` (1 = the swapped face shows) in the aligned crop frame.
The parser masks start from BiSeNet label maps (``P×P`` integer classes of ``models.bisenet.CLASS_NAMES``;
``P`` = ``utils.paste_back.PARSER_INPUT_SIZE`` in the pipeline) and are brought to the face size at the end.
:func:`crop_face_mask` combines the requested masks by their minimum (as FaceFusion does); the paste-back
multiplies its own alpha by the result (``utils.paste_back.paste_back(face_mask=...)``), and
:func:`blend_faces` applies it inside the crop for ``--paste_back_mode none``.

Which parse each mask reads: the occlusion mask and the mouth read the **target's** face (what covers it, its
teeth); the region mask reads the **swapped** face (the regions the swap produced), as FaceFusion does.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.bisenet import CLASS_NAMES, FACE_CLASSES
from utils.errors import GhostError

FACE_MASK_TYPES = ("box", "occlusion", "region")


def _classes(*names: str) -> tuple[int, ...]:
    return tuple(CLASS_NAMES.index(name) for name in names)


# --face_mask_regions names: the left/right pairs by one name, then every BiSeNet class but the background.
_PAIRS = {"brows": ("l_brow", "r_brow"), "eyes": ("l_eye", "r_eye"), "glasses": ("eyeglasses",),
          "ears": ("l_ear", "r_ear"), "lips": ("u_lip", "l_lip")}
FACE_MASK_REGIONS: dict[str, tuple[int, ...]] = {
    "skin": _classes("skin"),
    **{name: _classes(*parts) for name, parts in _PAIRS.items()},
    **{name: _classes(name) for name in CLASS_NAMES[1:] if name != "skin"},
}
# The regions of an unspecified --face_mask_regions: FaceFusion's default set (the inner face, no ears).
DEFAULT_FACE_MASK_REGIONS = ("skin", "brows", "eyes", "glasses", "nose", "mouth", "lips")
INNER_MOUTH = CLASS_NAMES.index("mouth")  # teeth and tongue; the lips are classes of their own
# Feather widths as fractions of the mask's side (2 and 4 pixels at 256): the occlusion edge fades inwards over
# about 2 px so the occluder itself stays exact; the kept mouth grows and fades outwards over about 4 px.
OCCLUSION_FEATHER = 1 / 128
MOUTH_FEATHER = 1 / 64
SNAP = 1e-5


def normalise_padding(values: Sequence[float]) -> tuple[float, float, float, float]:
    """``--face_mask_padding`` as (top, right, bottom, left) percent: 1 value = all sides, 2 = (top/bottom,
    left/right), 4 = each side (the CSS order FaceFusion uses)."""
    values = tuple(float(value) for value in values)
    if len(values) == 1:
        return values * 4  # type: ignore[return-value]
    if len(values) == 2:
        return values[0], values[1], values[0], values[1]
    if len(values) == 4:
        return values  # type: ignore[return-value]
    raise GhostError(f"--face_mask_padding takes 1, 2 or 4 percentages (top right bottom left), got {len(values)}")


@dataclass(frozen=True)
class FaceMaskOptions:
    """Which extra masks limit the pasted face (``--face_mask_*`` and ``--keep_target_mouth``).

    The defaults add nothing: ``box`` with no padding and no blur is the whole crop, so the output is today's,
    byte for byte. ``face_mask_padding`` is (top, right, bottom, left) in percent of the crop side (1 or 2 values
    are spread as CSS does); ``face_mask_blur`` is the box edge's fade in fractions of half the crop side;
    ``face_mask_regions`` empty means ``DEFAULT_FACE_MASK_REGIONS``. Invalid values raise GhostError (one line).
    """

    face_mask_types: tuple[str, ...] = ("box",)
    face_mask_blur: float = 0.0
    face_mask_padding: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    face_mask_regions: tuple[str, ...] = ()
    keep_target_mouth: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "face_mask_types", tuple(dict.fromkeys(self.face_mask_types)))
        object.__setattr__(self, "face_mask_regions", tuple(dict.fromkeys(self.face_mask_regions)))
        object.__setattr__(self, "face_mask_padding", normalise_padding(self.face_mask_padding))
        unknown = [name for name in self.face_mask_types if name not in FACE_MASK_TYPES]
        if unknown:
            raise GhostError(f"unknown --face_mask_types {', '.join(unknown)}; choose from "
                             f"{', '.join(FACE_MASK_TYPES)}")
        unknown = [name for name in self.face_mask_regions if name not in FACE_MASK_REGIONS]
        if unknown:
            raise GhostError(f"unknown --face_mask_regions {', '.join(unknown)}; valid regions: "
                             f"{', '.join(FACE_MASK_REGIONS)}")
        if not 0.0 <= self.face_mask_blur <= 1.0:
            raise GhostError(f"--face_mask_blur must be between 0 and 1 (got {self.face_mask_blur})")
        if any(not 0.0 <= value < 100.0 for value in self.face_mask_padding) or (
                self.face_mask_padding[0] + self.face_mask_padding[2] >= 100
                or self.face_mask_padding[1] + self.face_mask_padding[3] >= 100):
            raise GhostError(f"--face_mask_padding percentages must be 0 or more and leave part of the face "
                             f"(got {' '.join(f'{value:g}' for value in self.face_mask_padding)})")
        box_set = self.face_mask_blur != 0.0 or any(self.face_mask_padding)
        if box_set and "box" not in self.face_mask_types:
            raise GhostError("--face_mask_blur and --face_mask_padding shape the box mask; add box to "
                             "--face_mask_types or leave them at 0")
        if self.face_mask_regions and "region" not in self.face_mask_types:
            raise GhostError("--face_mask_regions needs region in --face_mask_types")

    @property
    def regions(self) -> tuple[str, ...]:
        """The region names the region mask keeps."""
        return self.face_mask_regions or DEFAULT_FACE_MASK_REGIONS

    @property
    def region_classes(self) -> tuple[int, ...]:
        """The BiSeNet classes of :attr:`regions`, sorted."""
        return tuple(sorted({index for name in self.regions for index in FACE_MASK_REGIONS[name]}))

    @property
    def uses_box(self) -> bool:
        return "box" in self.face_mask_types and (self.face_mask_blur > 0 or any(self.face_mask_padding))

    @property
    def needs_target_labels(self) -> bool:
        """True when the target face must be parsed (occlusion, the kept mouth)."""
        return "occlusion" in self.face_mask_types or self.keep_target_mouth

    @property
    def needs_face_labels(self) -> bool:
        """True when the swapped face must be parsed (region)."""
        return "region" in self.face_mask_types

    @property
    def adds_face_mask(self) -> bool:
        """False when the options change no pixel (the paste-back then runs exactly as without them)."""
        return self.uses_box or self.needs_target_labels or self.needs_face_labels


# ---------------------------------------------------------------------------------------------------- masks


def _feathered(mask: np.ndarray, sigma: float) -> np.ndarray:
    """``mask`` Gaussian-blurred, with values within 1e-5 of 0 or 1 set to exactly 0 or 1.

    A float32 blur of a constant area is off by an ulp; left so, a "full" alpha of 0.99999994 would change the
    paste-back's truncated bytes far from any edge.
    """
    blurred = cv2.GaussianBlur(mask, (0, 0), sigma)
    blurred[blurred > 1 - SNAP] = 1
    blurred[blurred < SNAP] = 0
    return blurred


def box_mask(size: int, padding: Sequence[float] = (0, 0, 0, 0), blur: float = 0.0) -> np.ndarray:
    """The crop square cut by ``padding`` (top, right, bottom, left percent) with edges faded by ``blur``.

    ``size×size float32`` in [0, 1]. The fade is a Gaussian of σ = ``blur`` × side / 8 centred half its width
    (2σ, as FaceFusion) inside the padded edge, so at the padded edge the mask is about 0.05; no padding and no blur is
    all 1.
    """
    mask = np.ones((size, size), dtype=np.float32)
    sigma = blur * size / 8
    inset = int(round(2 * sigma))
    top, right, bottom, left = (max(int(size * value / 100), inset) for value in padding)
    mask[:top, :] = 0
    mask[size - bottom:, :] = 0
    mask[:, :left] = 0
    mask[:, size - right:] = 0
    if sigma > 0:
        mask = _feathered(mask, sigma)
    return mask


def region_mask(labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """1 where the label map holds one of ``classes``, 0 elsewhere: ``P×P float32`` (no feathering)."""
    return np.isin(np.asarray(labels), np.asarray(classes)).astype(np.float32)


def occlusion_mask(target_labels: np.ndarray) -> np.ndarray:
    """0 on the target's pixels that are not face (what covers it: hands, objects, hair; background, neck,
    cloth, hat), 1 on its face classes (``models.bisenet.FACE_CLASSES``), faded inwards over
    ``OCCLUSION_FEATHER`` of the side so that every not-face pixel stays exactly 0. ``P×P float32``."""
    face = region_mask(target_labels, FACE_CLASSES)
    sigma = max(face.shape[0] * OCCLUSION_FEATHER, 0.5)
    return np.minimum(face, _feathered(face, sigma))


def mouth_mask(target_labels: np.ndarray) -> np.ndarray:
    """The target's inner mouth (teeth, tongue), grown and faded outwards over ``MOUTH_FEATHER`` of the side.

    Exactly 1 on every inner-mouth pixel of the label map; ``P×P float32``.
    """
    mouth = region_mask(target_labels, (INNER_MOUTH,))
    if not mouth.any():
        return mouth
    reach = max(int(round(mouth.shape[0] * MOUTH_FEATHER)), 1)
    grown = cv2.dilate(mouth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    return np.maximum(mouth, _feathered(grown, reach / 2))


def to_face_size(mask: np.ndarray, face_size: int) -> np.ndarray:
    """A ``P×P`` mask resized to ``face_size²`` (area average when shrinking, bilinear when growing)."""
    if mask.shape[0] == face_size:
        return mask
    interpolation = cv2.INTER_AREA if face_size < mask.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(mask, (face_size, face_size), interpolation=interpolation)


def crop_face_mask(
    options: FaceMaskOptions, face_size: int, *, face_labels: np.ndarray | None = None,
    target_labels: np.ndarray | None = None,
) -> np.ndarray | None:
    """The minimum of the masks ``options`` ask for, at ``face_size²`` (``float32`` in [0, 1]).

    ``face_labels``: the swapped face's label map (region); ``target_labels``: the target face's (occlusion,
    kept mouth). None when the options change nothing. Raises ValueError when a needed label map is missing.
    """
    if not options.adds_face_mask:
        return None
    if options.needs_face_labels and face_labels is None:
        raise ValueError("the region mask needs the swapped face's label map")
    if options.needs_target_labels and target_labels is None:
        raise ValueError("the occlusion mask and the kept mouth need the target face's label map")
    masks = []
    if options.uses_box:
        masks.append(box_mask(face_size, options.face_mask_padding, options.face_mask_blur))
    if "region" in options.face_mask_types:
        masks.append(to_face_size(region_mask(face_labels, options.region_classes), face_size))
    masks += _target_masks(options, face_size, target_labels)
    return np.clip(np.minimum.reduce(masks), 0, 1).astype(np.float32)


def _target_masks(options: FaceMaskOptions, face_size: int, target_labels: np.ndarray | None) -> list[np.ndarray]:
    """The masks that keep parts of the target in front of the swap (occlusion, the kept mouth), at face size."""
    masks = []
    if "occlusion" in options.face_mask_types:
        masks.append(to_face_size(occlusion_mask(target_labels), face_size))
    if options.keep_target_mouth:
        masks.append(1 - to_face_size(mouth_mask(target_labels), face_size))
    return masks


def protection_mask(options: FaceMaskOptions, face_size: int, target_labels: np.ndarray | None) -> np.ndarray | None:
    """The part of :func:`crop_face_mask` that keeps the target in front (occlusion, kept mouth), or None.

    Where it is 0 the pasted image holds the target's own pixels, which edge inpainting must not repaint
    (:func:`kept_target_pixels`). The box and region masks only shrink the swap and protect nothing.
    """
    masks = _target_masks(options, face_size, target_labels) if options.needs_target_labels else []
    return np.clip(np.minimum.reduce(masks), 0, 1).astype(np.float32) if masks else None


def blend_faces(swapped_face: np.ndarray, target_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask·swapped + (1 − mask)·target`` in the crop, truncated to uint8 as the paste-back blends.

    Both faces ``S×S×3 uint8 BGR``; ``mask`` ``S×S`` in [0, 1]. Where the mask is 0 the result is the target.
    """
    alpha = np.asarray(mask, dtype=np.float32)[:, :, None]
    return (alpha * swapped_face + (1 - alpha) * target_face).astype(np.uint8)


def keep_mouth(swapped_face: np.ndarray, target_face: np.ndarray, mouth: np.ndarray) -> np.ndarray:
    """The swapped face with the target's inner mouth put back through ``mouth`` (:func:`mouth_mask` at S×S)."""
    return blend_faces(swapped_face, target_face, 1 - mouth)


def kept_target_pixels(protection: np.ndarray, matrix: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """``H×W bool``: the image pixels where the warped crop-frame ``protection`` mask (:func:`protection_mask`) is
    exactly 0, i.e. where the paste-back left the target as it was (an occluder, the kept mouth). Edge
    inpainting must leave them alone; outside the crop nothing is protected.

    ``matrix``: the target's image → crop matrix of the face the mask belongs to.
    """
    from utils.paste_back import face_region, warp_region

    kept = np.zeros(image_shape[:2], dtype=bool)
    region = face_region(matrix, protection.shape[0], image_shape)
    if region is None:
        return kept
    x0, y0, x1, y1 = region
    warped = warp_region(np.asarray(protection, dtype=np.float32), matrix, image_shape, region, borderValue=1.0)
    kept[y0:y1, x0:x1] = warped == 0
    return kept
