"""inference.py end to end with stand-in weights, the tiny NSFW model and the tiny SDXL pipeline, offline.

Every paste-back mode, align mode, enhancement on/off and inpainting go through ``inference.main`` with
the CLI's flags (PNG outputs and --debug faces, read back and checked). Cost control: each full model set is
~2 GB of stand-in weights, so these in-process runs share one ModelCache (models and per-picture detections)
with a module-scoped swapper by patching ``utils.inference.swap.ModelCache``; real processes run the GhostV1 flags
through the whole pipeline (GFPGAN, BiSeNet, SDXL inpainting) and a bad-input case.
Stand-in detector: see tests/cli/conftest.py (threshold 0.5 finds faces, 1.0 finds none).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import inference
import utils.inference.swap
from tests.cli.conftest import NO_FACE_THRESHOLD, STANDIN_THRESHOLD, snapshot
from utils.errors import NSFWContentError
from utils.image import read_image
from utils.inference.model_cache import ModelCache
from utils.inference.options import SwapOptions
from utils.inference.swap import FaceSwapper

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_CACHE = ModelCache()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> tuple[Path, Path]:
    """Source = the astronaut; target = a portrait-format crop of the cameraman (grey PNG, 512 high, 384 wide)."""
    folder = tmp_path_factory.mktemp("pair")
    target = folder / "cameraman_portrait.png"
    grey = cv2.imread(str(example_images["cameraman"]), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(target), grey[:, 64:448])
    return example_images["astronaut"], target


@pytest.fixture(scope="module")
def base_options(standin_weights: Path, normal_nsfw_model: Path, tiny_sdxl_pipeline: Path) -> SwapOptions:
    return SwapOptions(
        weights_dir=str(standin_weights), device="cpu", detection_threshold=STANDIN_THRESHOLD,
        nsfw_model=str(normal_nsfw_model), inpainting_model=str(tiny_sdxl_pipeline), inpainting_seed=0,
        enhance_output=False, inpaint_output=False,
    )


@pytest.fixture(scope="module")
def swapper(base_options: SwapOptions) -> FaceSwapper:
    return FaceSwapper(base_options, SHARED_CACHE)


@pytest.fixture
def shared_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every FaceSwapper built by inference.main reuse the module's loaded models and detections."""
    monkeypatch.setattr(utils.inference.swap, "ModelCache", lambda: SHARED_CACHE)


def base_flags(options: SwapOptions) -> list[str]:
    return ["--weights_dir", options.weights_dir, "--device", "cpu", "--detection_threshold", str(STANDIN_THRESHOLD),
            "--nsfw_model", options.nsfw_model, "--inpainting_model", options.inpainting_model,
            "--inpainting_seed", "0"]


