"""The ``--ray_address`` flags: connecting to a Ray cluster, sizing the model actors, checking the nodes' weights.

Ray is optional (``requirements-ray.txt``) and imported only when ``--ray_address`` is given. Every node runs
the code of this checkout and reads the weights from the same paths, so the repository, ``--weights_dir`` and
the input and output folders must be at the same place on every node (a shared filesystem, or copies).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from utils.errors import GhostError

logger = logging.getLogger(__name__)

RAY_REQUIREMENTS = "requirements-ray.txt"
LOCAL = "local"
AUTO = "auto"
# How long the address may take to answer: Ray itself waits minutes for an unreachable head node.
CONNECT_TIMEOUT_S = 10.0
DEFAULT_RAY_PORT = 6379
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RayOptions:
    """Where to run (None: in this process) and how many model actors, with how much GPU each."""

    ray_address: str | None = None
    ray_actors: int = 0  # 0: as many as the cluster's GPUs hold at ray_gpus_per_actor (see actor_plan)
    ray_gpus_per_actor: float | None = None  # None: 1 on a cluster with GPUs, else 0

    def check(self) -> None:
        if self.ray_actors < 0:
            raise GhostError(f"--ray_actors must be 0 (automatic) or more (got {self.ray_actors})")
        if self.ray_gpus_per_actor is not None and self.ray_gpus_per_actor < 0:
            raise GhostError(f"--ray_gpus_per_actor must be 0 or more (got {self.ray_gpus_per_actor})")


RAY_HELP = {
    "ray_address": "run on a Ray cluster: 'auto' (the cluster this machine joined with `ray start`), "
                   "HOST:PORT of its head node, or 'local' (a Ray instance on this machine only) "
                   f"[default: no Ray, one process; Ray needs `pip install -r {RAY_REQUIREMENTS}`]",
    "ray_actors": "model actors (each loads the models once) [default 0: one per --ray_gpus_per_actor share of "
                  "the cluster's GPUs; without GPUs, one per N CPUs, N being torch's thread count on this machine]",
    "ray_gpus_per_actor": "GPUs per model actor; a fraction shares a GPU (0.25: four actors per GPU) "
                          "[default: 1 on a cluster with GPUs, else 0]",
}


def add_ray_arguments(parser: Any) -> None:
    """``--ray_address``, ``--ray_actors``, ``--ray_gpus_per_actor`` (defaults from :class:`RayOptions`)."""
    from utils.cli import add_option_arguments

    add_option_arguments(parser, RayOptions, RAY_HELP)


def import_ray() -> ModuleType:
    """``ray`` with ``ray.data`` loaded, or one GhostError naming the requirements file."""
    try:
        import ray
        import ray.data  # noqa: F401 - the runners use ray.data
    except ImportError as error:
        raise GhostError(f"--ray_address needs Ray, which is not installed ({error}): "
                         f"pip install -r {RAY_REQUIREMENTS}") from None
    return ray


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise GhostError unless something answers at ``HOST[:PORT]`` (``ray://`` addresses too) within ``timeout_s``."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":") if ":" in target else (target, "", str(DEFAULT_RAY_PORT))
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return
    except ValueError:
        raise GhostError(f"--ray_address {address!r} is not HOST:PORT, 'auto' or 'local'") from None
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise GhostError(f"cannot reach the Ray cluster at {address} ({reason} within {timeout_s:.0f} s): start it "
                         "with `ray start --head` on the head node, and pass its HOST:PORT or 'auto'") from None


def worker_environment() -> dict[str, Any]:
    """The runtime environment of every task and actor: this checkout importable (at the same path on each node)."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {"env_vars": {"PYTHONPATH": path}}


