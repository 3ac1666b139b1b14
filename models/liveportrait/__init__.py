"""LivePortrait (KwaiVGI), used by dataset preprocessing to vary expressions and check face visibility.

One file per network; ``crop`` and ``camera`` hold the geometry, ``retargeting`` the expression pipeline.
"""
from models.liveportrait.appearance import AppearanceFeatureExtractor
from models.liveportrait.landmark import LandmarkNetwork, convert_landmark_state_dict
from models.liveportrait.motion import MotionExtractor
from models.liveportrait.spade import SPADEDecoder
from models.liveportrait.stitching import StitchingRetargetingModules
from models.liveportrait.warping import WarpingNetwork

__all__ = [
    "AppearanceFeatureExtractor",
    "LandmarkNetwork",
    "MotionExtractor",
    "SPADEDecoder",
    "StitchingRetargetingModules",
    "WarpingNetwork",
    "convert_landmark_state_dict",
]
