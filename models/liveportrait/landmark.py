"""LivePortrait 203-point landmark network L (a ConvNeXt-V1 tiny converted from ONNX).

Input ``B×3×224×224`` RGB in [0, 1] (no mean/std); outputs ``(coeff B×214, lmk B×262, pts B×406)``, where ``pts``
holds 203 (x, y) pairs in units of the 224 crop. Every tensor, graph constants included, lives in the
ParameterDict ``_vars`` under the converter's names, so the module's state dict is the released file.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

DEPTHS = (3, 3, 9, 3)
DIMS = (96, 192, 384, 768)
# ONNX node numbers of the converted graph (names of the released file's constants).
MATMUL_BASES = (861, 871, 881, 903)  # block b of stage s uses MatMul base+2b (C→4C) and base+2b+1 (4C→C)
GELU_DIVS = ((227, 257, 287), (337, 367, 397), (447, 477, 507, 537, 567, 597, 627, 657, 687), (749, 779, 809))
DOWNSAMPLE_NORMS = ((194, 197, 858, 860), (303, 306, 868, 870), (413, 416, 878, 880), (715, 718, 900, 902))
SIDE_NORM = (704, 707)  # LayerNorm of the pooled stage-2 features (norm_s3)
FINAL_NORM = (826, 829)
HEADS = (("coeff", 214), ("lmk", 262), ("pts", 406))


def _block_norm(div: int) -> tuple[int, int]:
    """(Pow, Add) constants of a block's LayerNorm, which the graph numbers 12 and 9 before its GELU's Div."""
    return div - 12, div - 9


def _gelu(div: int) -> tuple[int, int, int]:
    """(Div, Add, Mul) constants of a block's GELU."""
    return div, div + 3, div + 6


def _layout() -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of ``_vars`` in the released file's order: convolutions in forward order, then sorted."""
    convolutions = [("downsample_layers_0_0_weight", (DIMS[0], 3, 4, 4)), ("downsample_layers_0_0_bias", (DIMS[0],))]
    others: list[tuple[str, tuple[int, ...]]] = []
    for stage, (depth, dim) in enumerate(zip(DEPTHS, DIMS)):
        if stage > 0:
            convolutions += [(f"downsample_layers_{stage}_1_weight", (dim, DIMS[stage - 1], 2, 2)),
                             (f"downsample_layers_{stage}_1_bias", (dim,))]
        pow_, add, mul_weight, add_bias = DOWNSAMPLE_NORMS[stage]
        others += [(f"onnx__Pow_{pow_}", ()), (f"onnx__Add_{add}", ()),
                   (f"onnx__Mul_{mul_weight}", (DIMS[max(stage - 1, 0)], 1, 1)),
                   (f"onnx__Add_{add_bias}", (DIMS[max(stage - 1, 0)], 1, 1))]
        for block in range(depth):
            prefix = f"stages_{stage}_{block}"
            convolutions += [(f"{prefix}_dwconv_weight", (dim, 1, 7, 7)), (f"{prefix}_dwconv_bias", (dim,))]
            base = MATMUL_BASES[stage] + 2 * block
            div = GELU_DIVS[stage][block]
            others += [(f"{prefix}_gamma", (dim,)), (f"{prefix}_norm_bias", (dim,)), (f"{prefix}_norm_weight", (dim,)),
                       (f"{prefix}_pwconv1_bias", (4 * dim,)), (f"{prefix}_pwconv2_bias", (dim,)),
                       (f"onnx__MatMul_{base}", (dim, 4 * dim)), (f"onnx__MatMul_{base + 1}", (4 * dim, dim))]
            pow_, add = _block_norm(div)
            div_, add_one, mul_half = _gelu(div)
            others += [(f"onnx__Pow_{pow_}", ()), (f"onnx__Add_{add}", ()), (f"onnx__Div_{div_}", ()),
                       (f"onnx__Add_{add_one}", ()), (f"onnx__Mul_{mul_half}", ())]
    for pow_, add in (SIDE_NORM, FINAL_NORM):
        others += [(f"onnx__Pow_{pow_}", ()), (f"onnx__Add_{add}", ())]
    others += [("norm_s3_weight", (DIMS[2],)), ("norm_s3_bias", (DIMS[2],)), ("norm_weight", (DIMS[3],)),
               ("norm_bias", (DIMS[3],)), ("onnx__Reshape_911", (2,))]
    for name, size in HEADS:
        in_features = DIMS[3] + (DIMS[2] if name == "pts" else 0)
        others += [(f"fc_{name}_weight", (size, in_features)), (f"fc_{name}_bias", (size,))]
    return convolutions + sorted(others)


