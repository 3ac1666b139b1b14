"""CVLFace's differentiable face aligner (DFA) of the ``cvlface`` align mode: a RetinaFace-MobileNet0.25 whose
per-prior predictions an MLP-Mixer pools into one face, and the similarity fit to the ArcFace template.

Its checkpoint carries the CVLFace ``net.`` / ``model.`` prefixes like the embedding models
(models.cvlface.convert_state_dict). See conformance/recognition/README.md §6.3.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.cvlface import ARCFACE_TEMPLATE_112, Mlp
from models.priors import decode_boxes, decode_landmarks
from models.priors import prior_boxes as anchor_boxes

ALIGNER_NETWORK_SIZE = 160
PRIOR_STEPS = (8, 16, 32)
PRIOR_MIN_SIZES = ((64, 80), (96, 112), (128, 144))


def conv_bn(in_channels: int, out_channels: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    """3×3 conv (padding 1, no bias) → BN → LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(negative_slope=leaky),
    )


def conv_bn_no_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (padding 1, no bias) → BN."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels))


def conv_bn1x1(in_channels: int, out_channels: int, leaky: float = 0.0) -> nn.Sequential:
    """1×1 conv (no bias) → BN → LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(negative_slope=leaky),
    )


def conv_dw(in_channels: int, out_channels: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """Depthwise-separable unit: depthwise 3×3 → BN → LeakyReLU → pointwise 1×1 → BN → LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.LeakyReLU(negative_slope=leaky),
        nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(negative_slope=leaky),
    )


