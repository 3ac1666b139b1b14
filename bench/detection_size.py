"""Benchmark the detection-size options of inference.py and demo.py: speed, and how far the faces move.

``python -m bench.detection_size [--repeats 3] [--device cpu] [--threads N] [--limit 320] [--kit_limit 96]``

The original detects at a 1280 px long side and scales small photos up to it (the default,
``--detection_max_size 1280``); ``--no-detection_upscale`` detects them as they are, and a smaller
``--detection_max_size`` shrinks large ones further. Part 1 times ``FaceDetector.detect`` on the 512 px
astronaut at the three settings (random weights with "background" heads, as bench/faces.py, so the time is
the network's). Part 2 runs the conformance kit's detection inputs (faces/retinaface_detect*: flat grey plus
noise, 150 and 160 px wide; the smaller limit there is ``--kit_limit``) with the kit's stand-in weights and
thresholds at each setting and reports, against the vector's own setting, the faces found and the largest
movement of a matched face's box corners and keypoints (original pixels; each face matched to the nearest
box centre). Stand-in weights find "faces" in noise, so part 2 says how much the settings change the
detections, not how a real face would move.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from collections.abc import Iterator

import numpy as np
import skimage.data
import torch

from bench.faces import _line, _network, _quiet_detector_heads, time_call
from models.retinaface import DEFAULT_MAX_SIZE, DetectedFace, FaceDetector, RetinaFace
from bench.common import print_figures
from utils.cli import make_parser
from utils.device import resolve_device

KIT_VECTORS = {"retinaface_detect": "image_bgr", "retinaface_detect_batch": "image_rgb_"}


def settings(limit: int) -> dict[str, tuple[int | None, bool]]:
    """Label -> (max_size, upscale) of the three options compared."""
    return {"1280, scaled up (default, the original)": (DEFAULT_MAX_SIZE, True),
            "as it is (--no-detection_upscale)": (DEFAULT_MAX_SIZE, False),
            f"at most {limit} (--detection_max_size {limit} --no-detection_upscale)": (limit, False)}


def largest_movement(reference: list[DetectedFace], other: list[DetectedFace]) -> tuple[int, float, float]:
    """(faces matched, max box-corner movement, max keypoint movement) of ``other``'s faces against ``reference``."""
    if not reference or not other:
        return 0, float("nan"), float("nan")
    centres = np.array([(face.box[:2] + face.box[2:]) / 2 for face in reference])
    box_moves, keypoint_moves = [], []
    for face in other:
        nearest = reference[int(np.argmin(np.linalg.norm(centres - (face.box[:2] + face.box[2:]) / 2, axis=1)))]
        box_moves.append(float(np.abs(face.box - nearest.box).max()))
        keypoint_moves.append(float(np.linalg.norm(face.keypoints - nearest.keypoints, axis=1).max()))
    return len(other), max(box_moves), max(keypoint_moves)


def kit_images(kit: Path) -> Iterator[tuple[str, np.ndarray, dict]]:
    """(name, image, the vector's detection settings) of each detection input of the kit."""
    from tests.conformance.runner import Vector

    for name, prefix in KIT_VECTORS.items():
        vector = Vector("faces", name, kit / "faces", json.loads((kit / "faces" / f"{name}.json").read_text()))
        for key, tensor in sorted(vector.inputs.items()):
            if key.startswith(prefix):
                yield f"{name}:{key}", tensor.numpy(), vector.meta["settings"]


def run_benchmark(repeats: int, device_name: str, threads: int | None, limit: int, kit_limit: int,
                  kit: Path) -> Iterator[str]:
    """The report lines, yielded as each measurement finishes."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    yield f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, float32"
    photo = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    quiet = FaceDetector(_quiet_detector_heads(_network("retinaface", device)), device, threshold=0.97)
    for label, (max_size, upscale) in settings(limit).items():
        detector = quiet.with_sizing(max_size, upscale)
        yield _line(f"detect 512x512 photo, {label}", time_call(lambda: detector.detect(photo), device, repeats))
    del quiet
    from tests.conformance.runner import load_fill

    network = load_fill(kit).fill_module(RetinaFace(), 0).eval().to(device)
    for name, image, kit_settings in kit_images(kit):
        kit_max_size = None if kit_settings["max_size"] == -1 else kit_settings["max_size"]
        options = {f"the vector's own (max_size {kit_settings['max_size']})": (kit_max_size, True),
                   **settings(kit_limit)}
        base = FaceDetector(network, device, threshold=kit_settings["threshold"])
        found = {label: base.with_sizing(max_size, upscale).detect_batch([image], bgr=kit_settings["cv"],
                                                                         in_score_order=True)[0]
                 for label, (max_size, upscale) in options.items()}
        reference = next(iter(options))
        yield (f"{name} {image.shape[1]}x{image.shape[0]}, threshold {kit_settings['threshold']}: "
               f"{len(found[reference])} faces at {reference}")
        for label in list(options)[1:]:
            matched, box_move, keypoint_move = largest_movement(found[reference], found[label])
            yield (f"    {label}: {len(found[label])} faces; max box-corner move {box_move:.2f} px, "
                   f"max keypoint move {keypoint_move:.2f} px ({matched} matched)")


def main(argv: list[str] | None = None) -> int:
    from tests.conformance.runner import default_kit

    parser = make_parser("python -m bench.detection_size", __doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (after one warm-up)")
    parser.add_argument("--device", default="cpu", help="compute device (auto, cpu, cuda, cuda:N, mps)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [default: torch's choice]")
    parser.add_argument("--limit", type=int, default=320, help="the smaller --detection_max_size timed")
    parser.add_argument("--kit_limit", type=int, default=96, help="the smaller --detection_max_size on the kit inputs")
    parser.add_argument("--kit", type=Path, default=default_kit(), help="conformance kit folder")
    args = parser.parse_args(argv)

    return print_figures(lambda: run_benchmark(args.repeats, args.device, args.threads, args.limit, args.kit_limit, args.kit))


if __name__ == "__main__":
    sys.exit(main())
