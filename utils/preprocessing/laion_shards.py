"""Reading img2dataset output (LAION-Face): ``laion_face_data/split_NNNNN/<shard>.{tar,parquet}``.

Each ``.tar`` holds ``<key>.jpg`` (or ``.png``) and ``<key>.json`` members; the json's ``SAMPLE_ID`` names the
sample. The ``.parquet`` beside it only gives the number of successfully downloaded rows (progress total).
"""
from __future__ import annotations

import json
import logging
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.errors import DatasetError

logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Shard:
    """One img2dataset shard: its split folder name, shard name (file stem) and files."""

    split: str
    name: str
    tar_path: Path
    parquet_path: Path | None


def split_dir(base_dir: Path, part_index: int) -> Path:
    return Path(base_dir) / "laion_face_data" / f"split_{part_index:05d}"


def list_shards(base_dir: str | Path, part_indices: Sequence[int]) -> list[Shard]:
    """Shards of the requested splits, in split order then by name (raises DatasetError if a split is missing)."""
    shards = []
    for part_index in part_indices:
        folder = split_dir(Path(base_dir), part_index)
        if not folder.is_dir():
            raise DatasetError(f"LAION-Face split folder {folder} does not exist (check --laion_face_base_dir "
                               "and --laion_face_part_indices)")
        for tar_path in sorted(folder.glob("*.tar")):
            parquet = tar_path.with_suffix(".parquet")
            shards.append(Shard(folder.name, tar_path.stem, tar_path, parquet if parquet.exists() else None))
    return shards


def successful_rows(shard: Shard) -> int | None:
    """Rows with status 'success' in the shard's parquet (None when unknown)."""
    if shard.parquet_path is None:
        return None
    try:
        import pyarrow.parquet as parquet

        table = parquet.read_table(shard.parquet_path, columns=["status"])
    except Exception as error:  # noqa: BLE001 - the count only feeds the progress bar
        logger.debug("cannot read %s: %s", shard.parquet_path, error)
        return None
    return sum(1 for status in table.column("status").to_pylist() if status == "success")


@dataclass(frozen=True)
class ShardSample:
    """One sample of a shard: its id and the raw (still encoded) image bytes."""

    sample_id: str
    member: str
    data: bytes


def iter_samples(shard: Shard) -> Iterator[ShardSample]:
    """Samples that have both an image and a json member, in the tar's order; ids from ``SAMPLE_ID``."""
    pending: dict[str, dict[str, Any]] = {}
    try:
        archive = tarfile.open(shard.tar_path)
    except (tarfile.TarError, OSError) as error:
        raise DatasetError(f"cannot open shard {shard.tar_path}: {error}") from None
    try:
        with archive:
            for member in archive:
                if not member.isfile():
                    continue
                stem, _, suffix = member.name.rpartition(".")
                suffix = "." + suffix.lower()
                if suffix not in IMAGE_SUFFIXES + (".json",):
                    continue
                handle = archive.extractfile(member)
                data = handle.read() if handle else b""
                parts = pending.setdefault(stem, {})
                if suffix == ".json":
                    parts["json"] = data
                else:
                    parts["image"], parts["member"] = data, member.name
                if "json" in parts and "image" in parts:
                    del pending[stem]
                    yield ShardSample(_sample_id(parts["json"], stem), parts["member"], parts["image"])
    except (tarfile.TarError, OSError, EOFError) as error:  # a truncated or damaged shard, found while reading
        raise DatasetError(f"cannot read shard {shard.tar_path} to the end: {error}") from None


def _sample_id(payload: bytes, fallback: str) -> str:
    try:
        return str(int(json.loads(payload)["SAMPLE_ID"]))
    except (ValueError, KeyError, TypeError):
        return Path(fallback).name