class MobileNetBody(nn.Module):
    """MobileNet-0.25 trunk returning the three stage outputs (strides 8, 16, 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky=0.1), conv_dw(8, 16, 1), conv_dw(16, 32, 2),
            conv_dw(32, 32, 1), conv_dw(32, 64, 2), conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stride8 = self.stage1(images)
        stride16 = self.stage2(stride8)
        return stride8, stride16, self.stage3(stride16)


class FPN(nn.Module):
    """Top-down feature pyramid: 1×1 laterals, nearest upsampling, 3×3 merges; 64 channels per level."""

    def __init__(self, in_channels: tuple[int, int, int] = (64, 128, 256), out_channels: int = 64) -> None:
        super().__init__()
        self.output1 = conv_bn1x1(in_channels[0], out_channels, leaky=0.1)
        self.output2 = conv_bn1x1(in_channels[1], out_channels, leaky=0.1)
        self.output3 = conv_bn1x1(in_channels[2], out_channels, leaky=0.1)
        self.merge1 = conv_bn(out_channels, out_channels, leaky=0.1)
        self.merge2 = conv_bn(out_channels, out_channels, leaky=0.1)

    def forward(self, levels: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fine, middle, coarse = self.output1(levels[0]), self.output2(levels[1]), self.output3(levels[2])
        middle = self.merge2(middle + F.interpolate(coarse, size=middle.shape[-2:], mode="nearest"))
        fine = self.merge1(fine + F.interpolate(middle, size=fine.shape[-2:], mode="nearest"))
        return fine, middle, coarse


class SSH(nn.Module):
    """Single-stage context module: 3×3, "5×5" and "7×7" (stacked 3×3) branches, concatenated, ReLU."""

    def __init__(self, in_channels: int = 64, out_channels: int = 64) -> None:
        super().__init__()
        self.conv3X3 = conv_bn_no_relu(in_channels, out_channels // 2)
        self.conv5X5_1 = conv_bn(in_channels, out_channels // 4, leaky=0.1)
        self.conv5X5_2 = conv_bn_no_relu(out_channels // 4, out_channels // 4)
        self.conv7X7_2 = conv_bn(out_channels // 4, out_channels // 4, leaky=0.1)
        self.conv7x7_3 = conv_bn_no_relu(out_channels // 4, out_channels // 4)  # lower-case x: the released key

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        context = self.conv5X5_1(features)
        branches = (self.conv3X3(features), self.conv5X5_2(context), self.conv7x7_3(self.conv7X7_2(context)))
        return F.relu(torch.cat(branches, dim=1))


class _AnchorHead(nn.Module):
    """1×1 conv predicting ``values`` numbers per anchor; output [N, H·W·anchors, values] (anchor fastest)."""

    def __init__(self, in_channels: int, values: int, anchors: int = 2) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(in_channels, anchors * values, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(features).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.values)


class MixerBlock(nn.Module):
    """MLP-Mixer block over [N, priors, 16]: a token-mixing MLP across priors, then a channel MLP."""

    def __init__(self, dim: int, num_tokens: int, tokens_hidden: int, channels_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_tokens = Mlp(num_tokens, tokens_hidden)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = Mlp(dim, channels_hidden)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.mlp_tokens(self.norm1(tokens).transpose(1, 2)).transpose(1, 2)
        return tokens + self.mlp_channels(self.norm2(tokens))


class LandmarkPrediction(NamedTuple):
    """Raw outputs of the DFA network (normalised coordinates; per prior, levels 20², 10², 5²)."""

    bbox_regressions: torch.Tensor  # [N, priors, 4]
    class_logits: torch.Tensor  # [N, priors, 2]
    landmark_regressions: torch.Tensor  # [N, priors, 10]
    aggregated: torch.Tensor  # [N, 16]: box (4), class logits (2), landmarks (10)


def prior_boxes(image_size: int = ALIGNER_NETWORK_SIZE) -> torch.Tensor:
    """RetinaFace anchors [1050, 4] float32 (cx, cy, w, h) of the 160 input (800 + 200 + 50 priors)."""
    return anchor_boxes(image_size, image_size, PRIOR_STEPS, PRIOR_MIN_SIZES)


class RetinaFaceLandmarkNet(nn.Module):
    """RetinaFace-MobileNet0.25 whose per-prior predictions are pooled into one face by an MLP-Mixer.

    forward: [N, 3, 160, 160] **BGR** in [-1, 1] and priors [1050, 4] → :class:`LandmarkPrediction`.
    """

    def __init__(self, num_priors: int = 1050) -> None:
        super().__init__()
        self.body = MobileNetBody()
        self.fpn = FPN()
        self.ssh1, self.ssh2, self.ssh3 = SSH(), SSH(), SSH()
        self.ClassHead = nn.ModuleList(_AnchorHead(64, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_AnchorHead(64, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_AnchorHead(64, 10) for _ in range(3))
        self.aggregator = nn.Sequential(
            *[MixerBlock(16, num_priors, tokens_hidden=8, channels_hidden=64) for _ in range(3)],
            nn.Linear(16, 1),
        )

    def forward(self, bgr_images: torch.Tensor, priors: torch.Tensor) -> LandmarkPrediction:
        pyramid = self.fpn(self.body(bgr_images))
        features = (self.ssh1(pyramid[0]), self.ssh2(pyramid[1]), self.ssh3(pyramid[2]))
        bbox_regressions = torch.cat([head(level) for head, level in zip(self.BboxHead, features)], dim=1)
        class_logits = torch.cat([head(level) for head, level in zip(self.ClassHead, features)], dim=1)
        landmark_regressions = torch.cat([head(level) for head, level in zip(self.LandmarkHead, features)], dim=1)
        # The aggregator sees the raw logits (not the softmax the "test" phase returns).
        combined = torch.cat(
            [decode_boxes(bbox_regressions, priors), class_logits, decode_landmarks(landmark_regressions, priors)],
            dim=-1,
        )
        weights = torch.softmax(self.aggregator(combined), dim=1)
        aggregated = (combined * weights).sum(dim=1)
        return LandmarkPrediction(bbox_regressions, class_logits, landmark_regressions, aggregated)


class AlignerOutput(NamedTuple):
    """The seven outputs of :meth:`DifferentiableFaceAligner.forward`, in the reference's order."""

    aligned_x: torch.Tensor  # [N, 3, S, S] RGB in [-1, 1]; geometrically off for S != 160 (reference quirk)
    orig_pred_ldmks: torch.Tensor  # [N, 5, 2] normalised landmarks × S/160 (reference quirk)
    aligned_ldmks: torch.Tensor  # [N, 5, 2] landmarks mapped through inv(thetas), normalised
    score: torch.Tensor  # [N, 1] face probability
    thetas: torch.Tensor  # [N, 2, 3] float32 affine_grid matrices
    normalized_bbox: torch.Tensor  # [N, 4] box / 160 (box already normalised: reference quirk)
    cv2_tfms: torch.Tensor  # [N, 2, 3] float64 similarity, input S×S pixels → output S×S pixels


