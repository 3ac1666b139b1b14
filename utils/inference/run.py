"""One call for every target: an image or a video (probed from its content), one face or several, or a folder tree.

``swap_media`` is what inference.py and the web UI call; ``swap_folder`` swaps into every image and video of a
tree with the models loaded once. Outputs are written under a temporary name in the output folder and renamed
at the end, so a failed or interrupted run leaves nothing under the output name.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils.errors import FaceIndexError, GhostError, NoFaceFoundError
from utils.image import IMAGE_EXTENSIONS, read_image, write_image
from utils.inference.media import VIDEO_EXTENSIONS, probe_media
from utils.inference.pipeline import SourceFace
from utils.inference.selection import FaceSelection, FaceSelectionError
from utils.inference.swap import FaceSwapper, SwapResult
from utils.inference.video import VideoOptions, swap_video

logger = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]
DEFAULT_SELECTION = FaceSelection()
DEFAULT_VIDEO = VideoOptions()


@dataclass
class SwapReport:
    """What one swap wrote: ``kind`` "image" or "video", frame and face counts, wall seconds."""

    kind: str
    output_path: Path
    frames: int
    frames_swapped: int
    faces_swapped: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the log."""
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.output_path}: {self.frames} frame(s), {self.frames_swapped} with a swap, "
                f"{self.faces_swapped} face(s) swapped, {self.seconds:.1f} s ({rate:.2f} frames/s)")


def partial_path(output_path: Path) -> Path:
    """The temporary name an output is written under (same folder, same extension, hidden)."""
    return output_path.with_name(f".{output_path.stem}.partial{output_path.suffix}")


def _check_paths(sources: Sequence[Path], references: Sequence[Path], target: Path, output: Path) -> None:
    resolved_output = output.resolve()
    for path in (*sources, *references, target):
        if path.resolve() == resolved_output:
            raise GhostError(f"the output path {output} is an input file; choose another output path")
    folder = output.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GhostError(f"cannot create the output folder {folder}: {error.strerror or error}") from error
    if not os.access(folder, os.W_OK):
        raise GhostError(f"the output folder {folder} is not writable")


def swap_media(
    swapper: FaceSwapper,
    source_paths: Sequence[str | Path],
    target_path: str | Path,
    output_path: str | Path,
    selection: FaceSelection = DEFAULT_SELECTION,
    video: VideoOptions = DEFAULT_VIDEO,
    progress: Progress | None = None,
) -> SwapReport:
    """Swap into an image or a video alike; ``progress(done_frames, total_frames_or_None)``.

    Raises our GhostErrors with a message for the user (nothing is written then).
    """
    start = time.perf_counter()
    sources = [Path(path) for path in source_paths]
    references = [Path(path) for path in selection.reference_face_paths]
    target, output = Path(target_path), Path(output_path)
    selection.check_sources(len(sources))
    for path in (*sources, *references):
        if not path.is_file():
            read_image(path)  # the image reader's own message for a missing file or a folder
    kind = probe_media(target)
    _check_paths(sources, references, target, output)
    swapper.timings = {}
    if kind == "image":
        report = _swap_image(swapper, sources, target, output, selection)
        if progress is not None:
            progress(1, 1)
    else:
        report = _swap_video_file(swapper, sources, target, output, selection, video, progress)
    report.seconds = time.perf_counter() - start
    return report


# ---------------------------------------------------------------------------------------------------- sources


def prepare_sources(swapper: FaceSwapper, source_paths: Sequence[Path]) -> list[SourceFace]:
    """Each source's face (``--source_face_index``) aligned, with its identity embedding."""
    sources = []
    for path in source_paths:
        with swapper._stage("read"):
            image = read_image(path)
        sources.append(swapper.prepare_source(image, "source" if len(source_paths) == 1 else f"source {path.name}"))
    return sources


def reference_embeddings(swapper: FaceSwapper, reference_paths: Sequence[Path]) -> np.ndarray | None:
    """``[R, 512]`` identity embeddings of the face of each reference photo (its highest-score face)."""
    if not reference_paths:
        return None
    from models.retinaface import best_face

    crops = []
    for path in reference_paths:
        image = read_image(path)
        face = best_face(swapper.detections(image))
        if face is None:
            raise FaceSelectionError(f"no face found in the reference photo {path} (detection threshold "
                                     f"{swapper.options.detection_threshold}); give a photo showing that face")
        crops.append(swapper.align(image, np.asarray(face.box, np.float32), np.asarray(face.keypoints, np.float32)).face)
    return swapper.embed_batch(crops).cpu().numpy()


# ---------------------------------------------------------------------------------------------------- images


