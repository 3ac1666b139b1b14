"""Recognition models, the embedding API and the DFA aligner (the kit's vectors cover full-size numerics)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from models.adaface import AdaFaceBackbone
from models.arcface import IResNet
from models.cvlface import ARCFACE_TEMPLATE_112, CVLViT, convert_state_dict
from models.cvlface_aligner import DifferentiableFaceAligner, similarity_transform
from models.embeddings import (
    DEFAULT_FACE_EMBEDDINGS,
    FACE_EMBEDDING_NAMES,
    FaceEmbedder,
    get_face_embeddings,
    load_face_embedder,
)
from models.registry import CHECKPOINTS, load_model
from models.registry import convert_state_dict as registry_convert
from tests.standin_weights import standin_state_dict
from utils.checkpoint import write_state_dict

TINY_WIDTHS = (8, 8, 16, 16)


def tiny_iresnet() -> IResNet:
    return IResNet(layers=(1, 1, 1, 1), widths=TINY_WIDTHS)


def tiny_vit() -> CVLViT:
    return CVLViT(embed_dim=32, depth=2, num_heads=4)


def faces(batch: int = 2, size: int = 256, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 2 - 1


def test_default_and_names() -> None:
    assert DEFAULT_FACE_EMBEDDINGS == "cvl_vit" == FACE_EMBEDDING_NAMES[0]
    assert set(FACE_EMBEDDING_NAMES) <= set(CHECKPOINTS)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="cvl_vit, cvl_adaface, cvl_arcface, adaface, arcface, facenet"):
        load_face_embedder("vggface")
    with pytest.raises(ValueError, match="unknown face embeddings"):
        FaceEmbedder("insightface", tiny_iresnet())


@pytest.mark.parametrize(
    ("name", "model", "input_size"),
    [
        ("arcface", tiny_iresnet, 112),
        ("cvl_arcface", tiny_iresnet, 112),
        ("adaface", lambda: AdaFaceBackbone(units=(1, 1, 1, 1), widths=TINY_WIDTHS), 112),
        ("cvl_vit", tiny_vit, 112),
    ],
)
def test_embedder_convention(name: str, model, input_size: int) -> None:
    torch.manual_seed(0)
    embedder = FaceEmbedder(name, model())
    images = faces()
    assert embedder.input_size == input_size
    torch.testing.assert_close(embedder.resize(images), F.interpolate(images, [input_size] * 2, mode="bilinear"))
    with torch.no_grad():
        embedding = get_face_embeddings(images, embedder)
        raw = embedder.model(embedder.resize(images))
    assert embedding.shape == (2, 512)
    if name == "arcface":
        assert not embedder.normalize
        torch.testing.assert_close(embedding, raw, rtol=0, atol=0)
    else:
        assert embedder.normalize
        torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))


def test_adaface_with_norm_is_unit_and_without_is_raw() -> None:
    torch.manual_seed(0)
    backbone = AdaFaceBackbone(units=(1, 2, 1, 1), widths=TINY_WIDTHS, with_norm=False).eval()
    images = faces(size=112)
    with torch.no_grad():
        raw = backbone(images)
        backbone.with_norm = True
        normalised = backbone(images)
    torch.testing.assert_close(normalised, raw / raw.norm(dim=1, keepdim=True))


def test_vit_rejects_other_sizes() -> None:
    with pytest.raises(ValueError, match="112"):
        tiny_vit()(faces(size=128))


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("arcface", tiny_iresnet),
        ("adaface", lambda: AdaFaceBackbone(units=(1, 1, 1, 1), widths=TINY_WIDTHS)),
        ("cvl_vit", tiny_vit),
    ],
)
def test_embedding_keeps_gradients_for_the_input_only(name: str, model) -> None:
    torch.manual_seed(0)
    embedder = FaceEmbedder(name, model()).train()
    assert not embedder.model.training, "the identity model must stay in eval mode"
    assert not any(parameter.requires_grad for parameter in embedder.parameters())
    images = faces().requires_grad_(True)
    with torch.no_grad():
        target = embedder(faces(seed=1))
    identity_loss = (1 - F.cosine_similarity(embedder(images), target)).mean()
    identity_loss.backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    assert images.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in embedder.parameters())


def test_eval_is_deterministic_despite_dropout() -> None:
    torch.manual_seed(0)
    embedder = FaceEmbedder("cvl_vit", CVLViT(embed_dim=32, depth=2, num_heads=4, drop_path_rate=0.5)).train()
    images = faces(batch=3)
    with torch.no_grad():
        torch.testing.assert_close(embedder(images), embedder(images), rtol=0, atol=0)


def _without_num_batches_tracked(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in state_dict.items() if not key.endswith("num_batches_tracked")}


def test_cvlface_convert_accepts_both_layouts() -> None:
    tensor = torch.zeros(1)
    ours = convert_state_dict({"net.conv1.weight": tensor, "model.net.bn1.bias": tensor})
    assert list(ours) == ["net.conv1.weight", "net.bn1.bias"]


def test_load_face_embedder_model_prefix_and_missing_num_batches_tracked(tmp_path: Path, kit_dir: Path) -> None:
    """The original CVLFace layout (``model.net.*``) without BatchNorm counters loads as cvl_arcface."""
    state_dict = standin_state_dict(CHECKPOINTS["cvl_arcface"], kit_dir)
    path = tmp_path / "cvlface_arcface.safetensors"
    write_state_dict({f"model.{key}": value for key, value in _without_num_batches_tracked(state_dict).items()}, path)
    del state_dict
    embedder = load_face_embedder("cvl_arcface", path=path)
    assert isinstance(embedder, FaceEmbedder) and embedder.name == "cvl_arcface" and embedder.normalize
    assert not embedder.model.training
    file_tensors = load_file(str(path))
    torch.testing.assert_close(embedder.model.net.fc.weight, file_tensors["model.net.fc.weight"], rtol=0, atol=0)
    assert int(embedder.model.net.bn1.num_batches_tracked) == 0


def test_load_face_embedder_without_num_batches_tracked(tmp_path: Path, kit_dir: Path) -> None:
    state_dict = _without_num_batches_tracked(standin_state_dict(CHECKPOINTS["facenet"], kit_dir))
    path = tmp_path / "facenet.safetensors"
    write_state_dict(state_dict, path)
    embedder = load_face_embedder("facenet", path=path)
    assert embedder.input_size == 160
    torch.testing.assert_close(embedder.model.last_bn.running_var, state_dict["last_bn.running_var"], rtol=0, atol=0)
    assert int(embedder.model.last_bn.num_batches_tracked) == 0


def test_only_cvlface_files_have_their_prefix_stripped() -> None:
    tensors = {"model.net.conv1.weight": torch.zeros(1)}
    for name in ("cvl_arcface", "cvl_adaface", "cvl_vit", "cvlface_aligner"):
        assert list(registry_convert(name, tensors)) == ["net.conv1.weight"]
    for name in ("arcface", "adaface", "facenet"):
        assert list(registry_convert(name, tensors)) == ["model.net.conv1.weight"]


def test_aligner_loads_prefixed_file(tmp_path: Path, kit_dir: Path) -> None:
    state_dict = _without_num_batches_tracked(standin_state_dict(CHECKPOINTS["cvlface_aligner"], kit_dir))
    path = tmp_path / "dfa.safetensors"
    write_state_dict({f"model.{key}": value for key, value in state_dict.items()}, path)
    aligner = load_model("cvlface_aligner", path=path)
    assert isinstance(aligner, DifferentiableFaceAligner) and not aligner.training
    assert "priors" not in aligner.state_dict()


def test_similarity_transform_recovers_a_known_similarity() -> None:
    source = torch.tensor(ARCFACE_TEMPLATE_112, dtype=torch.float64)[None] * 0.5 + 20
    angle = torch.tensor(0.3, dtype=torch.float64)
    rotation = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    expected = torch.cat([1.7 * rotation, torch.tensor([[5.0], [-3.0]], dtype=torch.float64)], dim=1)
    target = source[0] @ expected[:, :2].T + expected[:, 2]
    torch.testing.assert_close(similarity_transform(source, target)[0], expected)
    # A mirrored target still gets a proper rotation (reflection guard), never a flip.
    mirrored = target * torch.tensor([-1.0, 1.0], dtype=torch.float64)
    assert torch.linalg.det(similarity_transform(source, mirrored)[0, :, :2]) > 0


def test_aligner_postprocess_reproduces_the_reference_from_its_aggregate(kit_dir: Path) -> None:
    """README §6.2: from the stored network outputs, every aligner output matches at 1e-5 relative."""
    folder = kit_dir / "recognition"
    meta = json.loads((folder / "dfa_aligner_forward.json").read_text())
    tensors = {key: value.clone() for key, value in load_file(str(folder / "dfa_aligner_forward.safetensors")).items()}
    output_size = tensors["expected.aligned_x"].shape[-1]
    assert f"output_size={output_size}" in meta["inputs"]["call"]
    outputs = DifferentiableFaceAligner().postprocess(
        tensors["expected.debug.preprocessed"], tensors["expected.debug.aggregated"], output_size
    )
    # aligned_x samples a noise image under a ~20x zoom: grid_sample kernels of other CPUs round the
    # coordinates differently (2e-5 here even in float64), so it keeps the json's own tolerance.
    relative = {"aligned_x": meta["recommended_tolerance"]["per_tensor"]["aligned_x"]}
    for field in outputs._fields:
        expected = tensors[f"expected.{field}"]
        bound = relative.get(field, 1e-5) * max(1.0, float(expected.abs().max()))
        torch.testing.assert_close(getattr(outputs, field), expected, rtol=0, atol=bound, msg=field)


def test_aligner_pads_non_square_inputs_and_is_differentiable() -> None:
    torch.manual_seed(0)
    aligner = DifferentiableFaceAligner().eval()
    images = (torch.rand(1, 3, 120, 80) * 2 - 1).requires_grad_(True)
    preprocessed = aligner.preprocess(images)
    assert preprocessed.shape == (1, 3, 160, 160)
    assert torch.all(preprocessed[..., :, 0] == -1) and torch.all(preprocessed[..., :, -1] == -1)
    outputs = aligner(images, output_size=96)
    shapes = [tuple(value.shape) for value in outputs]
    assert shapes == [(1, 3, 96, 96), (1, 5, 2), (1, 5, 2), (1, 1), (1, 2, 3), (1, 4), (1, 2, 3)]
    assert outputs.cv2_tfms.dtype == torch.float64 and outputs.thetas.dtype == torch.float32
    outputs.cv2_tfms.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