@contextlib.contextmanager
def ray_session(address: str, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Connect to (``auto``, ``HOST:PORT``) or start (``local``) Ray for the duration of the block.

    A process that already called ``ray.init`` (a test, a notebook) keeps its instance, which is not shut down.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    settings: dict[str, Any] = {"runtime_env": worker_environment(), "logging_level": logging.WARNING,
                                "include_dashboard": False}
    if address == LOCAL:
        ray.init(address=LOCAL, num_cpus=num_cpus, **settings)  # a new instance, even beside a `ray start` one
    else:
        if address != AUTO:
            check_reachable(address)
        try:
            ray.init(address=address, **settings)
        except ConnectionError as error:
            hint = " (no cluster was started on this machine: `ray start --head`, or --ray_address local)" \
                if address == AUTO else ""
            raise GhostError(f"cannot connect to the Ray cluster at {address}: {error}{hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def actor_plan(resources: Mapping[str, float], options: RayOptions, cpu_threads: int = 1) -> tuple[int, float]:
    """``(actors, GPUs per actor)`` for a cluster with ``resources`` (``ray.cluster_resources()``).

    Without GPUs, the default is one actor per ``cpu_threads`` CPUs (the threads each actor computes with).
    """
    gpus = float(resources.get("GPU", 0))
    per_actor = options.ray_gpus_per_actor if options.ray_gpus_per_actor is not None else (1.0 if gpus else 0.0)
    if per_actor > 0 and gpus < per_actor:
        raise GhostError(f"--ray_gpus_per_actor {per_actor:g}: the cluster has {gpus:g} GPU(s); "
                         "use --ray_gpus_per_actor 0 to run the models on CPUs")
    if options.ray_actors:
        return options.ray_actors, per_actor
    if per_actor > 0:
        return max(1, int(gpus / per_actor + 1e-9)), per_actor
    return max(1, int(resources.get("CPU", 1)) // max(1, cpu_threads)), per_actor


def node_label() -> str:
    """``hostname (ip)`` of the node this code runs on, for messages."""
    try:
        import ray

        address = ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - only decorates a message
        address = "?"
    return f"{socket.gethostname()} ({address})"


def missing_files(paths: Iterable[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """``(this node's label, [(description, path) of the files that are not there])``: run on every node."""
    return node_label(), [(description, path) for description, path in paths if not Path(path).is_file()]


def check_files_on_nodes(ray: ModuleType, files: list[tuple[str, str]], need_gpu: bool, advice: str) -> None:
    """Raise one GhostError naming the first node (with a GPU, when ``need_gpu``) that lacks one of ``files``."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [node for node in ray.nodes() if node.get("Alive")
             and (not need_gpu or node.get("Resources", {}).get("GPU", 0) > 0)]
    check = ray.remote(num_cpus=0)(missing_files)
    answers = ray.get([check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                       .remote(files) for node in nodes])
    for label, missing in answers:
        if missing:
            description, path = missing[0]
            more = f" (and {len(missing) - 1} more file(s))" if len(missing) > 1 else ""
            raise GhostError(f"node {label} is missing {path} ({description}){more}: {advice}")


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: Ray's ``cause``, ``__cause__`` and ``__context__``, breadth first."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [getattr(current, "cause", None), current.__cause__, current.__context__]


GHOST_ERROR_LINE = re.compile(r"^utils\.errors\.\w+: (.+)$", re.MULTILINE)


def user_error(error: BaseException) -> GhostError | None:
    """The GhostError a failed Ray run carries (raised in a task or an actor), or None.

    Ray wraps a task's exception (RayTaskError, UserCodeException); an actor that failed to start only
    carries its traceback as text, whose last ``utils.errors.<Error>: message`` line is then used.
    """
    for cause in _causes(error):
        if isinstance(cause, GhostError) and not type(cause).__name__.startswith("RayTaskError"):
            return GhostError(str(cause))
    lines = GHOST_ERROR_LINE.findall(str(error))
    return GhostError(lines[-1]) if lines else None


def portable(error: GhostError) -> GhostError:
    """A plain GhostError with ``error``'s message: our subclasses take several arguments and do not unpickle."""
    return GhostError(str(error))
