"""Benchmark of the preprocessing pipeline on CPU with stand-in weights: images/s and seconds per variant.

``python bench/preprocess.py --weights_dir /tmp/standin [--images 2] [--variants 2] [--retargeting_do_crop]
[--enhance_faces_in_original_image]``
Stand-in weights make every photo "contain" faces, so the numbers measure compute, not real data.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import skimage.data  # noqa: E402
import torch  # noqa: E402

from utils.cli import make_parser  # noqa: E402
from utils.preprocessing.model_loading import load_models  # noqa: E402
from utils.preprocessing.options import PreprocessOptions  # noqa: E402
from utils.preprocessing.pipeline import ImageProcessor, SourceImage, Summary  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("bench/preprocess.py", __doc__.split("\n\n")[0])
    parser.add_argument("--weights_dir", required=True, help="folder of (stand-in) weights")
    parser.add_argument("--images", type=int, default=2, help="number of photos to process")
    parser.add_argument("--variants", type=int, default=2, help="--number_of_variants_per_face")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--retargeting_do_crop", action="store_true", help="retarget inside the full image")
    parser.add_argument("--enhance_faces_in_original_image", action="store_true",
                        help="restore the faces in the full image first (GFPGAN + BiSeNet)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    photo = cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (512, 512)), cv2.COLOR_RGB2BGR)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        options = PreprocessOptions(root / "full", root / "faces", root / "retargeted", detection_threshold=0.5,
                                    min_original_face_size=0, eye_dist_threshold=0, max_faces_per_image=1,
                                    filter_valid_faces=False, number_of_variants_per_face=args.variants,
                                    retargeting_do_crop=args.retargeting_do_crop,
                                    enhance_faces_in_original_image=args.enhance_faces_in_original_image)
        started = time.perf_counter()
        models = load_models(options, torch.device("cpu"), args.weights_dir, {})
        loading = time.perf_counter() - started
        processor = ImageProcessor(models, options)
        summary = Summary()
        started = time.perf_counter()
        for index in range(args.images):
            processor.process(SourceImage(f"bench{index}", "", f"bench{index}", lambda: photo), summary)
        elapsed = time.perf_counter() - started
    variants = max(1, summary.faces_kept * args.variants)
    mode = "full image (do_crop)" if args.retargeting_do_crop else "face crops"
    enhanced = ", faces restored in the original" if args.enhance_faces_in_original_image else ""
    print(f"mode: {mode}{enhanced}")
    print(f"model loading: {loading:.1f} s")
    print(f"{args.images} images, {summary.faces_kept} faces, {summary.variants_written} images written "
          f"in {elapsed:.1f} s on CPU ({torch.get_num_threads()} threads)")
    print(f"images/s: {args.images / elapsed:.3f}")
    print(f"seconds per variant: {elapsed / variants:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
