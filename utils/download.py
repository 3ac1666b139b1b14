"""Downloading the released checkpoints (resumable) and checking a weights folder.

Used by ``download_inference_models.sh`` / ``download_all_models.sh`` through ``download_weights.py``;
the file list lives in models/registry.py only.
"""
from __future__ import annotations

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from models.registry import HUB_MODELS, CheckpointSpec, read_manifest, specs_for_set, weights_root
from utils.checkpoint import compare_state_dicts, read_state_dict
from utils.errors import GhostError

logger = logging.getLogger(__name__)
CHUNK = 1 << 20


def download_file(url: str, destination: Path, timeout: float = 60.0) -> None:
    """Fetch ``url`` into ``destination``, resuming a ``.part`` file left by an interrupted run."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if offset and response.status != 206:  # the server ignored the range: start again
                offset = 0
            total = response.headers.get("Content-Length")
            total = int(total) + offset if total is not None else None
            with partial.open("ab" if offset else "wb") as handle, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=destination.name
            ) as progress:
                while chunk := response.read(CHUNK):
                    handle.write(chunk)
                    progress.update(len(chunk))
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # range past the end: the partial file is already complete
            partial.replace(destination)
            return
        raise GhostError(f"download of {url} failed: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise GhostError(f"download of {url} failed: {error}; run the script again to resume") from None
    partial.replace(destination)


def download_checkpoints(download_set: str, weights_dir: Path | None = None) -> list[str]:
    """Download every checkpoint of ``download_set`` that is not present yet; return the failures."""
    root = weights_root(weights_dir)
    failures = []
    for spec in specs_for_set(download_set):
        path = root / spec.path
        if path.is_file():
            logger.info("present: %s", path)
            continue
        logger.info("downloading %s -> %s", spec.url, path)
        try:
            download_file(spec.url, path)
        except GhostError as error:
            logger.error("%s", error)
            failures.append(spec.release_file)
    return failures


def prefetch_hub_models(download_set: str) -> list[str]:
    """Put the Hugging Face models of ``download_set`` in the local Hugging Face cache; return the failures."""
    from huggingface_hub import snapshot_download

    failures = []
    for hub in HUB_MODELS.values():
        if download_set != "all" and hub.download_set != "inference":
            continue
        logger.info("fetching %s (%s) into the Hugging Face cache", hub.model_id, hub.description)
        try:
            snapshot_download(hub.model_id)
        except Exception as error:  # noqa: BLE001 - any hub failure is reported and counted
            logger.error("could not fetch %s: %s", hub.model_id, error)
            failures.append(hub.model_id)
    return failures


@dataclass
class CheckResult:
    """Outcome of checking one checkpoint file against its manifest."""

    spec: CheckpointSpec
    path: Path
    problem: str | None


def check_weights(download_set: str, weights_dir: Path | None = None) -> list[CheckResult]:
    """Compare each present file of ``download_set`` with its manifest (keys after normalisation, shapes)."""
    import torch

    from models.registry import convert_state_dict

    root = weights_root(weights_dir)
    results = []
    for spec in specs_for_set(download_set):
        path = root / spec.path
        if not path.is_file():
            results.append(CheckResult(spec, path, f"missing (run bash {spec.download_script})"))
            continue
        try:
            state_dict = convert_state_dict(spec.name, read_state_dict(path))
        except GhostError as error:
            results.append(CheckResult(spec, path, str(error)))
            continue
        expected = {key: torch.empty(shape, device="meta") for key, (shape, _) in read_manifest(spec.manifest)["keys"].items()}
        missing, unexpected, wrong = compare_state_dicts(expected, state_dict, spec.optional_key_suffixes)
        problems = [f"{len(keys)} {label} (e.g. {keys[0]})" for label, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)) if keys]
        results.append(CheckResult(spec, path, "; ".join(problems) or None))
    return results