def _swap_image(swapper: FaceSwapper, sources: list[Path], target: Path, output: Path,
                selection: FaceSelection) -> SwapReport:
    """A photo through the frame pipeline; one source and one face index also write the --debug faces."""
    with swapper._stage("read"):
        target_image = read_image(target)
    swapper.check_nsfw(target_image, "target image")
    source_faces = prepare_sources(swapper, sources)
    references = reference_embeddings(swapper, [Path(path) for path in selection.reference_face_paths])
    result = swapper.swap_photo(source_faces, target_image, selection, references)
    if result.faces and swapper.options.check_output_nsfw:
        swapper.check_nsfw(result.image, "swapped output")
    with swapper._stage("write"):
        write_image(output, result.image, protect=(*sources, target))
        if swapper.options.debug and len(result.faces) == 1:
            face = result.faces[0]
            swapper.write_debug_faces(SwapResult(result.image, source_faces[face.source_index].face, face.target,
                                                 face.swapped_face, face.enhanced_face, face.mask),
                                      protect=(*sources, target))
    logger.info("wrote %s", output)
    faces = len(result.faces)
    return SwapReport("image", output, 1, int(bool(faces)), faces, 0.0, dict(swapper.timings))


# ---------------------------------------------------------------------------------------------------- videos


def _swap_video_file(swapper: FaceSwapper, sources: list[Path], target: Path, output: Path,
                     selection: FaceSelection, video: VideoOptions, progress: Progress | None) -> SwapReport:
    source_faces = prepare_sources(swapper, sources)
    references = reference_embeddings(swapper, [Path(path) for path in selection.reference_face_paths])
    temporary = partial_path(output)
    try:
        stats = swap_video(swapper, source_faces, target, temporary, selection, references, video, progress)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    logger.info("wrote %s", output)
    return SwapReport("video", output, stats.frames, stats.frames_swapped, stats.faces_swapped, 0.0, stats.timings)


@contextlib.contextmanager
def progress_bar(description: str, unit: str = "frame") -> Iterator[Progress]:
    """A tqdm bar (frames/s and ETA once the total is known) as a ``progress(done, total)`` callback.

    The bar appears with the first frame of more than one (a single image or an early error shows none).
    """
    bars: list[tqdm] = []

    def update(done: int, total: int | None) -> None:
        if not bars:
            if total == 1:
                return
            bars.append(tqdm(desc=description, unit=unit, total=total, dynamic_ncols=True, leave=False))
        bar = bars[0]
        if total is not None and bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


# ---------------------------------------------------------------------------------------------------- folders


@dataclass
class FolderReport:
    """What a folder run did."""

    written: list[SwapReport] = field(default_factory=list)
    skipped_existing: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        frames = sum(report.frames for report in self.written)
        faces = sum(report.faces_swapped for report in self.written)
        parts = [f"{len(self.written)} file(s) written ({frames} frame(s), {faces} face(s) swapped)",
                 f"{self.skipped_existing} already present (use --overwrite to redo)"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


def media_files(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Images and videos under ``folder`` (by extension, sorted), leaving out anything under ``exclude``."""
    extensions = set(IMAGE_EXTENSIONS) | set(VIDEO_EXTENSIONS)
    excluded = exclude.resolve() if exclude is not None else None
    files = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in extensions or path.name.startswith("."):
            continue
        if excluded is not None and path.resolve().is_relative_to(excluded):
            continue
        files.append(path)
    return files


def swap_folder(
    swapper: FaceSwapper,
    source_paths: Sequence[str | Path],
    target_folder: str | Path,
    output_folder: str | Path,
    selection: FaceSelection = DEFAULT_SELECTION,
    video: VideoOptions = DEFAULT_VIDEO,
    overwrite: bool = False,
) -> FolderReport:
    """Swap into every image and video of a folder tree, mirrored under ``output_folder`` (models loaded once).

    Existing outputs are skipped unless ``overwrite``; a file that fails is logged and skipped.
    """
    from utils.batch_files import SAME_AS_SOURCE, plan_batch

    target_folder, output_folder = Path(target_folder), Path(output_folder)
    if not target_folder.is_dir():
        raise GhostError(f"target folder {target_folder} does not exist")
    selection.check_sources(len(source_paths))
    files = media_files(target_folder, exclude=output_folder)
    plan = plan_batch(files, target_folder, output_folder, SAME_AS_SOURCE, overwrite)
    report = FolderReport(skipped_existing=len(plan.skipped_existing))
    report.failed.extend((item.source, reason) for item, reason in plan.refused)
    logger.info("%d file(s) to swap, %d already present", len(plan.items), len(plan.skipped_existing))
    for number, item in enumerate(plan.items, start=1):
        logger.info("[%d/%d] %s", number, len(plan.items), item.source)
        try:
            with progress_bar(item.source.name) as progress:
                result = swap_media(swapper, source_paths, item.source, item.output, selection, video, progress)
            report.written.append(result)
            logger.info("%s", result.summary())
        except (NoFaceFoundError, FaceIndexError, GhostError) as error:
            logger.warning("skipped %s: %s", item.source, error)
            report.failed.append((item.source, str(error)))
    return report
