"""One evaluation run: swap (or read) every pair with every generator, score each frame, write the reports.

Output layout: with one generator (or one --swapped_dir), ``<output_dir>/pairs.csv``, ``summary.json``,
``worst_pairs.png`` and ``swapped/<source>__<target>.png|.mkv``; with several, the same inside
``<output_dir>/<label>/`` for each, plus ``<output_dir>/comparison.json`` (label → summary).
"""
from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from utils.errors import AlignmentError, FaceIndexError, NoFaceFoundError, NSFWContentError
from utils.evaluation import metrics
from utils.evaluation.measures import FaceMeasures
from utils.evaluation.media import RESULT_VIDEO_EXTENSION, LosslessVideoWriter, is_video, read_frames, video_fps
from utils.evaluation.options import METRIC_NAMES, EvaluationOptions, default_eval_embeddings
from utils.evaluation.pairs import GeneratorSpec, Inputs, Pair, collect_inputs, find_result, generator_specs
from utils.evaluation.report import PairsCsv, Summary, WorstPairs, format_table, write_json
from utils.evaluation.scoring import EVAL_CROP_SIZE, FaceGeometry, FrameScorer, Gallery, MeasuredFace
from utils.image import read_image, write_image
from utils.inference.model_cache import ModelCache
from utils.inference.options import EMBEDDING_PATH_FIELDS, SwapOptions
from utils.inference.pipeline import Frame, FramePipeline, FrameResult, SourceFace
from utils.inference.selection import FaceSelection
from utils.inference.swap import FaceSwapper
from utils.inference.video import VideoOptions
from utils.ray_cluster import RayOptions

logger = logging.getLogger(__name__)

# A frame that raises one of these is skipped (and counted), not the whole run.
SKIPPED_ERRORS = (NoFaceFoundError, FaceIndexError, NSFWContentError, AlignmentError)
# A swapped frame with the target's geometry and the swapped face's (None: the target's), or why it is skipped.
Outcome = tuple[np.ndarray, FaceGeometry, FaceGeometry | None] | Exception


def _outcome(result: FrameResult) -> Outcome:
    """A pipeline frame's outcome: its output and the replaced face's detection (a frame without one is skipped)."""
    if not result.faces:
        return NoFaceFoundError("no target face found in this frame")
    target = result.faces[0].target
    return result.image, FaceGeometry(target.box, target.keypoints), None


@dataclass
class ScoredSource:
    """A source picture measured once for the whole run (its row in the retrieval gallery, its identity)."""

    path: Path
    face: MeasuredFace
    row: int
    identity: str


@dataclass
class GeneratorReport:
    """What one generator (or folder of results) scored and where its files are."""

    label: str
    folder: Path
    summary: Summary
    frames: int = 0
    skipped: int = 0
    missing_results: int = 0
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class EvaluationReport:
    """The whole run: one report per generator, the metrics that could not run and the table to print."""

    generators: list[GeneratorReport]
    unavailable: dict[str, str]
    eval_face_embeddings: str
    metric_names: tuple[str, ...]
    comparison: Path | None = None

    @property
    def table(self) -> str:
        summaries = {report.label: report.summary for report in self.generators}
        counts = ", ".join(f"{report.label}: {report.frames} frame(s) scored, {report.skipped} skipped"
                           + (f", {report.missing_results} result(s) missing" if report.missing_results else "")
                           for report in self.generators)
        return format_table(summaries, self.unavailable, self.metric_names, self.eval_face_embeddings) + "\n" + counts


@dataclass
class PairScores:
    """What scoring one pair gave: its frames' metric values, the worst of them with their crops, the counts.

    ``worst`` holds this pair's own worst frames (WorstPairs keeps a total order, so the run's worst frames are
    found among the pairs' worst), which is all a run's report needs of the crops.
    """

    frames: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    worst: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # frame -> target, swapped crop
    skipped: int = 0
    missing_results: int = 0


def measure_source(path: Path, swapper: FaceSwapper, scorer: FrameScorer) -> MeasuredFace | None:
    """Detect and measure one source picture; None (with a warning) when it has no usable face."""
    image = read_image(path)
    try:
        geometry = FaceGeometry(*swapper.detect(image, swapper.options.source_face_index, "source"))
        return scorer.measure_source(image, geometry)
    except SKIPPED_ERRORS as error:
        logger.warning("source %s left out: %s", path, error)
        return None


def scored_sources(inputs: Inputs, faces: Iterable[MeasuredFace | None]) -> dict[Path, ScoredSource]:
    """Every source with a usable face (``faces``: one per source, in order), numbered in the gallery's order."""
    scored: dict[Path, ScoredSource] = {}
    for path, identity, face in zip(inputs.sources, inputs.identities, faces):
        if face is not None:
            scored[path] = ScoredSource(path, face, len(scored), identity)
    return scored


