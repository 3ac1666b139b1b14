"""What an evaluation run scores: the source/target pairs, the generators (or folders of results) and their names.

Pairs are every source with every target, or the rows of a ``pairs.csv`` (columns ``source`` and ``target``:
file names inside --sources / --targets, or paths relative to the CSV; an optional ``source_identity`` column
names the person, so that id_retrieval accepts any picture of them, as the FaceForensics++ protocol does). A
result made elsewhere is found as ``<source stem>__<target stem>.<extension>`` in its --swapped_dir.
"""
from __future__ import annotations

import csv
import re
import types
import typing
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from models.registry import CHECKPOINTS
from utils.errors import GhostError
from utils.evaluation.media import MEDIA_EXTENSIONS, VIDEO_EXTENSIONS, is_video, list_media
from utils.evaluation.options import EvaluationOptions
from utils.image import IMAGE_EXTENSIONS
from utils.inference.options import SwapOptions

PAIR_SEPARATOR = "__"
# "PATH:field=value,field=value": a compared generator with some swap options of its own.
COMPARE_ENTRY = re.compile(r"^(?P<path>.*?)(?::(?P<settings>[A-Za-z_]\w*=[^:]*))?$")
_SWAP_HINTS = typing.get_type_hints(SwapOptions)


@dataclass(frozen=True)
class Pair:
    """One source picture and one target picture or video."""

    source: Path
    target: Path

    @property
    def name(self) -> str:
        """``<source stem>__<target stem>``: the result's file name without extension."""
        return f"{self.source.stem}{PAIR_SEPARATOR}{self.target.stem}"


@dataclass(frozen=True)
class Inputs:
    """The run's sources (in retrieval-gallery order), each source's identity label, and the pairs."""

    sources: tuple[Path, ...]
    pairs: tuple[Pair, ...]
    identities: tuple[str, ...]


@dataclass(frozen=True)
class GeneratorSpec:
    """One column of the comparison: a generator with its swap options, or a folder of results made elsewhere."""

    label: str
    swap_options: SwapOptions | None = None
    swapped_dir: Path | None = None


def _check_unique_stems(paths: list[Path], what: str) -> None:
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise GhostError(f"two {what} share the name {path.stem!r} ({seen[path.stem]} and {path}); results are "
                             f"named <source stem>{PAIR_SEPARATOR}<target stem>, so rename one")
        seen[path.stem] = path


def _resolve(entry: str, folder: Path, csv_path: Path, row: int) -> Path:
    for candidate in (folder / entry if folder.is_dir() else None, csv_path.parent / entry, Path(entry)):
        if candidate is not None and candidate.is_file():
            return candidate
    raise GhostError(f"{csv_path} row {row}: {entry} is neither in {folder} nor beside the CSV")


def _read_pairs_csv(csv_path: Path, sources: Path, targets: Path) -> tuple[list[Pair], dict[Path, str]]:
    if not csv_path.is_file():
        raise GhostError(f"--pairs {csv_path} does not exist")
    pairs: list[Pair] = []
    identities: dict[Path, str] = {}
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"source", "target"} <= set(reader.fieldnames):
            raise GhostError(f"--pairs {csv_path} needs a header with the columns source and target")
        for index, row in enumerate(reader, start=2):
            pair = Pair(_resolve(row["source"], sources, csv_path, index), _resolve(row["target"], targets, csv_path, index))
            identity = row.get("source_identity") or pair.source.stem
            if identities.setdefault(pair.source, identity) != identity:
                raise GhostError(f"{csv_path} row {index}: {row['source']} has two identities "
                                 f"({identities[pair.source]} and {identity})")
            pairs.append(pair)
    return pairs, identities


