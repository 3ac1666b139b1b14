"""The flags of the face-quality options (masks, the target's mouth, the expression restorer, pixel boost).

Defaults live once, in :class:`utils.face_masks.FaceMaskOptions`, :class:`utils.inference.expression.ExpressionOptions`
and :class:`utils.inference.pixel_boost.PixelBoostOptions` (SwapOptions extends all three); this module names and
explains them for inference.py's flags and the web UI's panel. Every default leaves the swap as it was. Names and
values are checked by the records, so a bad value is one GhostError line before anything loads.
"""
from __future__ import annotations

import argparse
import dataclasses

from utils.cli import add_option_arguments
from utils.face_masks import FACE_MASK_REGIONS, FACE_MASK_TYPES, FaceMaskOptions
from utils.inference.expression import EXPRESSION_AREAS, ExpressionOptions
from utils.inference.pixel_boost import PIXEL_BOOST_SIZES, PixelBoostOptions

OPTION_HELP = {
    "face_mask_blur": "fade of the box mask's edges, in fractions of half the face crop (0..1; needs box)",
    "keep_target_mouth": "keep the target's inner mouth (teeth, tongue; BiSeNet's mouth class, feathered) inside "
                         "the swapped face",
    "expression_restorer_factor": "0..100: after the generator, LivePortrait moves the swapped face's expression "
                                  "this far toward the target's (0: off, nothing is loaded)",
    "expression_restorer_smoothing": "videos: weight of the previous frames in the target expression's running "
                                     "average along each face track (0: no smoothing; causal)",
    "pixel_boost": f"align the target face at this size ({', '.join(map(str, PIXEL_BOOST_SIZES))}) and run the "
                   "256 px generator on its (size/256)^2 sub-pixel tiles, so the face keeps the target's resolution",
}
# Fields that take several values: field -> (value type, metavar, help).
LIST_HELP: dict[str, tuple[type, str, str]] = {
    "face_mask_types": (str, "TYPE", f"masks that limit the pasted face, combined by their minimum: "
                                     f"{', '.join(FACE_MASK_TYPES)} (box = the crop with --face_mask_padding and "
                                     "--face_mask_blur; occlusion = what BiSeNet says is not face in the target, "
                                     "such as hands, objects and hair, stays in front; region = --face_mask_regions "
                                     "of the swapped face)"),
    "face_mask_padding": (float, "PERCENT", "box mask padding in percent of the crop: 1 value (all sides), 2 "
                                            "(top/bottom, left/right) or 4 (top right bottom left); needs box"),
    "face_mask_regions": (str, "REGION", "BiSeNet regions the region mask keeps [default: "
                                         "skin brows eyes glasses nose mouth lips]; one of: "
                                         f"{', '.join(FACE_MASK_REGIONS)}"),
    "expression_restorer_areas": (str, "AREA", f"face areas the expression restorer moves: "
                                               f"{', '.join(EXPRESSION_AREAS)} (upper: brows and eyes; lower: lips, "
                                               "mouth and jaw)"),
}
OPTION_CLASSES = (FaceMaskOptions, ExpressionOptions, PixelBoostOptions)
# The web UI's choice fields (the others are typed), and its panel: every field with its help, in flag order.
CHOICES = {"face_mask_types": FACE_MASK_TYPES, "face_mask_regions": tuple(FACE_MASK_REGIONS),
           "expression_restorer_areas": tuple(EXPRESSION_AREAS), "pixel_boost": PIXEL_BOOST_SIZES}
PANEL_HELP = {item.name: OPTION_HELP[item.name] if item.name in OPTION_HELP else LIST_HELP[item.name][2]
              for options_class in OPTION_CLASSES for item in dataclasses.fields(options_class)}


def add_face_option_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """One flag per face-quality field (lists take several values; the records turn them into tuples)."""
    for options_class in OPTION_CLASSES:
        names = {item.name for item in dataclasses.fields(options_class)}
        add_option_arguments(parser, options_class, {name: text for name, text in OPTION_HELP.items() if name in names})
        defaults = options_class()
        for name, (kind, metavar, text) in LIST_HELP.items():
            if name in names:
                parser.add_argument(f"--{name}", nargs="+", type=kind, default=list(getattr(defaults, name)),
                                    metavar=metavar, help=text)