def _gallery(sources: dict[Path, ScoredSource]) -> Gallery | None:
    if not sources or any(source.face.embedding is None for source in sources.values()):
        return None
    labels = list(dict.fromkeys(source.identity for source in sources.values()))
    return Gallery(torch.stack([source.face.embedding for source in sources.values()]),
                   torch.tensor([labels.index(source.identity) for source in sources.values()]))


class GeneratorRun:
    """Scores every pair with one generator (or one folder of results) and writes its files."""

    def __init__(self, spec: GeneratorSpec, folder: Path, base: FaceSwapper | None, scorer: FrameScorer | None,
                 sources: dict[Path, ScoredSource], options: EvaluationOptions,
                 unavailable: dict[str, str] | None = None) -> None:
        """``base`` and ``scorer`` None: this run only records pairs scored elsewhere (Ray), whose missing
        metrics are ``unavailable``."""
        self.spec, self.folder, self.scorer, self.sources, self.options = spec, folder, scorer, sources, options
        self.unavailable = scorer.unavailable if scorer is not None else dict(unavailable or {})
        self.swapper = None if base is None else (FaceSwapper(spec.swap_options, base.models)
                                                   if spec.swap_options else base)
        self.gallery = _gallery(sources)
        self.metric_names = tuple(name for name in METRIC_NAMES if name in options.metrics)
        self.values: dict[str, list[float]] = {name: [] for name in self.metric_names}
        self.worst = WorstPairs(self.metric_names, options.worst_pairs)
        self.report = GeneratorReport(spec.label, folder, {})

    def run(self, pairs: tuple[Pair, ...], scored: Iterable[PairScores] | None = None) -> GeneratorReport:
        """Score (or, with ``scored``, record the scores of) every pair in order, then write the reports."""
        table = PairsCsv(self.folder / "pairs.csv", self.metric_names)
        results = scored if scored is not None else map(self.score_pair, pairs)
        try:
            for pair, scores in tqdm(zip(pairs, results), total=len(pairs), desc=self.spec.label, unit="pair"):
                self.record(pair, scores, table)
        except BaseException:
            table.abort()
            raise
        self.report.files["pairs"] = table.close()
        self.report.summary = {name: metrics.summarize(values) for name, values in self.values.items()}
        for name, message in self.unavailable.items():
            self.report.summary[name]["unavailable"] = message
        self.report.files["summary"] = write_json(self.folder / "summary.json", self.report.summary)
        picture = self.worst.write(self.folder / "worst_pairs.png")
        if picture is not None:
            self.report.files["worst_pairs"] = picture
        return self.report

    def _frames(self, pair: Pair, scores: PairScores) -> Iterator[tuple[int, np.ndarray, Outcome]]:
        """``(index, target frame, outcome)`` of a pair: the swapped frame with the target's geometry and the
        swapped face's (None: the target's), or the error that makes the frame skipped."""
        step, limit = self.options.frame_step, self.options.max_frames
        if self.spec.swapped_dir is None:
            yield from self._swapped_frames(pair)
            return
        result = find_result(self.spec.swapped_dir, pair)
        if result is None:
            logger.warning("no result for %s in %s", pair.name, self.spec.swapped_dir)
            scores.missing_results += 1
            return
        for (index, frame), (_, swapped) in zip(read_frames(pair.target, step, limit), read_frames(result, step, limit)):
            yield index, frame, self._given(frame, swapped)

    def _swapped_frames(self, pair: Pair) -> Iterator[tuple[int, np.ndarray, Outcome]]:
        """The pair swapped by the frame pipeline, the code inference.py runs: the source prepared once, a photo as
        a stream of one frame, a video's frames tracked along the way and NSFW-sampled as a video's.

        Video frames are detected at the photo size and not smoothed: the scored frames are every
        ``--frame_step``-th frame, so an average over them would span skipped time, and a frame scores as the
        same picture would (tests/evaluation)."""
        swapper, step, limit = self.swapper, self.options.frame_step, self.options.max_frames
        frames = read_frames(pair.target, step, limit)
        try:
            source = swapper.prepare_source(read_image(pair.source))
        except SKIPPED_ERRORS as error:
            for index, frame in frames:
                yield index, frame, error
            return
        selection = FaceSelection(target_face_indices=(swapper.options.target_face_index,))
        if not is_video(pair.target):
            for index, frame in frames:
                yield index, frame, self._swap_photo(source, frame, selection)
            return
        video = VideoOptions()
        pipeline = FramePipeline(swapper, [source], selection, upscale=swapper.options.detection_upscale,
                                 nsfw_seconds=video.nsfw_check_seconds)
        seconds_per_frame = step / video_fps(pair.target)
        for count, (index, frame) in enumerate(frames):
            try:
                results = pipeline.push([Frame(frame, count, count * seconds_per_frame, index)])
            except SKIPPED_ERRORS as error:
                yield index, frame, error
                continue
            for result in results:
                yield result.frame.payload, result.frame.image, _outcome(result)
        for result in pipeline.flush():
            yield result.frame.payload, result.frame.image, _outcome(result)

    def _swap_photo(self, source: SourceFace, frame: np.ndarray, selection: FaceSelection) -> Outcome:
        swapper = self.swapper
        try:
            swapper.check_nsfw(frame, "target image")
            result = swapper.swap_photo([source], frame, selection)
            if swapper.options.check_output_nsfw:
                swapper.check_nsfw(result.image, "swapped output")
        except SKIPPED_ERRORS as error:
            return error
        return _outcome(result)

    def _given(self, target_frame: np.ndarray, given: np.ndarray) -> Outcome:
        """A result from --swapped_dir with the target's geometry (and the swapped face's, when it was resized)."""
        index = self.swapper.options.target_face_index
        try:
            target = FaceGeometry(*self.swapper.detect(target_frame, index, "target"))
            if given.shape == target_frame.shape:
                return given, target, None
            return given, target, FaceGeometry(*self.swapper.detect(given, index, "swapped"))
        except SKIPPED_ERRORS as error:
            return error

    def score_pair(self, pair: Pair) -> PairScores:
        """Swap (or read) and score every frame of one pair; writes its result under swapped/ when asked."""
        scores = PairScores()
        source = self.sources.get(pair.source)
        if source is None:
            return scores
        writer = None
        if self.options.save_swapped and self.spec.swapped_dir is None and is_video(pair.target):
            fps = video_fps(pair.target) / self.options.frame_step
            writer = LosslessVideoWriter(self.folder / "swapped" / f"{pair.name}{RESULT_VIDEO_EXTENSION}", fps)
        try:
            self._score_frames(pair, source, scores, writer)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
        return scores

    def _score_frames(self, pair: Pair, source: ScoredSource, scores: PairScores,
                      writer: LosslessVideoWriter | None) -> None:
        previous: tuple[np.ndarray, np.ndarray] | None = None
        worst = WorstPairs(self.metric_names, self.options.worst_pairs)  # this pair's worst frames
        crops: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for index, target_frame, outcome in self._frames(pair, scores):
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                swapped, target_geometry, swapped_geometry = outcome
                target_face, swapped_face = self.scorer.measure_pair(target_frame, target_geometry, swapped,
                                                                     swapped_geometry)
            except SKIPPED_ERRORS as error:
                logger.warning("%s frame %d skipped: %s", pair.name, index, error)
                scores.skipped += 1
                if writer is not None:
                    writer.write(target_frame)  # keeps the result's frames in step with the target's
                previous = None
                continue
            values = self.scorer.score(source.face, target_face, swapped_face, self.gallery, source.row)
            values["outside_face_change"] = self.scorer.outside_change(target_frame, swapped, target_face)
            values["temporal_flicker"] = self._flicker(previous, target_frame, swapped, target_face)
            scores.frames.append((index, values))
            if worst.offer(str(index), values, ()):
                crops[index] = (target_face.crop, swapped_face.crop)
                kept = worst.captions()
                crops = {frame: faces for frame, faces in crops.items() if str(frame) in kept}
            if writer is not None:
                writer.write(swapped)
            elif self.options.save_swapped and self.spec.swapped_dir is None:
                write_image(self.folder / "swapped" / f"{pair.name}.png", swapped, protect=(pair.source, pair.target))
            previous = (target_frame, swapped)
        scores.worst = crops

    def record(self, pair: Pair, scores: PairScores, table: PairsCsv) -> None:
        """Add one scored pair to the table, the metric values and the worst frames."""
        self.report.skipped += scores.skipped
        self.report.missing_results += scores.missing_results
        source = self.sources.get(pair.source)
        for index, values in scores.frames:
            self._record(pair, index, values, (source.face.crop, *scores.worst[index])
                         if index in scores.worst else None, table)

    def _flicker(self, previous: tuple[np.ndarray, np.ndarray] | None, target_frame: np.ndarray,
                 swapped: np.ndarray, target_face: MeasuredFace) -> float:
        if "temporal_flicker" not in self.metric_names or previous is None:
            return math.nan
        previous_target, previous_swapped = previous
        if not (previous_target.shape == target_frame.shape == swapped.shape == previous_swapped.shape):
            return math.nan
        region = metrics.face_square(target_face.matrix, EVAL_CROP_SIZE, target_frame.shape)
        return metrics.temporal_flicker(previous_swapped, swapped, previous_target, target_frame, region)

    def _record(self, pair: Pair, index: int, values: dict[str, float], faces: tuple[np.ndarray, ...] | None,
                table: PairsCsv) -> None:
        """``faces``: (source, target, swapped) crops, or None for a frame that is not among its pair's worst."""
        table.write(pair.source.name, pair.target.name, index, values)
        for name in self.metric_names:
            self.values[name].append(values[name])
        caption = pair.name + (f"#{index}" if is_video(pair.target) else "")
        if faces is not None:
            self.worst.offer(caption, values, faces)
        self.report.frames += 1


