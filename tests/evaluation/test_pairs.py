"""What a run scores: pairs from folders or a CSV, results made elsewhere, the compared generators' options."""
from __future__ import annotations

from pathlib import Path

import pytest

from utils.errors import GhostError
from utils.evaluation.options import EvaluationOptions
from utils.evaluation.pairs import Pair, collect_inputs, find_result, generator_specs, parse_compare_entry
from utils.inference.options import SwapOptions


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    sources, targets = tmp_path / "sources", tmp_path / "targets"
    for folder, names in ((sources, ("ann.png", "bob.jpg")), (targets, ("t1.png", "clip.mp4", "readme.txt"))):
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(b"")
    return sources, targets


def test_every_source_meets_every_target(folders: tuple[Path, Path]) -> None:
    sources, targets = folders
    inputs = collect_inputs(EvaluationOptions(sources=str(sources), targets=str(targets)))
    assert [path.name for path in inputs.sources] == ["ann.png", "bob.jpg"]
    assert [pair.name for pair in inputs.pairs] == ["ann__clip", "ann__t1", "bob__clip", "bob__t1"]


def test_a_pairs_csv_chooses_the_pairs(folders: tuple[Path, Path], tmp_path: Path) -> None:
    sources, targets = folders
    table = tmp_path / "pairs.csv"
    table.write_text("source,target\nbob.jpg,t1.png\nbob.jpg,clip.mp4\n")
    inputs = collect_inputs(EvaluationOptions(sources=str(sources), targets=str(targets), pairs=str(table)))
    assert inputs.pairs == (Pair(sources / "bob.jpg", targets / "t1.png"), Pair(sources / "bob.jpg", targets / "clip.mp4"))
    assert inputs.sources == (sources / "bob.jpg",)  # the retrieval gallery: the sources of the run
    assert inputs.identities == ("bob",)
    table.write_text("source,target,source_identity\nann.png,t1.png,video_7\nbob.jpg,t1.png,video_7\n")
    inputs = collect_inputs(EvaluationOptions(sources=str(sources), targets=str(targets), pairs=str(table)))
    assert inputs.identities == ("video_7", "video_7")
    table.write_text("source,target,source_identity\nann.png,t1.png,a\nann.png,clip.mp4,b\n")
    with pytest.raises(GhostError, match="row 3: ann.png has two identities"):
        collect_inputs(EvaluationOptions(sources=str(sources), targets=str(targets), pairs=str(table)))
    table.write_text("source,target\nbob.jpg,nobody.png\n")
    with pytest.raises(GhostError, match="row 2: nobody.png"):
        collect_inputs(EvaluationOptions(sources=str(sources), targets=str(targets), pairs=str(table)))
    table.write_text("a,b\n")
    with pytest.raises(GhostError, match="columns source and target"):
        collect_inputs(EvaluationOptions(sources=str(sources), targets=str(targets), pairs=str(table)))


