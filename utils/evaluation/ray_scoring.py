"""evaluate.py on a Ray cluster (``--ray_address``): actors measure the sources, then swap and score the pairs.

Two Ray Data passes, each over actors that build the swapper and the metric models once (run.build_scorer):
the sources (detection, evaluation crop, embedding), then every (generator, pair) with the sources' embeddings.
Results come back in input order (``preserve_order``), so this process writes pairs.csv, summary.json and
worst_pairs.png exactly as one process does; the actors write swapped/ themselves (a shared output folder).
Each pair is scored whole by one actor (a video's flicker needs its previous frame), and sends back its frames'
values and its own worst frames' crops only.
"""
from __future__ import annotations

import contextlib
import json
import pickle
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import GhostError
from utils.evaluation.options import EvaluationOptions
from utils.evaluation.pairs import GeneratorSpec, Inputs, Pair
from utils.evaluation.run import PairScores
from utils.inference.options import SwapOptions
from utils.ray_cluster import RayOptions, actor_plan, portable, ray_session, user_error

NO_CROP = np.zeros((0, 0, 3), np.uint8)  # the actors need the sources' embeddings, not their crops


class _Stage:
    """What both actors share: torch's thread count of the driver, the swapper and scorer, the node in errors."""

    def __init__(self, options: EvaluationOptions, swap_options: SwapOptions, eval_name: str,
                 torch_threads: int) -> None:
        import torch

        from utils.evaluation.run import build_scorer

        torch.set_num_threads(torch_threads)  # CPU sums then split as in the driver's single process
        self.options = options
        self.base, self.scorer = self.guarded(build_scorer, options, swap_options, eval_name)

    @staticmethod
    def guarded(function: Any, *args: Any) -> Any:
        """``function(*args)``; our errors (missing weights, unreadable files) name the node."""
        from utils.ray_cluster import node_label

        try:
            return function(*args)
        except GhostError as error:
            raise GhostError(f"node {node_label()}: {error}") from None


class SourceStage(_Stage):
    """Measures source pictures: a batch of ``path`` → pickled MeasuredFace (or None) and the missing metrics."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from utils.evaluation.run import measure_source

        faces = [pickle.dumps(self.guarded(measure_source, Path(str(path)), self.base, self.scorer))
                 for path in batch["path"]]
        return {"face": faces, "unavailable": [json.dumps(self.scorer.unavailable)] * len(faces)}


class PairStage(_Stage):
    """Swaps and scores pairs: a batch of (``generator``, ``source``, ``target``) → pickled PairScores."""

    def __init__(self, options: EvaluationOptions, swap_options: SwapOptions, eval_name: str, torch_threads: int,
                 specs: list[GeneratorSpec], folders: list[Path], sources: dict) -> None:
        from utils.evaluation.run import GeneratorRun

        super().__init__(options, swap_options, eval_name, torch_threads)
        self.runs = [GeneratorRun(spec, folder, self.base, self.scorer, sources, options)
                     for spec, folder in zip(specs, folders)]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        scores = [pickle.dumps(self.guarded(self.runs[int(generator)].score_pair, Pair(Path(str(source)),
                                                                                        Path(str(target)))))
                  for generator, source, target in zip(batch["generator"], batch["source"], batch["target"])]
        return {"scores": scores}


def _batches(dataset: Any) -> Iterator[dict[str, np.ndarray]]:
    """Every batch of results, in order; a failed run becomes our one-line error."""
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except GhostError:
        raise
    except Exception as error:  # noqa: BLE001 - Ray wraps what the actors raised
        found = user_error(error)
        if found is None:
            raise GhostError(f"the Ray run failed: {str(error).strip().splitlines()[-1]}") from error
        raise portable(found) from None


@contextlib.contextmanager
def score_on_ray(inputs: Inputs, specs: list[GeneratorSpec], folders: list[Path], options: EvaluationOptions,
                 swap_options: SwapOptions, eval_name: str, cluster: RayOptions
                 ) -> Iterator[tuple[list[Any], dict[str, str], Iterator[PairScores]]]:
    """Inside the block: ``(measured source faces, missing metrics, every generator's PairScores in pair order)``.

    The last is streamed: the Ray session stays open until the block ends.
    """
    import torch

    from utils.evaluation.run import scored_sources

    cluster.check()
    threads = torch.get_num_threads()
    with ray_session(cluster.ray_address) as ray:
        actors, gpus = actor_plan(ray.cluster_resources(), cluster, threads)
        resources = {"batch_size": 1, "compute": ray.data.ActorPoolStrategy(size=actors), "num_gpus": gpus,
                     "num_cpus": 1}
        context = ray.data.DataContext.get_current()
        preserve_order = context.execution_options.preserve_order
        context.execution_options.preserve_order = True  # the reports list pairs in their input order
        try:
            common = (options, swap_options, eval_name, threads)
            paths = ray.data.from_items([{"path": str(path)} for path in inputs.sources])
            measured = paths.map_batches(SourceStage, fn_constructor_args=common, **resources)
            faces, unavailable = [], {}
            for batch in _batches(measured):
                faces += [pickle.loads(face) for face in batch["face"]]
                for missing in batch["unavailable"]:
                    unavailable.update(json.loads(str(missing)))
            sources = {path: replace(source, face=replace(source.face, crop=NO_CROP))
                       for path, source in scored_sources(inputs, faces).items()}
            pairs = ray.data.from_items([{"generator": index, "source": str(pair.source), "target": str(pair.target)}
                                         for index in range(len(specs)) for pair in inputs.pairs])
            scored = pairs.map_batches(PairStage, fn_constructor_args=(*common, specs, folders, sources), **resources)
            yield faces, unavailable, (pickle.loads(scores) for batch in _batches(scored) for scores in batch["scores"])
        finally:
            context.execution_options.preserve_order = preserve_order