def _measure_paths(options: EvaluationOptions, swap_options: SwapOptions, eval_name: str) -> dict[str, str | None]:
    return {eval_name: getattr(swap_options, EMBEDDING_PATH_FIELDS[eval_name]),
            "liveportrait_motion_extractor": options.motion_extractor_model_path,
            "adaptive_wing_fan": options.eye_landmarks_model_path,
            "face_alignment": swap_options.face_alignment_model_path}


def build_scorer(options: EvaluationOptions, swap_options: SwapOptions, eval_name: str,
                 models: ModelCache | None = None) -> tuple[FaceSwapper, FrameScorer]:
    """The main generator's swapper and the frame scorer, sharing one model cache (the metric models load now)."""
    base = FaceSwapper(swap_options, models)
    measures = FaceMeasures(eval_name, base.device, swap_options.weights_dir,
                            _measure_paths(options, swap_options, eval_name), base.models)
    return base, FrameScorer(measures, options.metrics)


def run_evaluation(options: EvaluationOptions, swap_options: SwapOptions, models: ModelCache | None = None,
                   cluster: RayOptions | None = None) -> EvaluationReport:
    """Score every pair with every generator of ``options``; files under ``options.output_dir``.

    ``swap_options`` are the main generator's (and, with --swapped_dir, the detection settings). Raises
    GhostError for inputs that cannot make a run; frames without a usable face are skipped and counted. With
    ``cluster.ray_address`` the sources and pairs are measured by Ray actors (utils.evaluation.ray_scoring) and
    this process only writes the reports, the same files as without Ray.
    """
    options.check()
    inputs = collect_inputs(options)
    specs = generator_specs(options, swap_options)
    conditioning = [spec.swap_options.face_embeddings for spec in specs if spec.swap_options is not None]
    eval_name = options.eval_face_embeddings or default_eval_embeddings(conditioning)
    if eval_name in conditioning:
        logger.warning("identity is measured with %s, the model a generator was conditioned on: similarity and "
                       "retrieval will flatter it", eval_name)
    output = Path(options.output_dir)
    folders = [output if len(specs) == 1 else output / spec.label for spec in specs]
    if cluster is not None and cluster.ray_address:
        from utils.evaluation.ray_scoring import score_on_ray

        with score_on_ray(inputs, specs, folders, options, swap_options, eval_name, cluster) as measured:
            faces, unavailable, scored = measured
            report = _write_reports(inputs, specs, folders, options, eval_name, faces, unavailable, scored)
    else:
        base, scorer = build_scorer(options, swap_options, eval_name, models)
        faces = [measure_source(path, base, scorer) for path in tqdm(inputs.sources, desc="sources", leave=False)]
        report = _write_reports(inputs, specs, folders, options, eval_name, faces, scorer.unavailable, None,
                                base, scorer)
    if len(specs) > 1:
        report.comparison = write_json(output / "comparison.json",
                                       {item.label: item.summary for item in report.generators})
    return report


def _write_reports(inputs: Inputs, specs: list[GeneratorSpec], folders: list[Path], options: EvaluationOptions,
                   eval_name: str, faces: list[MeasuredFace | None], unavailable: dict[str, str],
                   scored: Iterator[PairScores] | None, base: FaceSwapper | None = None,
                   scorer: FrameScorer | None = None) -> EvaluationReport:
    """Score (``base``, ``scorer``) or record (``scored``: every generator's pairs, in order) and write reports.

    ``faces``: one measured face (or None) per source; ``unavailable``: the metrics whose weights are missing.
    """
    sources = scored_sources(inputs, faces)
    reports = []
    for spec, folder in zip(specs, folders):
        run = GeneratorRun(spec, folder, base, scorer, sources, options, unavailable)
        reports.append(run.run(inputs.pairs, None if scored is None else itertools.islice(scored, len(inputs.pairs))))
        logger.info("%s: %d frame(s) scored, reports in %s", spec.label, reports[-1].frames, folder)
    return EvaluationReport(reports, dict(unavailable), eval_name,
                            tuple(name for name in METRIC_NAMES if name in options.metrics))
