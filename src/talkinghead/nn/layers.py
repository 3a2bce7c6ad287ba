"""Layers shared by the learned families: conv blocks, sinusoidal positions, AdaIN, SPADE, flow warping, a masked
L1."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConvNorm(nn.Module):
    """Conv + batch norm + activation, with an optional identity shortcut (Wav2Lip / IP_LAP encoders).

    ``dims`` 1 or 2 picks Conv1d / Conv2d; ``act`` is "relu" or "tanh".
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int | tuple[int, int], padding: int, *,
                 dims: int = 2, residual: bool = False, act: str = "relu") -> None:
        super().__init__()
        conv, norm = (nn.Conv1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d)
        self.block = nn.Sequential(conv(cin, cout, kernel, stride, padding), norm(cout))
        self.residual = residual
        self.act = nn.Tanh() if act == "tanh" else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return self.act(y + x if self.residual else y)


def sinusoid(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sinusoidal positional encodings (Vaswani et al.)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


class AdaIN(nn.Module):
    """Instance norm whose scale and shift come from a vector: x (B, C, H, W), z (B, Z)."""

    def __init__(self, channels: int, z_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU())
        self.gamma, self.beta = nn.Linear(hidden, channels), nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.shared(z)
        return self.norm(x) * (1 + self.gamma(h)[..., None, None]) + self.beta(h)[..., None, None]


class SPADE(nn.Module):
    """Spatially-adaptive instance norm (Park et al.): scale and shift maps predicted from a map ``m``
    (B, M, h, w), resized to x (B * N, C, H, W); with N > 1 the maps of ``m[b]`` modulate the N
    consecutive items ``x[b * N : (b + 1) * N]`` (computed once, not N times)."""

    def __init__(self, channels: int, m_channels: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(m_channels, hidden, 3, 1, 1), nn.ReLU())
        self.gamma, self.beta = nn.Conv2d(hidden, channels, 3, 1, 1), nn.Conv2d(hidden, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        if m.shape[-2:] != x.shape[-2:]:
            m = F.interpolate(m, size=x.shape[-2:], mode="nearest")
        h = self.shared(m)
        gamma, beta = self.gamma(h), self.beta(h)
        if len(m) != len(x):
            n = len(x) // len(m)
            gamma, beta = gamma.repeat_interleave(n, 0), beta.repeat_interleave(n, 0)
        return self.norm(x) * (1 + gamma) + beta


class ModulatedBlock(nn.Module):
    """Two (modulation -> LeakyReLU -> 3x3 conv) steps; the modulation is :class:`SPADE` or :class:`AdaIN`."""

    def __init__(self, channels: int, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.mod1, self.mod2 = first, second
        self.conv1, self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1), nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.leaky_relu(self.mod1(x, m), 0.2))
        return self.conv2(F.leaky_relu(self.mod2(x, m), 0.2))


def spade_block(channels: int, m_channels: int, hidden: int) -> ModulatedBlock:
    return ModulatedBlock(channels, SPADE(channels, m_channels, hidden), SPADE(channels, m_channels, hidden))


def adain_block(channels: int, z_dim: int) -> ModulatedBlock:
    return ModulatedBlock(channels, AdaIN(channels, z_dim), AdaIN(channels, z_dim))


def warp(source: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``source`` (B, C, H, W) by a pixel flow (B, 2, h, w): output(p) = source(p + flow(p)).

    The flow is in pixels of its own resolution and is resized (values scaled) to the source's.
    """
    b, _, h, w = source.shape
    if flow.shape[-2:] != (h, w):
        sy, sx = h / flow.shape[-2], w / flow.shape[-1]
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        flow = flow * flow.new_tensor([sx, sy])[None, :, None, None]
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    return F.grid_sample(source, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def compose_flows(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The flow of warping by ``first`` then by ``second`` (both (B, 2, r, r), see :func:`warp`):
    warp(warp(x, first), second)(p) = x(p + second(p) + first(p + second(p)))."""
    return second + warp(first, second)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 of (..., C, S, S) images inside (..., 1, S, S) masks, normalised by the masks' area (times C)."""
    return ((pred - target).abs() * mask).sum() / (mask.sum() * pred.shape[-3]).clamp_min(1.0)