def collect_inputs(options: EvaluationOptions) -> Inputs:
    """The sources and pairs of a run (checked: images as sources, unique names, at least one pair)."""
    sources_location, targets_location = Path(options.sources), Path(options.targets)
    if options.pairs:
        pairs, identities = _read_pairs_csv(Path(options.pairs), sources_location, targets_location)
        sources = list(identities)
        targets = list(dict.fromkeys(pair.target for pair in pairs))
    else:
        sources = list_media(sources_location, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
        targets = list_media(targets_location, MEDIA_EXTENSIONS)
        pairs = [Pair(source, target) for source in sources for target in targets]
        identities = {source: source.stem for source in sources}
    videos = [path for path in sources if is_video(path)]
    if videos:
        raise GhostError(f"sources must be pictures; {videos[0]} is a video (take one of its frames)")
    _check_unique_stems(sources, "sources")
    _check_unique_stems(targets, "targets")
    if not pairs:
        raise GhostError(f"nothing to evaluate: no picture found in {sources_location} or no picture or video in "
                         f"{targets_location}")
    return Inputs(tuple(sources), tuple(pairs), tuple(identities[source] for source in sources))


def find_result(swapped_dir: Path, pair: Pair) -> Path | None:
    """The result of ``pair`` in a folder of results made elsewhere (None when absent)."""
    extensions = VIDEO_EXTENSIONS if is_video(pair.target) else IMAGE_EXTENSIONS
    matches = sorted(path for path in swapped_dir.glob(f"{glob_escape(pair.name)}.*")
                     if path.suffix.lower() in extensions)
    if len(matches) > 1:
        raise GhostError(f"{swapped_dir} holds several results for {pair.name}: {', '.join(p.name for p in matches)}")
    return matches[0] if matches else None


def glob_escape(text: str) -> str:
    """``text`` with the glob wildcards ``*?[`` made literal."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _convert(name: str, text: str) -> Any:
    kind = _SWAP_HINTS[name]
    if typing.get_origin(kind) is tuple:  # a list option: items joined by "+" (face_mask_types=box+occlusion)
        element = typing.get_args(kind)[0]
        try:
            return tuple(element(item) for item in text.split("+"))
        except ValueError:
            raise GhostError(f"--compare_G_path: {name}={text} is not a list of {element.__name__} joined by +"
                             ) from None
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        if text.lower() == "none":
            return None
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise GhostError(f"--compare_G_path: {name}={text} is not a boolean (true or false)")
        return text.lower() in ("true", "1", "yes")
    try:
        return kind(text)
    except ValueError:
        raise GhostError(f"--compare_G_path: {name}={text} is not a valid {kind.__name__}") from None


def parse_compare_entry(entry: str, base: SwapOptions) -> SwapOptions:
    """The swap options of one ``--compare_G_path`` entry: ``PATH`` or ``PATH:field=value,field=value``.

    Fields are inference.py's flags without dashes (``face_embeddings=arcface,align_mode=insightface_v1``; list
    values joined by ``+``: ``face_mask_types=box+occlusion``); unnamed fields keep the main generator's value.
    """
    match = COMPARE_ENTRY.match(entry)
    changes: dict[str, Any] = {"G_path": match["path"]}
    names = {item.name for item in fields(SwapOptions)}
    for setting in filter(None, (match["settings"] or "").split(",")):
        name, _, value = setting.partition("=")
        if name not in names or name == "G_path":
            raise GhostError(f"--compare_G_path {entry}: {name!r} is not a swap option (inference.py flag)")
        changes[name] = _convert(name, value)
    try:
        return replace(base, **changes)
    except ValueError as error:
        raise GhostError(f"--compare_G_path {entry}: {error}") from None


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _generator_label(path: str | Path) -> str:
    # Released generators share a file name (GhostV1/ and GhostV2/G_unet_2blocks), so the folder is kept too.
    path = Path(path)
    return _label(f"{path.parent.name}_{path.stem}" if path.parent.name else path.stem)


def _unique(labels: list[str]) -> list[str]:
    result: list[str] = []
    for label in labels:
        candidate, number = label, 2
        while candidate in result:
            candidate, number = f"{label}_{number}", number + 1
        result.append(candidate)
    return result


def generator_specs(options: EvaluationOptions, swap_options: SwapOptions) -> list[GeneratorSpec]:
    """The generators (or result folders) to score, main one first, each with a unique label."""
    if options.swapped_dir:
        folders = [Path(folder) for folder in options.swapped_dir]
        for folder in folders:
            if not folder.is_dir():
                raise GhostError(f"--swapped_dir {folder} is not a folder")
        labels = _unique([_label(folder.name) for folder in folders])
        return [GeneratorSpec(label, swapped_dir=folder) for label, folder in zip(labels, folders)]
    if swap_options.paste_back_mode == "none":
        raise GhostError("evaluate.py scores the pasted result; --paste_back_mode none returns the bare 256x256 face")
    all_options = [swap_options] + [parse_compare_entry(entry, swap_options) for entry in options.compare_G_path]
    default_path = CHECKPOINTS["ghostv2_generator"].path
    runs = [(_generator_label(item.G_path or default_path), item) for item in all_options]
    # Each generator once more per --compare_expression_restorer factor (the expression restorer at that factor).
    runs += [(f"{label}_expression_{factor:g}", replace(item, expression_restorer_factor=factor))
             for factor in options.compare_expression_restorer for label, item in runs]
    labels = _unique([label for label, _ in runs])
    return [GeneratorSpec(label, swap_options=item) for label, (_, item) in zip(labels, runs)]
