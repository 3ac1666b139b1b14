"""Conformance check of the ``cvlface`` align mode (utils.align) with the CVLFace aligner of the recognition family."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from models.registry import build_module
from tests.conformance.runner import Checked, Tolerance, Vector
from utils import align
from utils.image import bgr_to_tensor

# The json on aligned_face: "exact when warping with expected.affine_matrix via cv2.warpAffine; with your
# own matrix expect many +-1..few-level differences (19x zoom of noise) - compare the matrix instead".
# Our matrix is checked on its own (relative 2e-4); the crop may differ by a few (here: 3) levels.
FEW_LEVELS = 3


def dfa_cvl_align_face(vector: Vector) -> dict[str, Any]:
    aligner = vector.fill(build_module("cvlface_aligner")).eval()
    image = vector.inputs["bgr_image"].numpy()
    landmarks = vector.inputs["landmarks"].numpy()
    size = int(vector.expected["aligned_face"].shape[0])
    matrix, facexlib_face, facexlib_matrix = align.cvlface_matrix(image, landmarks, size, aligner)
    aligned_face, returned_matrix = align.align_face(
        image, landmarks, mode="cvlface", size=size, cvlface_aligner=aligner
    )
    if not np.array_equal(matrix, returned_matrix):
        raise AssertionError("align_face('cvlface') and cvlface_matrix disagree")
    with torch.no_grad():
        refinement = aligner(bgr_to_tensor(facexlib_face), output_size=size).cv2_tfms[0].numpy().astype(np.float64)
    bottom = np.array([[0.0, 0.0, 1.0]])
    composed = (np.vstack([refinement, bottom]) @ np.vstack([facexlib_matrix, bottom]))[:2]
    if not np.allclose(composed, returned_matrix, rtol=0, atol=1e-9):
        raise AssertionError("the cvlface matrix is not the DFA matrix composed after the facexlib one")
    return {
        "facexlib_affine": facexlib_matrix,
        "facexlib_face": facexlib_face,
        "dfa_cv2_tfm": refinement,
        "affine_matrix": returned_matrix,
        "aligned_face": Checked(aligned_face, Tolerance(absolute=FEW_LEVELS)),
    }


VECTORS: dict[str, Callable[[Vector], dict[str, Any]]] = {"dfa_cvl_align_face": dfa_cvl_align_face}