def similarity_transform(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Least-squares 2-D similarity (rotation, uniform scale, translation) mapping ``source`` onto ``target``.

    Umeyama (1991) with scaling, batched and differentiable: source [N, K, 2], target [N, K, 2] or [K, 2]
    (same dtype) → [N, 2, 3], OpenCV warpAffine convention (rows 0–1 of the 3×3 matrix).
    """
    target = target.expand_as(source)
    source_mean, target_mean = source.mean(dim=1, keepdim=True), target.mean(dim=1, keepdim=True)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.transpose(1, 2) @ source_centred / source.shape[1]
    left, singular, right_t = torch.linalg.svd(covariance)
    # Reflection guard: force a proper rotation when the covariance has a negative determinant.
    signs = torch.ones_like(singular)
    signs[:, -1] = torch.where(torch.linalg.det(covariance) < 0, -1.0, 1.0).to(singular.dtype)
    rotation = left @ torch.diag_embed(signs) @ right_t
    variance = source_centred.pow(2).mean(dim=1).sum(dim=-1)
    scale = (singular * signs).sum(dim=-1) / variance
    translation = target_mean.squeeze(1) - scale[:, None] * (rotation @ source_mean.transpose(1, 2)).squeeze(-1)
    return torch.cat([scale[:, None, None] * rotation, translation[..., None]], dim=-1)


def _normaliser(size: int, like: torch.Tensor) -> torch.Tensor:
    """3×3 map from pixel coordinates of a size×size image to [-1, 1]."""
    return like.new_tensor([[2.0 / size, 0.0, -1.0], [0.0, 2.0 / size, -1.0], [0.0, 0.0, 1.0]])


def _homogeneous(affine: torch.Tensor) -> torch.Tensor:
    """[N, 2, 3] → [N, 3, 3] with the row (0, 0, 1) appended."""
    bottom = affine.new_tensor([0.0, 0.0, 1.0]).expand(affine.shape[0], 1, 3)
    return torch.cat([affine, bottom], dim=1)


def invert_affine(theta: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of [N, 2, 3] affine matrices."""
    a, b, c = theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2]
    d, e, f = theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2]
    determinant = a * e - b * d
    rows = [torch.stack([e, -b, b * f - c * e], dim=-1), torch.stack([-d, a, c * d - a * f], dim=-1)]
    return torch.stack(rows, dim=1) / determinant[:, None, None]