def face_square(matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 H×W map, 1 wherever the pasted 256×256 face square has any weight (bilinear rim included)."""
    weight = cv2.warpAffine(np.ones((256, 256), np.float32), cv2.invertAffineTransform(matrix), (shape[1], shape[0]))
    return (weight > 0).astype(np.uint8)


def outside_face_square(matrix: np.ndarray, shape: tuple[int, ...], margin: int) -> np.ndarray:
    """Boolean H×W map of the target pixels farther than ``margin`` from the pasted 256×256 face square."""
    square = cv2.dilate(face_square(matrix, shape), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    return square == 0


def blur_reach(matrix: np.ndarray, shape: tuple[int, ...]) -> int:
    """How far the insightface paste-back's mask blur reaches past the square: its kernel radius (README §3.2)."""
    rows, columns = np.nonzero(face_square(matrix, shape))
    side = int(np.sqrt((rows.max() - rows.min()) * (columns.max() - columns.min())))
    return max(side // 20, 5)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


# ------------------------------------------------------------------------------------------------ modes, via main()


def run_main(options: SwapOptions, pair: tuple[Path, Path], folder: Path, *flags: str) -> dict[str, Path]:
    """inference.main on the pair with ``flags`` and --debug, PNG outputs; returns the written files by name."""
    files = {name: folder / f"{name}.png" for name in ("output", "source_face", "target_face", "swapped_face",
                                                      "enhanced_face")}
    code = inference.main([
        *base_flags(options), "--source_file_path", str(pair[0]), "--target_file_path", str(pair[1]),
        "--output_file_path", str(files["output"]), "--debug",
        *[flag for name, path in files.items() if name != "output" for flag in (f"--debug_{name}_path", str(path))],
        *flags,
    ])
    assert code == 0
    return files


def target_matrix(swapper: FaceSwapper, target_image: np.ndarray) -> np.ndarray:
    """The image → crop matrix main() used for the target (same cached detections, default align mode)."""
    return swapper.align(target_image, *swapper.detect(target_image, 0, "target")).matrix


def read_png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize(
    "mode", ["insightface", "facexlib_without_parser", "basic", "ghost", "facexlib_with_parser", "none"]
)
def test_every_paste_back_mode(
    shared_models: None, swapper: FaceSwapper, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path,
    mode: str,
) -> None:
    files = run_main(base_options, pair, tmp_path, "--paste_back_mode", mode, "--no-enhance_output",
                     "--no-inpaint_output")
    output, swapped_face = read_png(files["output"]), read_png(files["swapped_face"])
    assert not files["enhanced_face"].exists()
    if mode == "none":
        np.testing.assert_array_equal(output, swapped_face)
        return
    target_image = read_image(pair[1])
    assert output.shape == target_image.shape
    if mode not in ("insightface", "facexlib_without_parser", "basic"):
        return
    matrix = target_matrix(swapper, target_image)
    # Everything the face square does not reach is the target, untouched: 1 px for the bilinear rim, plus
    # the blur radius for insightface, whose mask blur spreads a little past the square.
    margin = 1 + (blur_reach(matrix, target_image.shape) if mode == "insightface" else 0)
    outside = outside_face_square(matrix, target_image.shape, margin=margin)
    assert outside.mean() > 0.25, "the stand-in face should cover only part of the picture"
    np.testing.assert_array_equal(output[outside], target_image[outside])
    if mode == "basic":
        # Inside, the warped face composited with its own warped square as alpha (vector paste_basic_fixed).
        inverse, size = cv2.invertAffineTransform(matrix), (target_image.shape[1], target_image.shape[0])
        warped_face = cv2.warpAffine(swapped_face, inverse, size)
        alpha = cv2.warpAffine(np.ones((256, 256), np.float32), inverse, size)[:, :, None]
        np.testing.assert_array_equal(output, (alpha * warped_face + (1 - alpha) * target_image).astype(np.uint8))
        inside = alpha[:, :, 0] == 1
        assert inside.any()
        np.testing.assert_array_equal(output[inside], warped_face[inside])


@pytest.mark.parametrize("mode", ["insightface_v2", "insightface_v1", "facexlib", "mtcnn", "cvlface"])
def test_every_align_mode(
    shared_models: None, swapper: FaceSwapper, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path,
    mode: str,
) -> None:
    from utils.align import align_face

    files = run_main(base_options, pair, tmp_path, "--align_mode", mode, "--paste_back_mode", "basic",
                     "--no-enhance_output", "--no-inpaint_output")
    target_image = read_image(pair[1])
    assert read_png(files["output"]).shape == target_image.shape
    _, keypoints = swapper.detect(target_image, 0, "target")
    aligner = swapper.cvlface_aligner if mode == "cvlface" else None
    expected_face, _ = align_face(target_image, keypoints, mode, 256, aligner)
    np.testing.assert_array_equal(read_png(files["target_face"]), expected_face)


def test_enhancement_on_changes_the_face_and_keeps_its_size(
    shared_models: None, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path
) -> None:
    files = run_main(base_options, pair, tmp_path, "--enhance_output", "--paste_back_mode", "none",
                     "--no-inpaint_output")
    enhanced, swapped = read_png(files["enhanced_face"]), read_png(files["swapped_face"])
    assert enhanced.shape == (256, 256, 3)
    assert not np.array_equal(enhanced, swapped)
    np.testing.assert_array_equal(read_png(files["output"]), enhanced)


def synthetic_landmarks() -> np.ndarray:
    """A plausible 68-point face (iBUG order) in the 256×256 crop frame: jaw, brows, nose, eyes, mouth."""
    jaw_angles = np.linspace(np.pi, 0.0, 17)
    jaw = np.stack([128 + 80 * np.cos(jaw_angles), 110 + 100 * np.sin(jaw_angles)], axis=1)
    brows = [(x, 85.0) for x in np.linspace(60, 115, 5)] + [(x, 85.0) for x in np.linspace(141, 196, 5)]
    nose = [(128.0, y) for y in np.linspace(100, 145, 4)] + [(x, 155.0) for x in np.linspace(112, 144, 5)]
    eye_angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eyes = [(centre + 14 * np.cos(a), 110 + 6 * np.sin(a)) for centre in (90, 166) for a in eye_angles]
    mouth_angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    mouth = [(128 + 30 * np.cos(a), 185 + 10 * np.sin(a)) for a in mouth_angles]
    return np.asarray([*jaw, *brows, *nose, *eyes, *mouth], dtype=np.float32)


def fixed_landmarks(landmarks: np.ndarray):
    """A replacement for FaceSwapper.add_landmarks giving every face ``landmarks`` (crop frame)."""
    def add_landmarks(self: FaceSwapper, face) -> None:
        face.landmarks = landmarks.copy()

    return add_landmarks


@pytest.mark.parametrize("mode", ["ghost", "facexlib_with_parser"])
def test_inpainting_with_the_tiny_pipeline_only_touches_the_face_edge(
    shared_models: None, swapper: FaceSwapper, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, mode: str,
) -> None:
    if mode == "ghost":
        # The stand-in FAN's landmarks collapse to a few pixels, which leaves an empty ghost mask (see the
        # next test); a face-shaped set of landmarks gives the mask real weights would.
        monkeypatch.setattr(FaceSwapper, "add_landmarks", fixed_landmarks(synthetic_landmarks()))
    files = run_main(base_options, pair, tmp_path, "--paste_back_mode", mode, "--no-enhance_output",
                     "--inpaint_output")
    assert "edge inpainting skipped" not in caplog.text
    inpainted, target_image = read_png(files["output"]), read_image(pair[1])
    assert inpainted.shape == target_image.shape
    # Both modes leave the target as it is outside the face square; diffusers keeps its input outside the
    # blurred band (blur radius 4, well within 32 px), and repaints inside it.
    matrix = target_matrix(swapper, target_image)
    outside = outside_face_square(matrix, target_image.shape, margin=32)
    np.testing.assert_array_equal(inpainted[outside], target_image[outside])
    assert not np.array_equal(inpainted[~outside], target_image[~outside])


def test_an_empty_face_mask_skips_inpainting_with_a_warning(
    swapper: FaceSwapper, pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(FaceSwapper, "add_landmarks", fixed_landmarks(np.full((68, 2), 128, np.float32)))
    result = swapper.with_options(paste_back_mode="ghost", inpaint_output=True).swap_images(
        read_image(pair[0]), read_image(pair[1])
    )
    assert result.mask is not None and not (result.mask == 255).any()
    assert "inpaint" not in result.timings
    assert "empty face mask; edge inpainting skipped" in caplog.text


def test_inpainting_is_skipped_after_modes_without_a_mask(swapper: FaceSwapper, pair: tuple[Path, Path]) -> None:
    source, target = pair
    result = swapper.with_options(paste_back_mode="insightface", inpaint_output=True).swap_images(
        read_image(source), read_image(target)
    )
    assert "inpaint" not in result.timings


def test_the_output_is_checked_for_nsfw_too(swapper: FaceSwapper, pair: tuple[Path, Path], tmp_path: Path) -> None:
    class FlagsOnlyOutputs:
        def check(self, image: np.ndarray, what: str) -> None:
            if what != "target image":
                raise NSFWContentError(f"the {what} was classified as NSFW; nothing was written")

    cache = SHARED_CACHE.copy()
    cache.put(("nsfw", "flags-only-outputs"), FlagsOnlyOutputs())
    output = tmp_path / "out.png"
    strict = FaceSwapper(swapper.options, cache).with_options(nsfw_model="flags-only-outputs", paste_back_mode="basic")
    with pytest.raises(NSFWContentError, match="swapped output"):
        strict.swap_files(pair[0], pair[1], output)
    assert not output.exists()


# ------------------------------------------------------------------------------------------------ main() in process


def test_main_writes_the_output_and_debug_faces(
    shared_models: None, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path
) -> None:
    before = snapshot(pair[0].parent) | snapshot(pair[1].parent)
    output = tmp_path / "results" / "swap.jpg"
    debug = {name: tmp_path / "debug" / f"{name}.png" for name in ("source_face", "target_face", "swapped_face")}
    code = inference.main([
        *base_flags(base_options), "--source_file_path", str(pair[0]), "--target_file_path", str(pair[1]),
        "--output_file_path", str(output), "--paste_back_mode", "ghost", "--no-enhance_output",
        "--no-inpaint_output", "--debug", "--debug_ghost_landmarks",
        *[flag for name, path in debug.items() for flag in (f"--debug_{name}_path", str(path))],
        "--debug_enhanced_face_path", str(tmp_path / "debug" / "enhanced_face.png"),
    ])
    assert code == 0
    assert cv2.imread(str(output)).shape == (512, 384, 3)
    assert all(cv2.imread(str(path)).shape == (256, 256, 3) for path in debug.values())
    assert not (tmp_path / "debug" / "enhanced_face.png").exists()  # not enhanced: nothing to show
    assert snapshot(pair[0].parent) | snapshot(pair[1].parent) == before


def run_main_expecting_error(capsys: pytest.CaptureFixture, argv: list[str], output: Path) -> str:
    code = inference.main([*argv, "--output_file_path", str(output)])
    stderr = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in stderr
    errors = error_lines(stderr)
    assert len(errors) == 1, stderr
    assert not output.exists()
    return errors[0]


@pytest.mark.parametrize("problem", ["missing", "text", "empty"])
def test_bad_input_file(
    shared_models: None, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path, capsys, problem: str
) -> None:
    bad = tmp_path / "bad.jpg"
    if problem == "text":
        bad.write_text("this is not a picture\n")
    elif problem == "empty":
        bad.write_bytes(b"")
    message = run_main_expecting_error(capsys, [
        *base_flags(base_options), "--source_file_path", str(pair[0]), "--target_file_path", str(bad),
    ], tmp_path / "out.jpg")
    assert "bad.jpg" in message
    assert {"missing": "no such file", "text": "not a supported image", "empty": "empty"}[problem] in message


def test_no_face_found(shared_models: None, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path,
                       capsys) -> None:
    flags = base_flags(base_options)
    flags[flags.index("--detection_threshold") + 1] = str(NO_FACE_THRESHOLD)
    message = run_main_expecting_error(capsys, [
        *flags, "--source_file_path", str(pair[0]), "--target_file_path", str(pair[1]), "--no-inpaint_output",
    ], tmp_path / "out.jpg")
    assert "no face found in the source image" in message


def test_face_index_out_of_range_says_how_many_faces(
    shared_models: None, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path, capsys, swapper
) -> None:
    found = len(swapper.detections(read_image(pair[1])))
    message = run_main_expecting_error(capsys, [
        *base_flags(base_options), "--source_file_path", str(pair[0]), "--target_file_path", str(pair[1]),
        "--target_face_index", str(found), "--no-inpaint_output",
    ], tmp_path / "out.jpg")
    assert f"{found} face(s) found in the target image" in message


def test_missing_weights_names_the_download_script(
    shared_models: None, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    flags = base_flags(base_options)
    flags[flags.index("--weights_dir") + 1] = str(tmp_path / "empty_weights")
    message = run_main_expecting_error(capsys, [
        *flags, "--source_file_path", str(pair[0]), "--target_file_path", str(pair[1]),
    ], tmp_path / "out.jpg")
    assert "download_inference_models.sh" in message


def test_nsfw_target_is_refused(
    shared_models: None, base_options: SwapOptions, nsfw_nsfw_model: Path, pair: tuple[Path, Path], tmp_path: Path,
    capsys,
) -> None:
    flags = base_flags(base_options)
    flags[flags.index("--nsfw_model") + 1] = str(nsfw_nsfw_model)
    message = run_main_expecting_error(capsys, [
        *flags, "--source_file_path", str(pair[0]), "--target_file_path", str(pair[1]),
    ], tmp_path / "out.jpg")
    assert "NSFW" in message and "target image" in message


def test_an_input_is_never_overwritten(
    shared_models: None, base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    target = tmp_path / "target.png"
    target.write_bytes(pair[1].read_bytes())
    before = snapshot(tmp_path)
    code = inference.main([*base_flags(base_options), "--source_file_path", str(pair[0]),
                           "--target_file_path", str(target), "--output_file_path", str(target)])
    assert code == 1
    assert len(error_lines(capsys.readouterr().err)) == 1
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------ real processes


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


def test_cli_missing_source_exits_1_with_one_line(tmp_path: Path) -> None:
    output = tmp_path / "out.jpg"
    completed = run_script("inference.py", "--source_file_path", str(tmp_path / "nope.jpg"),
                           "--target_file_path", str(tmp_path / "nope2.jpg"), "--output_file_path", str(output))
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines() == [completed.stderr.strip()]
    assert completed.stderr.startswith("error: cannot read image") and "nope.jpg" in completed.stderr
    assert not output.exists()


def test_cli_nsfw_target_exits_1_with_one_line(
    base_options: SwapOptions, nsfw_nsfw_model: Path, pair: tuple[Path, Path], tmp_path: Path
) -> None:
    flags = base_flags(base_options)
    flags[flags.index("--nsfw_model") + 1] = str(nsfw_nsfw_model)
    output = tmp_path / "out.png"
    completed = run_script("inference.py", *flags, "--source_file_path", str(pair[0]),
                           "--target_file_path", str(pair[1]), "--output_file_path", str(output))
    assert completed.returncode == 1
    errors = error_lines(completed.stderr)
    assert len(errors) == 1 and "NSFW" in errors[0], completed.stderr
    assert "Traceback" not in completed.stderr
    assert not output.exists()


def test_cli_ghostv1_flags_full_pipeline(base_options: SwapOptions, pair: tuple[Path, Path], tmp_path: Path) -> None:
    """GhostV1 generator + arcface + insightface_v1, then GFPGAN, the BiSeNet paste-back and inpainting.

    facexlib_with_parser rather than the default ghost: with stand-in FAN weights the ghost mask is empty
    and inpainting would be skipped; this way every model of the pipeline runs in one real process.
    """
    before = snapshot(pair[1].parent)
    output = tmp_path / "nested" / "ghostv1.png"
    completed = run_script(
        "inference.py", *base_flags(base_options), "--source_file_path", str(pair[0]),
        "--target_file_path", str(pair[1]), "--output_file_path", str(output),
        "--G_path", str(Path(base_options.weights_dir) / "GhostV1" / "G_unet_2blocks.safetensors"),
        "--face_embeddings", "arcface", "--align_mode", "insightface_v1",
        "--paste_back_mode", "facexlib_with_parser", "--enhance_output", "--inpaint_output",
    )
    assert completed.returncode == 0, completed.stderr
    assert not error_lines(completed.stderr) and "inpainting skipped" not in completed.stderr
    assert cv2.imread(str(output)).shape == (512, 384, 3)
    assert snapshot(pair[1].parent) == before


def test_two_runs_write_identical_files(shared_models: None, swapper: FaceSwapper, base_options: SwapOptions,
                                        pair: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
                                        ) -> None:
    """GFPGAN's and SDXL's noise come from seeds derived from the inputs (no --inpainting_seed here), in forked
    random states: runs started from different global seeds write the same bytes and leave the global state."""
    flags = [flag for flag in base_flags(base_options) if flag not in ("--inpainting_seed", "0")]
    outputs = []
    for run, global_seed in (("first", 1), ("second", 2)):
        torch.manual_seed(global_seed)
        state = torch.random.get_rng_state()
        output = tmp_path / run / "out.png"
        assert inference.main([
            *flags, "--paste_back_mode", "facexlib_with_parser", "--enhance_output", "--inpaint_output",
            "--source_file_path", str(pair[0]), "--target_file_path", str(pair[1]), "--output_file_path", str(output),
            "--debug", "--debug_enhanced_face_path", str(output.parent / "gfpgan.png"),
        ]) == 0
        if run == "second":  # models are loaded (their random initialisation drew from it): no stage draws
            assert torch.equal(torch.random.get_rng_state(), state)
        outputs.append({path.name: path.read_bytes() for path in sorted(output.parent.iterdir())})
    assert "edge inpainting skipped" not in caplog.text
    assert set(outputs[0]) >= {"out.png", "gfpgan.png"}
    assert outputs[0] == outputs[1]
    # The stand-in GFPGAN does add noise (an unseeded rerun would differ): its noise strengths are not all zero.
    assert any(float(conv.weight.abs().max()) > 0 for conv in swapper.gfpgan.stylegan_decoder.style_convs)


def test_released_weights_give_the_same_swap(swapper: FaceSwapper, pair: tuple[Path, Path]) -> None:
    """--release_weights hands a model's mapped weight pages back after its stage; the next use maps them again,
    so the swap is the same bytes as with every model kept resident (--no-release_weights)."""
    from utils.checkpoint import resident_mapped_bytes

    source, target = read_image(pair[0]), read_image(pair[1])
    kept = swapper.with_options(release_weights=False, enhance_output=True)
    resident = kept.swap_images(source, target)
    assert resident_mapped_bytes(kept.generator) > 0 and resident_mapped_bytes(kept.gfpgan) > 0
    released = swapper.with_options(release_weights=True, enhance_output=True)
    result = released.swap_images(source, target)
    assert resident_mapped_bytes(released.generator) == resident_mapped_bytes(released.gfpgan) == 0
    assert resident_mapped_bytes(released.detector.model) == 0
    assert np.array_equal(result.image, resident.image)
    assert np.array_equal(result.enhanced_face, resident.enhanced_face)
