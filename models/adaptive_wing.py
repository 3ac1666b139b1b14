"""The AdaptiveWingLoss FAN (4 stacked hourglasses, 98 WFLW landmarks) and the eye landmarks training uses.

Architecture per ../shared/conformance/network/README.md §6; attribute names follow the released
``WFLW_4HG.safetensors`` keys (``conv1.conv``, ``m{i}.b1_4`` … , ``top_m_{i}``, ``l{i}``), registered in the
file's order. The network takes RGB images in [0, 1]; :func:`detect_landmarks` takes the training tensors in
[-1, 1] and returns the two eye landmarks (WFLW points 96 and 97) and their heatmaps, which the eye loss compares.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_LANDMARKS = 98
LEFT_EYE, RIGHT_EYE = 96, 97
HEATMAP_TO_IMAGE = 4.0  # 64×64 heatmaps for 256×256 images
# The boundary heatmap gates the coordinate channels of the next hourglass where it exceeds this value.
BOUNDARY_THRESHOLD = 0.05
HOURGLASS_DEPTH = 4
HOURGLASS_CHANNELS = 256


def coordinate_channels(batch: int, height: int, width: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column coordinate maps, each [batch, 1, height, width], going from -1 to 1."""
    # Same operation order as the original (index / (n - 1) * 2 - 1) so the values are bit-identical.
    rows = torch.arange(height, dtype=like.dtype, device=like.device) / (height - 1) * 2 - 1
    columns = torch.arange(width, dtype=like.dtype, device=like.device) / (width - 1) * 2 - 1
    row_map = rows.view(1, 1, height, 1).expand(batch, 1, height, width).contiguous()
    column_map = columns.view(1, 1, 1, width).expand(batch, 1, height, width).contiguous()
    return row_map, column_map


