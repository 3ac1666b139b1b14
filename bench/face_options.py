"""Benchmark the face-quality options: what each adds to one face of a swap (masks, mouth, expression, pixel boost).

``python bench/face_options.py --weights_dir DIR [--repeats 2] [--only masks expression pixel_boost]``

Per face, on the device and threads given: BiSeNet's parse of a 512 px face (the occlusion, region and mouth
masks need one parse of the target, the region mask one of the swapped face); composing each mask from the
labels; the ghost paste-back of a 256 px face into a 1280x720 frame without and with a mask; the expression
restorer (LivePortrait motion of swapped + target, then appearance, warping and SPADE render); the generator on
the (size/256)^2 tiles of each --pixel_boost size. The weights are the registry's files under --weights_dir
(stand-ins give the real networks' cost, not their pictures). Medians of --repeats calls after one warm-up.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: put the repository first on the path so `models` and `utils` import.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import functools
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from bench.common import add_bench_arguments, print_figures
from bench.faces import _line, time_call
from utils.cli import make_parser
from utils.device import resolve_device

PARTS = ("masks", "expression", "pixel_boost")
FRAME_HW = (720, 1280)


def _faces(count: int, size: int = 256) -> list[np.ndarray]:
    random = np.random.default_rng(size)
    return [random.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def mask_lines(device: torch.device, weights_dir: str | None, repeats: int) -> Iterator[str]:
    """BiSeNet's parse, each mask from labels, and the ghost paste-back without and with a face mask."""
    from models.bisenet import load_bisenet, parse_face
    from tests.cli.test_inference import synthetic_landmarks
    from utils import face_masks
    from utils.paste_back import paste_back, parse_face_labels

    parser = functools.partial(parse_face, model=load_bisenet(device=device, weights_dir=weights_dir))
    swapped, target = _faces(2)
    yield _line("BiSeNet parse of a face (512 px)", time_call(lambda: parse_face_labels(target, parser), device,
                                                               repeats))
    labels = np.random.default_rng(0).integers(0, 19, (512, 512)).astype(np.uint8)
    choices = {
        "box (padding 10, blur 0.3)": face_masks.FaceMaskOptions(face_mask_padding=(10,), face_mask_blur=0.3),
        "occlusion": face_masks.FaceMaskOptions(face_mask_types=("occlusion",)),
        "region (default regions)": face_masks.FaceMaskOptions(face_mask_types=("region",)),
        "keep_target_mouth": face_masks.FaceMaskOptions(keep_target_mouth=True),
    }
    for label, options in choices.items():
        yield _line(f"mask from labels: {label}", time_call(lambda: face_masks.crop_face_mask(
            options, 256, face_labels=labels, target_labels=labels), device, repeats))
    frame = np.random.default_rng(1).integers(0, 256, (*FRAME_HW, 3), dtype=np.uint8)
    matrix = np.array([[0.8, 0.05, -420.0], [-0.05, 0.8, -150.0]])
    landmarks = synthetic_landmarks()
    mask = face_masks.crop_face_mask(choices["occlusion"], 256, target_labels=labels)
    for label, face_mask in (("ghost paste-back, no face mask", None), ("ghost paste-back with a face mask", mask)):
        yield _line(label, time_call(lambda: paste_back("ghost", frame, swapped, matrix, source_landmarks=landmarks,
                                                        target_landmarks=landmarks, face_mask=face_mask),
                                     device, repeats))


def expression_lines(device: torch.device, weights_dir: str | None, repeats: int) -> Iterator[str]:
    """The restorer's keypoints (motion of both faces) and its render, for one face."""
    from utils.inference.expression import ExpressionRestorer

    restorer = ExpressionRestorer(device, weights_dir)
    restorer.load()
    swapped, target = _faces(2)
    yield _line("expression: motion of swapped + target", time_call(
        lambda: restorer.keypoints([swapped], [target], 80, ("upper", "lower")), device, repeats))
    _, source, driving = restorer.keypoints([swapped], [target], 80, ("upper", "lower"))
    yield _line("expression: render (appearance, warp, SPADE)", time_call(
        lambda: restorer.render([swapped], source, driving), device, repeats))


def pixel_boost_lines(device: torch.device, weights_dir: str | None, repeats: int,
                      sizes: Sequence[int]) -> Iterator[str]:
    """The generator on every tile of one face, per --pixel_boost size (one batch of k² tiles)."""
    from models.registry import load_model
    from utils.image import bgr_to_tensor, tensor_to_bgr_uint8
    from utils.inference.pixel_boost import pixel_boost

    generator = load_model("ghostv2_generator", device=device, weights_dir=weights_dir)

    def generate(faces: list[np.ndarray], identities: torch.Tensor) -> list[np.ndarray]:
        with torch.inference_mode():
            swapped, _ = generator(torch.cat([bgr_to_tensor(face) for face in faces]).to(device),
                                   identities.to(device))
        return [tensor_to_bgr_uint8(face[None]) for face in swapped.float()]

    identity = torch.nn.functional.normalize(torch.randn(1, 512), dim=1)
    for size in sizes:
        face = _faces(1, size)
        yield _line(f"generator, --pixel_boost {size} ({(size // 256) ** 2} tiles)",
                    time_call(lambda: pixel_boost(generate, face, identity, size), device, repeats))


def run_benchmark(parts: Sequence[str], weights_dir: str | None, device_name: str, threads: int | None,
                  repeats: int, sizes: Sequence[int]) -> Iterator[str]:
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    yield f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, float32, per face"
    if "masks" in parts:
        yield from mask_lines(device, weights_dir, repeats)
    if "expression" in parts:
        yield from expression_lines(device, weights_dir, repeats)
    if "pixel_boost" in parts:
        yield from pixel_boost_lines(device, weights_dir, repeats, sizes)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python bench/face_options.py", __doc__.split("\n\n")[0])
    add_bench_arguments(parser)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts to time")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per measurement (after one warm-up)")
    parser.add_argument("--pixel_boost_sizes", nargs="+", type=int, default=[256, 512, 768, 1024],
                        help="--pixel_boost sizes to time")
    args = parser.parse_args(argv)
    return print_figures(lambda: run_benchmark(args.only, args.weights_dir, args.device, args.threads, args.repeats,
                                               args.pixel_boost_sizes))


if __name__ == "__main__":
    sys.exit(main())