class DifferentiableFaceAligner(nn.Module):
    """CVLFace DFA: predicts five landmarks on a face crop and the similarity that aligns it (ArcFace template).

    forward(x, output_size): x [N, 3, H, W] RGB in [-1, 1] → :class:`AlignerOutput`. The ``cvlface``
    align mode uses only ``cv2_tfms``. Priors and template are constants, not part of the state dict.
    """

    network_size = ALIGNER_NETWORK_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.net = RetinaFaceLandmarkNet()
        for name, value in self.constant_buffers().items():
            self.register_buffer(name, value, persistent=False)

    def constant_buffers(self) -> dict[str, torch.Tensor]:
        """The buffers computed rather than stored in the file (also after loading on the meta device)."""
        return {"priors": prior_boxes(self.network_size)}

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Pad to a centred square (value -1, i.e. black) and resize to 160 (bilinear, align_corners=True).

        images: [N, 3, H, W] RGB in [-1, 1] → [N, 3, 160, 160] RGB in [-1, 1].
        """
        height, width = images.shape[-2:]
        if height != width:
            side = max(height, width)
            top, left = (side - height) // 2, (side - width) // 2
            images = F.pad(images, (left, side - width - left, top, side - height - top), value=-1.0)
        size = (self.network_size, self.network_size)
        return F.interpolate(images, size=size, mode="bilinear", align_corners=True)

    def predict(self, preprocessed: torch.Tensor) -> LandmarkPrediction:
        """Run the landmark network (it was trained on BGR input, so the channels are flipped here).

        preprocessed: [N, 3, 160, 160] RGB in [-1, 1] → :class:`LandmarkPrediction`.
        """
        return self.net(preprocessed.flip(1), self.priors.to(preprocessed.dtype))

    def postprocess(self, preprocessed: torch.Tensor, aggregated: torch.Tensor, output_size: int) -> AlignerOutput:
        """Turn the aggregated prediction into the seven aligner outputs (README §6.2 steps 3–10).

        preprocessed: [N, 3, 160, 160] RGB in [-1, 1]; aggregated: [N, 16] → :class:`AlignerOutput`.
        """
        aggregated = aggregated.float()
        batch = aggregated.shape[0]
        network_size = self.network_size
        score = torch.softmax(aggregated[:, 4:6], dim=-1)[:, 1:]
        # Reference quirk: normalised landmarks are scaled by output_size / 160.
        landmarks = (aggregated[:, 6:16] * (output_size / network_size)).view(batch, 5, 2)
        normalized_bbox = aggregated[:, :4] / network_size

        # float64 is unavailable on MPS: fit the similarity on the CPU there.
        fit_device = landmarks.device if landmarks.device.type != "mps" else torch.device("cpu")
        source = landmarks.to(fit_device, torch.float64) * network_size
        template = torch.tensor(ARCFACE_TEMPLATE_112, dtype=torch.float64, device=fit_device) * (output_size / 112)
        cv2_tfms = similarity_transform(source, template)

        # affine_grid matrix as if cv2_tfms mapped a 160×160 image to an output_size one (reference quirk).
        inverse = torch.linalg.inv(_homogeneous(cv2_tfms))
        theta = _normaliser(network_size, inverse) @ inverse @ torch.linalg.inv(_normaliser(output_size, inverse))
        thetas = theta[:, :2].to(landmarks.device, torch.float32)

        grid = F.affine_grid(thetas, [batch, 3, output_size, output_size], align_corners=True)
        # Shift by one so zero padding shows up as -1 (black) in the output.
        aligned_x = F.grid_sample(
            preprocessed.float() + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=True
        ) - 1
        points = torch.cat([landmarks * 2 - 1, torch.ones_like(landmarks[..., :1])], dim=-1)
        aligned_ldmks = (points @ invert_affine(thetas).transpose(1, 2)) / 2 + 0.5
        return AlignerOutput(aligned_x, landmarks, aligned_ldmks, score, thetas, normalized_bbox, cv2_tfms)

    def forward(self, x: torch.Tensor, output_size: int = 256) -> AlignerOutput:
        """Predict landmarks and the aligning similarity of face crops.

        x: [N, 3, H, W] RGB in [-1, 1] → :class:`AlignerOutput` (cv2_tfms maps an output_size×output_size
        version of the input onto the output_size×output_size ArcFace-aligned face).
        """
        preprocessed = self.preprocess(x)
        prediction = self.predict(preprocessed)
        return self.postprocess(preprocessed, prediction.aggregated, output_size)
