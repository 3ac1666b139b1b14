"""End-to-end tests of preprocess_lagenda.py and preprocess_laion.py with stand-in weights.

Stand-in RetinaFace fires everywhere, so runs use --detection_threshold 0.5 and keep one face per image
(--max_faces_per_image 1); stand-in LivePortrait faces fail the validity check, hence --no-filter_valid_faces.
Most runs use --no-retargeting (detection + alignment, seconds); two runs render one variant (slow: the SPADE
generator alone takes ~25 s per variant on two CPU cores): the face-crop mode and the full-image (do_crop) mode.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

import preprocess_laion
import preprocess_lagenda
from models.fan_landmarks import LandmarkDetector
from models.retinaface import DetectedFace, FaceDetector
from tests.cli.conftest import images_under, lagenda_args, laion_args, photos, snapshot
from utils.preprocessing import model_loading, pipeline, runner
from utils.preprocessing.options import PreprocessOptions

REPO_ROOT = Path(__file__).resolve().parents[2]

_MODEL_CACHE: dict[tuple, model_loading.PreprocessModels] = {}
ORIGINAL_LOAD_MODELS = model_loading.load_models


@pytest.fixture(autouse=True)
def reuse_loaded_models(monkeypatch) -> None:
    """Load each model set once per session (loading RetinaFace dominates a fast run); main() is unchanged."""
    original = model_loading.load_models

    def cached(options, device, weights_dir, paths):
        key = (options.retargeting, options.detection_threshold, options.detection_max_size,
               options.render_batch_size, options.enhance_output_face, options.enhance_faces_in_original_image,
               options.align_mode, str(weights_dir))
        if key not in _MODEL_CACHE:
            _MODEL_CACHE[key] = original(options, device, weights_dir, paths)
        return _MODEL_CACHE[key]

    monkeypatch.setattr(model_loading, "load_models", cached)


def test_lagenda_layout_restart_and_workers(lagenda_folder: Path, tmp_path: Path, standin_weights: Path) -> None:
    single = tmp_path / "single"
    assert preprocess_lagenda.main(lagenda_args(lagenda_folder, single, standin_weights, "--no-retargeting")) == 0
    faces = images_under(single / "faces")
    # One identity folder per kept face; the tiny image and the corrupt file give none.
    assert sorted(faces) == ["astronaut_00/0.jpg", "cameraman_00/0.jpg", "coffee_00/0.jpg"]
    assert all(cv2.imdecode(np.frombuffer(data, np.uint8), 1).shape == (256, 256, 3) for data in faces.values())

    before = snapshot(single / "faces")
    assert preprocess_lagenda.main(lagenda_args(lagenda_folder, single, standin_weights, "--no-retargeting")) == 0
    assert snapshot(single / "faces") == before  # nothing redone, nothing rewritten

    workers = tmp_path / "workers"
    for index in ("0", "1"):
        argv = lagenda_args(lagenda_folder, workers, standin_weights, "--no-retargeting", "--num_workers_total", "2",
                            "--worker_index", index)
        assert preprocess_lagenda.main(argv) == 0
    assert images_under(workers / "faces") == faces


def test_lagenda_interrupted_run_resumes_to_the_same_files(lagenda_folder: Path, tmp_path: Path,
                                                           standin_weights: Path, monkeypatch) -> None:
    reference = tmp_path / "reference"
    assert preprocess_lagenda.main(lagenda_args(lagenda_folder, reference, standin_weights, "--no-retargeting")) == 0
    original_process = pipeline.ImageProcessor.process
    calls = {"count": 0}

    def crash_on_second_image(self, image, summary):
        calls["count"] += 1
        original_process(self, image, summary)  # its outputs are written, its done-marker is not
        if calls["count"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.ImageProcessor, "process", crash_on_second_image)
    resumed = tmp_path / "resumed"
    argv = lagenda_args(lagenda_folder, resumed, standin_weights, "--no-retargeting")
    assert preprocess_lagenda.main(argv) == 130
    assert 0 < len(images_under(resumed / "faces")) < 3
    monkeypatch.setattr(pipeline.ImageProcessor, "process", original_process)
    assert preprocess_lagenda.main(argv) == 0
    assert images_under(resumed / "faces") == images_under(reference / "faces")


def test_lagenda_stop_if_error(lagenda_folder: Path, tmp_path: Path, standin_weights: Path) -> None:
    argv = lagenda_args(lagenda_folder, tmp_path / "out", standin_weights, "--no-retargeting", "--stop_if_error")
    assert preprocess_lagenda.main(argv) == 1  # the corrupt file stops the run with one clear line


def test_lagenda_with_expression_variants(tmp_path: Path, standin_weights: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    cv2.imwrite(str(folder / "astronaut.jpg"), photos()["astronaut"])
    out = tmp_path / "out"
    argv = lagenda_args(folder, out, standin_weights, "--number_of_variants_per_face", "1", "--no-filter_valid_faces",
                        "--render_batch_size", "1", "--save_full_size", "--seed", "3")
    assert preprocess_lagenda.main(argv) == 0
    # The original crop (0) and one LivePortrait variant (1), aligned, plus the unaligned 512 px copies.
    assert sorted(images_under(out / "faces")) == ["astronaut_00/0.jpg", "astronaut_00/1.jpg"]
    assert sorted(images_under(out / "full")) == ["astronaut_00/0.jpg", "astronaut_00/1.jpg"]
    full = cv2.imread(str(out / "full" / "astronaut_00" / "1.jpg"))
    assert full.shape == (512, 512, 3)


def test_lagenda_retargeting_in_the_full_image(tmp_path: Path, standin_weights: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    cv2.imwrite(str(folder / "astronaut.jpg"), photos()["astronaut"])
    out = tmp_path / "out"
    argv = lagenda_args(folder, out, standin_weights, "--number_of_variants_per_face", "1", "--no-filter_valid_faces",
                        "--render_batch_size", "1", "--seed", "3", "--retargeting_do_crop", "--save_retargeted",
                        "--output_dir_retargeted", str(out / "retargeted"))
    assert preprocess_lagenda.main(argv) == 0
    # The full images (original and one variant with the face pasted back) keep the photo's size...
    original = cv2.imread(str(folder / "astronaut.jpg"))
    retargeted = {name: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                  for name, data in images_under(out / "retargeted").items()}
    assert sorted(retargeted) == ["astronaut/0.jpg", "astronaut/1.jpg"]
    reencoded = cv2.imdecode(cv2.imencode(".jpg", original)[1], cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(retargeted["astronaut/0.jpg"], reencoded)
    changed = np.abs(retargeted["astronaut/1.jpg"].astype(int) - reencoded.astype(int)).max(axis=2) > 40
    assert retargeted["astronaut/1.jpg"].shape == original.shape and 0 < changed.mean() < 0.9
    # ...and every face re-detected in them is aligned into its identity folder, one file per image.
    faces = images_under(out / "faces")
    assert sorted(faces) == ["astronaut_00/0.jpg", "astronaut_00/1.jpg"]
    assert all(cv2.imdecode(np.frombuffer(data, np.uint8), 1).shape == (256, 256, 3) for data in faces.values())
    before = snapshot(out)
    assert preprocess_lagenda.main(argv) == 0
    assert snapshot(out) == before


def test_enhance_faces_in_original_image_changes_only_the_face_region(tmp_path: Path, standin_weights: Path) -> None:
    from utils.align import facexlib_matrix

    folder = tmp_path / "one"
    folder.mkdir()
    cv2.imwrite(str(folder / "astronaut.jpg"), photos()["astronaut"])
    outputs = []
    for run in ("first", "second"):  # GFPGAN's noise is seeded per face: a rerun writes the same pixels
        out = tmp_path / run
        argv = lagenda_args(folder, out, standin_weights, "--no-retargeting", "--enhance_faces_in_original_image",
                            "--save_full_size")
        assert preprocess_lagenda.main(argv) == 0
        outputs.append(images_under(out))
    assert outputs[0] == outputs[1] and sorted(outputs[0]) == ["faces/astronaut_00/0.jpg", "full/astronaut_00/0.jpg"]

    models = next(models for key, models in _MODEL_CACHE.items() if key[5])
    assert models.face_parser is not None and models.gfpgan is not None and models.liveportrait is None
    original = cv2.imread(str(folder / "astronaut.jpg"))
    face = models.detector.detect_batch([np.ascontiguousarray(original[:, :, ::-1])], bgr=False,
                                        in_score_order=True)[0]
    face = pipeline.by_score(face)[0]
    crop_square = cv2.warpAffine(np.full((512, 512), 255, np.uint8),
                                 cv2.invertAffineTransform(facexlib_matrix(face.keypoints, 512)),
                                 original.shape[1::-1])
    # JPEG blocks (16 px with chroma subsampling) that touch the restored square may change; none other may.
    near_face = cv2.dilate(crop_square, np.ones((33, 33), np.uint8)) > 0
    assert 0 < near_face.mean() < 0.95
    enhanced = cv2.imread(str(tmp_path / "first" / "full" / "astronaut_00" / "0.jpg"))
    reencoded = cv2.imdecode(cv2.imencode(".jpg", original)[1], cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(enhanced[~near_face], reencoded[~near_face])
    assert (np.abs(enhanced.astype(int) - reencoded.astype(int)).max(axis=2)[crop_square > 0] > 40).any()


def test_models_are_loaded_only_for_the_flags_that_need_them(tmp_path: Path, monkeypatch) -> None:
    import models.bisenet
    import models.fan_landmarks
    import models.gfpgan
    import models.liveportrait.retargeting
    import models.retinaface

    loaded: list[str] = []

    def stub(name: str):
        def load(*args, **kwargs) -> str:
            loaded.append(name)
            return name
        return load

    monkeypatch.setattr(models.retinaface, "load_face_detector", stub("retinaface"))
    monkeypatch.setattr(models.fan_landmarks, "load_landmark_detector", stub("face_alignment"))
    monkeypatch.setattr(models.liveportrait.retargeting, "load_pipeline", stub("liveportrait"))
    monkeypatch.setattr(models.gfpgan, "load_gfpgan", stub("gfpgan"))
    monkeypatch.setattr(models.bisenet, "load_bisenet", stub("bisenet"))
    cases = [({"retargeting": False}, ["retinaface"]),
             ({}, ["retinaface", "face_alignment", "liveportrait"]),
             ({"retargeting_do_crop": True, "enhance_output_face": True},
              ["retinaface", "face_alignment", "liveportrait", "gfpgan"]),
             ({"retargeting": False, "enhance_faces_in_original_image": True}, ["retinaface", "gfpgan", "bisenet"])]
    for flags, expected in cases:
        loaded.clear()
        options = PreprocessOptions(tmp_path / "a", tmp_path / "b", tmp_path / "c", **flags)
        options.check()
        ORIGINAL_LOAD_MODELS(options, torch.device("cpu"), tmp_path, {})
        assert loaded == expected, flags


@pytest.mark.parametrize("flags, message", [(["--save_retargeted"], "--retargeting_do_crop"),
                                            (["--retargeting_do_crop", "--no-retargeting"], "--retargeting")])
def test_flags_that_cannot_work_together_stop_with_one_line(tmp_path: Path, flags: list[str], message: str,
                                                             capsys) -> None:
    argv = lagenda_args(tmp_path, tmp_path / "out", tmp_path, *flags)
    assert preprocess_lagenda.main(argv) == 1
    assert message in capsys.readouterr().err


def test_laion_layout_restart_and_workers(laion_folder: Path, tmp_path: Path, standin_weights: Path) -> None:
    single = tmp_path / "single"
    assert preprocess_laion.main(laion_args(laion_folder, single, standin_weights, "--no-retargeting")) == 0
    faces = images_under(single / "faces")
    assert sorted(faces) == ["split_00000/00000/1001_00/0.jpg", "split_00000/00000/1003_00/0.jpg",
                             "split_00000/00001/2001_00/0.jpg"]
    before = snapshot(single / "faces")
    assert preprocess_laion.main(laion_args(laion_folder, single, standin_weights, "--no-retargeting")) == 0
    assert snapshot(single / "faces") == before

    workers = tmp_path / "workers"
    for index in ("0", "1"):
        argv = laion_args(laion_folder, workers, standin_weights, "--no-retargeting", "--num_workers_total", "2",
                          "--worker_index", index)
        assert preprocess_laion.main(argv) == 0
    assert images_under(workers / "faces") == faces


def test_laion_missing_split_is_one_clear_error(tmp_path: Path, standin_weights: Path) -> None:
    argv = laion_args(tmp_path, tmp_path / "out", standin_weights, "--no-retargeting",
                      "--laion_face_part_indices", "7")
    result = subprocess.run([sys.executable, "preprocess_laion.py", *argv], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1
    assert "split_00007" in result.stderr and "Traceback" not in result.stderr


def test_partition_covers_everything_once() -> None:
    items = list(range(11))
    shares = [runner.partition(items, 3, index) for index in range(3)]
    assert sorted(sum(shares, [])) == items
    assert not set(shares[0]) & set(shares[1])


PLANTED_FACE_KEYPOINTS = np.array([[100, 110], [160, 110], [130, 140], [105, 170], [155, 170]], np.float32)


def planted_face(box: list[float], score: float = 0.99) -> DetectedFace:
    return DetectedFace(np.asarray(box, np.float32), PLANTED_FACE_KEYPOINTS.copy(), score)


def test_one_bad_image_never_stops_the_run(tmp_path: Path, standin_weights: Path, monkeypatch, caplog) -> None:
    """An absurd detection is dropped before any crop; a MemoryError in a model skips only its image."""
    folder = tmp_path / "photos"
    folder.mkdir()
    pictures = photos()
    for name, picture in (("absurd", "astronaut"), ("oom", "coffee"), ("good", "cameraman")):
        cv2.imwrite(str(folder / f"{name}.png"), pictures[picture])
    (folder / "corrupt.png").write_bytes(b"\x89PNG not really")
    absurd_shape, oom_shape = pictures["astronaut"].shape, pictures["coffee"].shape
    # The box of the original report: FAN's crop around it asked numpy for 323 GiB.
    huge = planted_face([10, 20, 96_000, 236_000], score=1.0)
    first_pass = {absurd_shape: [huge, planted_face([60, 60, 200, 200])],
                  oom_shape: [planted_face([60, 60, 200, 200]), planted_face([40, 50, 220, 230], 0.98)],
                  pictures["cameraman"].shape: [planted_face([60, 60, 200, 200])]}
    real_detect_batch = FaceDetector.detect_batch

    def detect_batch(self, images, bgr=True, in_score_order=False):
        # Planted faces in the photos; the real (stand-in) detector on the 512 px face crops.
        real = real_detect_batch(self, [image for image in images if image.shape not in first_pass], bgr,
                                 in_score_order)
        return [first_pass[image.shape] if image.shape in first_pass else real.pop(0) for image in images]

    landmark_boxes = []
    real_get_landmarks = LandmarkDetector.get_landmarks

    def get_landmarks(self, image_bgr, box):
        landmark_boxes.append(np.asarray(box))
        if image_bgr.shape == oom_shape and len([b for b in landmark_boxes if b[2] == 220]) == 1:
            raise MemoryError("Unable to allocate 323. GiB for an array (planted)")
        return real_get_landmarks(self, image_bgr, box)

    monkeypatch.setattr(FaceDetector, "detect_batch", detect_batch)
    monkeypatch.setattr(LandmarkDetector, "get_landmarks", get_landmarks)
    out = tmp_path / "out"
    argv = lagenda_args(folder, out, standin_weights, "--number_of_variants_per_face", "0", "--no-filter_valid_faces",
                        "--render_batch_size", "1", "--max_faces_per_image", "2")
    with caplog.at_level("INFO"):
        assert preprocess_lagenda.main(argv) == 0
    # The oom photo's first face was written before its second face failed: the image leaves no file.
    assert sorted(images_under(out / "faces")) == ["absurd_00/0.jpg", "good_00/0.jpg"]
    assert sorted(path.name for path in (out / "faces").iterdir()) == [".done", "absurd_00", "good_00"]
    assert not any(box[2] == 96_000 for box in landmark_boxes)  # the absurd box never reached a crop
    assert "skipping oom.png (out_of_memory): MemoryError: Unable to allocate 323. GiB" in caplog.text
    assert "skipping corrupt.png (unreadable_image)" in caplog.text
    assert "images read: 4 (already done: 0, failed: 2)" in caplog.text
    assert "images failed by reason: out_of_memory: 1, unreadable_image: 1" in caplog.text
    assert "faces kept: 2; rejected: box_far_larger_than_image: 1" in caplog.text
    # The failed images are marked done (with their reason); a rerun redoes nothing.
    assert "failed (out_of_memory)" in (out / "faces" / ".done" / "oom.done").read_text()


def test_scikit_image_photos_at_native_size_complete(tmp_path: Path, standin_weights: Path, caplog) -> None:
    """A cheaper version of the issue's run: the three photos, stand-in weights, the original's threshold."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "coffee", "rocket"):
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(getattr(skimage.data, name)(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    argv = ["--lagenda_base_dir", str(folder), "--weights_dir", str(standin_weights), "--device", "cpu",
            "--output_dir_resized", str(out / "faces"), "--number_of_variants_per_face", "0", "--no-filter_valid_faces",
            "--min_original_face_size", "256", "--max_faces_per_image", "1", "--render_batch_size", "1"]
    with caplog.at_level("INFO"):
        assert preprocess_lagenda.main(argv) == 0
    assert "images read: 3 (already done: 0, failed: 0)" in caplog.text
    assert "box_far_larger_than_image" in caplog.text  # the stand-in's absurd boxes were met, and dropped
    assert images_under(out / "faces")