class CoordConv(nn.Module):
    """A convolution over the input plus coordinate channels (rows, columns, radius, optionally boundary-gated ones).

    forward(features [B, C, n, n], heatmap [B, 99, n, n] or None) → (conv output, the last two appended channels
    [B, 2, n, n]).
    """

    def __init__(
        self, in_channels: int, out_channels: int, with_boundary: bool, kernel_size: int, stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.with_boundary = with_boundary
        extra = 3 + (2 if with_boundary else 0)
        self.conv = nn.Conv2d(in_channels + extra, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(
        self, features: torch.Tensor, heatmap: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, height, width = features.shape
        row_map, column_map = coordinate_channels(batch, height, width, features)
        radius = torch.sqrt(row_map**2 + column_map**2)
        radius = radius / radius.max()
        channels = [features, row_map, column_map, radius]
        if self.with_boundary and heatmap is not None:
            boundary = torch.clamp(heatmap[:, -1:], 0.0, 1.0) > BOUNDARY_THRESHOLD
            zeros = torch.zeros_like(row_map)
            channels += [torch.where(boundary, row_map, zeros), torch.where(boundary, column_map, zeros)]
        stacked = torch.cat(channels, dim=1)
        return self.conv(stacked), stacked[:, -2:]


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation residual block whose three 3×3 convs (out/2, out/4, out/4 channels) are concatenated.

    [B, in, H, W] → [B, out, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half, quarter = out_channels // 2, out_channels // 4
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv3x3(in_channels, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = _conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = _conv3x3(quarter, quarter)
        self.downsample: nn.Module | None = None
        if in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, out_channels, 1, bias=False)
            )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        first = self.conv1(F.relu(self.bn1(features)))
        second = self.conv2(F.relu(self.bn2(first)))
        third = self.conv3(F.relu(self.bn3(second)))
        shortcut = features if self.downsample is None else self.downsample(features)
        return torch.cat((first, second, third), dim=1) + shortcut


class HourGlass(nn.Module):
    """A coordinate layer followed by a depth-4 recursive hourglass of ConvBlocks (256 channels).

    forward(features [B, 256, 64, 64], previous heatmap or None) → (features [B, 256, 64, 64], boundary
    channels [B, 2, 64, 64]).
    """

    def __init__(self, depth: int, channels: int, first: bool) -> None:
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(channels, channels, with_boundary=not first, kernel_size=1)
        # Registration order b1_L, b2_L (L = depth … 1), b2_plus_1, b3_1 … b3_depth gives the released key order.
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(channels, channels))
            self.add_module(f"b2_{level}", ConvBlock(channels, channels))
        self.add_module("b2_plus_1", ConvBlock(channels, channels))
        for level in range(1, depth + 1):
            self.add_module(f"b3_{level}", ConvBlock(channels, channels))

    def _level(self, level: int, features: torch.Tensor) -> torch.Tensor:
        upper = self.get_submodule(f"b1_{level}")(features)
        lower = self.get_submodule(f"b2_{level}")(F.avg_pool2d(features, 2, stride=2))
        if level > 1:
            lower = self._level(level - 1, lower)
        else:
            lower = self.get_submodule("b2_plus_1")(lower)
        lower = self.get_submodule(f"b3_{level}")(lower)
        return upper + F.interpolate(lower, scale_factor=2, mode="nearest")

    def forward(
        self, features: torch.Tensor, heatmap: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features, boundary_channels = self.coordconv(features, heatmap)
        return self._level(self.depth, features), boundary_channels


class FAN(nn.Module):
    """Stacked-hourglass landmark network of AdaptiveWingLoss (coordinate convolutions, boundary heatmap).

    forward(images [B, 3, 256, 256] RGB in [0, 1]) → (heatmaps: list of num_modules tensors [B, 99, 64, 64],
    boundary channels: list of num_modules tensors [B, 2, 64, 64]). Heatmap channels 0…97 are the WFLW
    landmarks, channel 98 the boundary heatmap.
    """

    def __init__(
        self, num_modules: int = 4, end_relu: bool = False, gray_scale: bool = False,
        num_landmarks: int = NUM_LANDMARKS,
    ) -> None:
        super().__init__()
        self.num_modules, self.end_relu = num_modules, end_relu
        input_channels = 1 if gray_scale else 3
        outputs = num_landmarks + 1
        self.conv1 = CoordConv(input_channels, 64, with_boundary=False, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, HOURGLASS_CHANNELS)
        for index in range(num_modules):
            self.add_module(f"m{index}", HourGlass(HOURGLASS_DEPTH, HOURGLASS_CHANNELS, first=index == 0))
            self.add_module(f"top_m_{index}", ConvBlock(HOURGLASS_CHANNELS, HOURGLASS_CHANNELS))
            self.add_module(f"conv_last{index}", nn.Conv2d(HOURGLASS_CHANNELS, HOURGLASS_CHANNELS, 1))
            self.add_module(f"bn_end{index}", nn.BatchNorm2d(HOURGLASS_CHANNELS))
            self.add_module(f"l{index}", nn.Conv2d(HOURGLASS_CHANNELS, outputs, 1))
            if index < num_modules - 1:
                self.add_module(f"bl{index}", nn.Conv2d(HOURGLASS_CHANNELS, HOURGLASS_CHANNELS, 1))
                self.add_module(f"al{index}", nn.Conv2d(outputs, HOURGLASS_CHANNELS, 1))

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        features, _ = self.conv1(images)
        features = F.relu(self.bn1(features))
        features = F.avg_pool2d(self.conv2(features), 2, stride=2)
        previous = self.conv4(self.conv3(features))
        heatmaps: list[torch.Tensor] = []
        boundaries: list[torch.Tensor] = []
        heatmap: torch.Tensor | None = None
        for index in range(self.num_modules):
            hourglass, boundary = self.get_submodule(f"m{index}")(previous, heatmap)
            features = self.get_submodule(f"top_m_{index}")(hourglass)
            features = F.relu(self.get_submodule(f"bn_end{index}")(self.get_submodule(f"conv_last{index}")(features)))
            heatmap = self.get_submodule(f"l{index}")(features)
            if self.end_relu:
                heatmap = F.relu(heatmap)
            heatmaps.append(heatmap)
            boundaries.append(boundary)
            if index < self.num_modules - 1:
                merged = self.get_submodule(f"bl{index}")(features)
                previous = previous + merged + self.get_submodule(f"al{index}")(heatmap)
        return heatmaps, boundaries


def AdaptiveWingFAN() -> FAN:  # noqa: N802 - the registry's builder name, a class-like factory
    """The released configuration: FAN(4 hourglasses, no end ReLU, RGB, 98 landmarks)."""
    return FAN(num_modules=4, end_relu=False, gray_scale=False, num_landmarks=NUM_LANDMARKS)


def decode_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """Landmark positions from heatmaps: argmax, a quarter-pixel step towards the larger neighbour, +0.5.

    [B, L, 64, 64] (any values) → [B, L, 2] float32 (x, y) in heatmap pixels (multiply by 4 for 256×256
    images). Runs on the CPU without gradient. Border maxima are not refined.
    """
    maps = heatmaps.detach().to("cpu", torch.float32)
    batch, count, height, width = maps.shape
    flat_index = maps.reshape(batch, count, height * width).argmax(dim=2)
    rows, columns = flat_index // width, flat_index % width
    # The original's interior test is hard-coded for 64×64 maps; it is written here for any size.
    interior = (columns > 0) & (columns < width - 1) & (rows > 0) & (rows < height - 1)
    safe_rows = rows.clamp(1, height - 2)
    safe_columns = columns.clamp(1, width - 2)

    def value(row: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
        return maps.reshape(batch, count, height * width).gather(2, (row * width + column)[..., None])[..., 0]

    step_x = torch.sign(value(safe_rows, safe_columns + 1) - value(safe_rows, safe_columns - 1)) * 0.25
    step_y = torch.sign(value(safe_rows + 1, safe_columns) - value(safe_rows - 1, safe_columns)) * 0.25
    x = columns.to(torch.float32) + 0.5 + torch.where(interior, step_x, torch.zeros_like(step_x))
    y = rows.to(torch.float32) + 0.5 + torch.where(interior, step_y, torch.zeros_like(step_y))
    return torch.stack((x, y), dim=2)


def detect_landmarks(
    images: torch.Tensor, fan: FAN
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eye landmarks and eye heatmaps of face images, plus all 98 decoded landmarks.

    images [B, 3, 256, 256] RGB in [-1, 1] → (eyes [B, 4] = (x96, y96, x97, y97) in 256-pixel coordinates
    (CPU, no gradient), left-eye heatmap [B, 64, 64], right-eye heatmap [B, 64, 64] (on the images' device,
    differentiable w.r.t. the images), landmarks [B, 98, 2] (x, y) in 256-pixel coordinates (CPU)).
    """
    heatmaps, _ = fan(images * 0.5 + 0.5)
    landmark_maps = heatmaps[-1][:, :-1]
    landmarks = decode_heatmaps(landmark_maps) * HEATMAP_TO_IMAGE
    eyes = torch.cat((landmarks[:, LEFT_EYE], landmarks[:, RIGHT_EYE]), dim=1)
    return eyes, landmark_maps[:, LEFT_EYE], landmark_maps[:, RIGHT_EYE], landmarks