class LandmarkNetwork(nn.Module):
    """L: ``B×3×224×224`` RGB [0, 1] → (coeff ``B×214``, lmk ``B×262``, pts ``B×406`` in crop units / 224)."""

    def __init__(self) -> None:
        super().__init__()
        # A list of pairs keeps the file's order (a plain dict would be sorted by ParameterDict).
        self._vars = nn.ParameterDict(
            [(name, nn.Parameter(torch.zeros(shape), requires_grad=False)) for name, shape in _layout()]
        )

    def _get(self, name: str) -> torch.Tensor:
        return self._vars[name]

    def _layer_norm(self, x: torch.Tensor, dim: int, constants: tuple[int, int], weight: torch.Tensor,
                    bias: torch.Tensor) -> torch.Tensor:
        # The converted graph spells LayerNorm out with its own exponent and epsilon constants.
        pow_, add = constants
        centred = x - x.mean(dim, keepdim=True)
        variance = centred.pow(self._get(f"onnx__Pow_{pow_}")).mean(dim, keepdim=True)
        return centred / torch.sqrt(variance + self._get(f"onnx__Add_{add}")) * weight + bias

    def _block(self, x: torch.Tensor, stage: int, block: int) -> torch.Tensor:
        prefix = f"stages_{stage}_{block}"
        dim = DIMS[stage]
        div = GELU_DIVS[stage][block]
        base = MATMUL_BASES[stage] + 2 * block
        residual = x
        x = F.conv2d(x, self._get(f"{prefix}_dwconv_weight"), self._get(f"{prefix}_dwconv_bias"), padding=3,
                     groups=dim).permute(0, 2, 3, 1)
        x = self._layer_norm(x, -1, _block_norm(div), self._get(f"{prefix}_norm_weight"),
                             self._get(f"{prefix}_norm_bias"))
        x = x @ self._get(f"onnx__MatMul_{base}") + self._get(f"{prefix}_pwconv1_bias")
        div_, add_one, mul_half = _gelu(div)
        x = x * (torch.erf(x / self._get(f"onnx__Div_{div_}")) + self._get(f"onnx__Add_{add_one}"))
        x = x * self._get(f"onnx__Mul_{mul_half}")
        x = x @ self._get(f"onnx__MatMul_{base + 1}") + self._get(f"{prefix}_pwconv2_bias")
        x = x * self._get(f"{prefix}_gamma")
        return residual + x.permute(0, 3, 1, 2)

    def _downsample(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        pow_, add, mul_weight, add_bias = DOWNSAMPLE_NORMS[stage]
        norm = (pow_, add), self._get(f"onnx__Mul_{mul_weight}"), self._get(f"onnx__Add_{add_bias}")
        if stage == 0:
            x = F.conv2d(x, self._get("downsample_layers_0_0_weight"), self._get("downsample_layers_0_0_bias"),
                         stride=4)
            return self._layer_norm(x, 1, *norm)
        x = self._layer_norm(x, 1, *norm)
        return F.conv2d(x, self._get(f"downsample_layers_{stage}_1_weight"),
                        self._get(f"downsample_layers_{stage}_1_bias"), stride=2)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = image
        side = None
        for stage, depth in enumerate(DEPTHS):
            x = self._downsample(x, stage)
            for block in range(depth):
                x = self._block(x, stage, block)
            if stage == 2:
                side = self._layer_norm(x.mean((2, 3)), -1, SIDE_NORM, self._get("norm_s3_weight"),
                                        self._get("norm_s3_bias"))
        features = self._layer_norm(x.mean((2, 3)), -1, FINAL_NORM, self._get("norm_weight"), self._get("norm_bias"))
        pts_features = torch.cat([side, features], dim=1)
        outputs = []
        for name, _ in HEADS:
            inputs = pts_features if name == "pts" else features
            outputs.append(inputs @ self._get(f"fc_{name}_weight").t() + self._get(f"fc_{name}_bias"))
        return outputs[0], outputs[1], outputs[2]


def convert_landmark_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the converter's ``n_Conv_<i>.weight|bias`` alias names to their ``_vars.`` twins (file → module keys).

    The original module shares storage between the two names, so a file may carry either one.
    """
    aliases = _conv_aliases()
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        target = aliases.get(key, key)
        converted.setdefault(target, value)
    return converted


def _conv_aliases() -> dict[str, str]:
    """``n_Conv_<node>.{weight,bias}`` → ``_vars.<name>`` for the 22 convolutions, in forward order."""
    nodes = [2, 14, 42, 70, 109, 110, 138, 166, 205] + [206 + 28 * i for i in range(9)] + [481, 482, 510, 538]
    names = [name for name, shape in _layout() if name.endswith("_weight") and len(shape) == 4]
    aliases = {}
    for node, name in zip(nodes, names):
        stem = name[: -len("_weight")]
        aliases[f"n_Conv_{node}.weight"] = f"_vars.{stem}_weight"
        aliases[f"n_Conv_{node}.bias"] = f"_vars.{stem}_bias"
    return aliases