def test_inputs_that_cannot_make_a_run_are_refused(folders: tuple[Path, Path], tmp_path: Path) -> None:
    sources, targets = folders
    (sources / "ann.jpg").write_bytes(b"")
    with pytest.raises(GhostError, match="share the name 'ann'"):
        collect_inputs(EvaluationOptions(sources=str(sources), targets=str(targets)))
    with pytest.raises(GhostError, match="sources must be pictures"):
        collect_inputs(EvaluationOptions(sources=str(targets / "clip.mp4"), targets=str(targets)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GhostError, match="nothing to evaluate"):
        collect_inputs(EvaluationOptions(sources=str(empty), targets=str(targets)))
    with pytest.raises(GhostError, match="both needed"):
        EvaluationOptions(targets=str(targets)).check()
    with pytest.raises(GhostError, match="one or the other"):
        EvaluationOptions(sources="a", targets="b", swapped_dir=("c",), compare_G_path=("d",)).check()


def test_results_made_elsewhere_are_found_by_name(tmp_path: Path) -> None:
    (tmp_path / "ann__t1.jpg").write_bytes(b"")
    (tmp_path / "ann__clip.mkv").write_bytes(b"")
    (tmp_path / "ann__clip.png").write_bytes(b"")  # a picture is no result for a video target
    assert find_result(tmp_path, Pair(Path("ann.png"), Path("t1.png"))) == tmp_path / "ann__t1.jpg"
    assert find_result(tmp_path, Pair(Path("ann.png"), Path("clip.mp4"))) == tmp_path / "ann__clip.mkv"
    assert find_result(tmp_path, Pair(Path("bob.png"), Path("t1.png"))) is None
    (tmp_path / "ann__t1.png").write_bytes(b"")
    with pytest.raises(GhostError, match="several results for ann__t1"):
        find_result(tmp_path, Pair(Path("ann.png"), Path("t1.png")))


def test_a_compared_generator_takes_its_own_swap_options() -> None:
    base = SwapOptions(face_embeddings="cvl_vit", detection_threshold=0.8)
    ghostv1 = parse_compare_entry("w/GhostV1/G.safetensors:face_embeddings=arcface,align_mode=insightface_v1,"
                                  "enhance_output=false,num_blocks=2,inpainting_seed=none", base)
    assert (ghostv1.G_path, ghostv1.face_embeddings, ghostv1.align_mode) == ("w/GhostV1/G.safetensors", "arcface",
                                                                             "insightface_v1")
    assert ghostv1.enhance_output is False and ghostv1.num_blocks == 2 and ghostv1.inpainting_seed is None
    assert ghostv1.detection_threshold == 0.8  # not named: the main generator's
    assert parse_compare_entry(r"C:\weights\G.safetensors", base).G_path == r"C:\weights\G.safetensors"
    for entry, message in (("G.st:colour=red", "not a swap option"), ("G.st:num_blocks=two", "not a valid int"),
                           ("G.st:enhance_output=maybe", "not a boolean"), ("G.st:backbone=vgg", "unknown backbone")):
        with pytest.raises(GhostError, match=message):
            parse_compare_entry(entry, base)


def test_generators_get_unique_labels(tmp_path: Path) -> None:
    options = EvaluationOptions(sources="s", targets="t", compare_G_path=("w/GhostV1/G_unet_2blocks.safetensors",
                                                                          "x/GhostV1/G_unet_2blocks.safetensors"))
    labels = [spec.label for spec in generator_specs(options, SwapOptions())]
    assert labels == ["GhostV2_G_unet_2blocks", "GhostV1_G_unet_2blocks", "GhostV1_G_unet_2blocks_2"]
    (tmp_path / "tool one").mkdir()
    specs = generator_specs(EvaluationOptions(sources="s", targets="t", swapped_dir=(str(tmp_path / "tool one"),)),
                            SwapOptions())
    assert [(spec.label, spec.swap_options) for spec in specs] == [("tool_one", None)]
    with pytest.raises(GhostError, match="paste_back_mode none"):
        generator_specs(EvaluationOptions(sources="s", targets="t"), SwapOptions(paste_back_mode="none"))


def test_the_expression_restorer_is_compared_with_each_generator() -> None:
    options = EvaluationOptions(sources="s", targets="t", compare_G_path=("w/GhostV1/G_unet_2blocks.safetensors",),
                                compare_expression_restorer=(80,))
    specs = generator_specs(options, SwapOptions())
    assert [spec.label for spec in specs] == ["GhostV2_G_unet_2blocks", "GhostV1_G_unet_2blocks",
                                              "GhostV2_G_unet_2blocks_expression_80",
                                              "GhostV1_G_unet_2blocks_expression_80"]
    assert [spec.swap_options.expression_restorer_factor for spec in specs] == [0, 0, 80, 80]
    assert specs[3].swap_options.G_path == "w/GhostV1/G_unet_2blocks.safetensors"
    for bad, message in (({"compare_expression_restorer": (120,)}, "between 0 and 100"),
                         ({"compare_expression_restorer": (80,), "swapped_dir": ("x",)}, "use one or the other")):
        with pytest.raises(GhostError, match=message):
            EvaluationOptions(sources="s", targets="t", **bad).check()


def test_compared_face_options_take_lists_joined_by_plus() -> None:
    compared = parse_compare_entry("G.st:face_mask_types=box+occlusion,face_mask_padding=5+10,pixel_boost=512",
                                   SwapOptions())
    assert compared.face_mask_types == ("box", "occlusion") and compared.face_mask_padding == (5, 10, 5, 10)
    assert compared.pixel_boost == 512
    with pytest.raises(GhostError, match="multiple of 256"):
        parse_compare_entry("G.st:pixel_boost=300", SwapOptions())
