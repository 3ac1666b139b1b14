"""Benchmark of the preprocessing pipeline on CPU with stand-in weights: images/s and seconds per variant.

``python bench/preprocess.py --weights_dir /tmp/standin [--images 2] [--variants 2] [--no-retargeting]
[--retargeting_do_crop] [--enhance_faces_in_original_image] [--ray_address local [--ray_actors N]
[--ray_gpus_per_actor G]]``
Stand-in weights make every photo "contain" faces, so the numbers measure compute, not real data.
With ``--ray_address`` the same photos, written to a folder, also go through preprocess_lagenda.py's single-process
path and its Ray path; the actors time their own work, which gives the per-actor rate (model work per image, the
reading and decoding being done by CPU tasks beside them); a cluster's rate is then about
GPUs × actors per GPU × the per-actor rate.
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

from utils.cli import add_bool, make_parser  # noqa: E402
from utils.preprocessing.model_loading import load_models  # noqa: E402
from utils.preprocessing.options import PreprocessOptions  # noqa: E402
from utils.preprocessing.pipeline import ImageProcessor, SourceImage, Summary  # noqa: E402
from utils.ray_cluster import RayOptions, add_ray_arguments  # noqa: E402


def bench_options(root: Path, args) -> PreprocessOptions:
    return PreprocessOptions(root / "full", root / "faces", root / "retargeted", detection_threshold=0.5,
                             min_original_face_size=0, eye_dist_threshold=0, max_faces_per_image=1,
                             filter_valid_faces=False, number_of_variants_per_face=args.variants,
                             retargeting=args.retargeting,
                             retargeting_do_crop=args.retargeting_do_crop,
                             enhance_faces_in_original_image=args.enhance_faces_in_original_image)


def timed_stage() -> type:
    """The model actor class, timing its own work: ``<photos> <seconds>`` per call in ``<output>/actor_seconds.txt``."""
    from utils.preprocessing.ray_runner import PreprocessStage

    class TimedStage(PreprocessStage):
        def __init__(self, options, models) -> None:
            super().__init__(options, models)
            self.log = options.output_dir_resized.parent / "actor_seconds.txt"

        def __call__(self, batch):
            started = time.perf_counter()
            result = super().__call__(batch)
            photos = sum(photo.size > 0 for photo in batch["photo"])
            with self.log.open("a") as handle:
                handle.write(f"{photos} {time.perf_counter() - started}\n")
            return result

    return TimedStage


def compare_with_ray(photo, args) -> None:
    """Images/s of preprocess_lagenda's single-process path and of its Ray path, on the same photo files."""
    from utils.preprocessing.datasets import preprocess_lagenda
    from utils.preprocessing.ray_runner import ModelSettings, preprocess_lagenda_on_ray
    from utils.ray_cluster import actor_plan, ray_session

    cluster = RayOptions(args.ray_address, args.ray_actors, args.ray_gpus_per_actor)
    models = ModelSettings(args.device, args.weights_dir, {}, torch.get_num_threads())
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "photos").mkdir()
        for index in range(args.images):
            cv2.imwrite(str(root / "photos" / f"photo{index:04d}.png"), photo)
        options = bench_options(root / "single", args)
        loaded = load_models(options, torch.device(args.device), args.weights_dir, {})
        started = time.perf_counter()
        preprocess_lagenda(root / "photos", options, lambda: loaded)
        single = args.images / (time.perf_counter() - started)
        print(f"single process: {single:.3f} images/s ({torch.get_num_threads()} torch threads, models loaded "
              "before timing)")
        started = time.perf_counter()
        with ray_session(args.ray_address) as ray:
            print(f"Ray start ({args.ray_address}): {time.perf_counter() - started:.1f} s")
            actors, gpus = actor_plan(ray.cluster_resources(), cluster, models.torch_threads)
            started = time.perf_counter()
            preprocess_lagenda_on_ray(root / "photos", bench_options(root / "ray", args), models, cluster,
                                      timed_stage())
            wall = time.perf_counter() - started
        calls = [line.split() for line in (root / "ray" / "actor_seconds.txt").read_text().splitlines()]
        photos, seconds = sum(int(count) for count, _ in calls), sum(float(spent) for _, spent in calls)
    print(f"Ray: {args.images} images in {wall:.1f} s with {actors} actor(s) × {gpus:g} GPU "
          f"({args.images / wall:.3f} images/s, starting the actors and loading their models included)")
    print(f"Ray: per-actor rate {photos / seconds:.3f} images/s ({seconds / photos:.1f} s of model work per image "
          f"in an actor; the single process: {1 / single:.1f} s per image, reading and decoding included)")
    print(f"cluster estimate: images/s ≈ GPUs × actors per GPU × per-actor rate; here {actors} × "
          f"{photos / seconds:.3f} = {actors * photos / seconds:.3f} images/s")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("bench/preprocess.py", __doc__.split("\n\n")[0])
    parser.add_argument("--weights_dir", required=True, help="folder of (stand-in) weights")
    parser.add_argument("--device", default="cpu", help="compute device")
    parser.add_argument("--images", type=int, default=2, help="number of photos to process")
    parser.add_argument("--variants", type=int, default=2, help="--number_of_variants_per_face")
    add_bool(parser, "retargeting", True, "LivePortrait variants (--no-retargeting: detection and alignment only)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--retargeting_do_crop", action="store_true", help="retarget inside the full image")
    parser.add_argument("--enhance_faces_in_original_image", action="store_true",
                        help="restore the faces in the full image first (GFPGAN + BiSeNet)")
    add_ray_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    photo = cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (512, 512)), cv2.COLOR_RGB2BGR)
    if args.ray_address:
        compare_with_ray(photo, args)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        options = bench_options(Path(folder), args)
        started = time.perf_counter()
        models = load_models(options, torch.device(args.device), args.weights_dir, {})
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
          f"in {elapsed:.1f} s on {args.device} ({torch.get_num_threads()} threads)")
    print(f"images/s: {args.images / elapsed:.3f}")
    if args.retargeting:
        print(f"seconds per variant: {elapsed / variants:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
