"""IP_LAP's encoders: a 2D conv encoder over a 0.2 s mel window and 1D conv encoders over landmark sets."""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.nn.layers import ConvNorm

MEL_STAGES = ((32, 1, 2), (64, (3, 1), 2), (128, 3, 2), (256, (3, 2), 1))
"""Wav2Lip / IP_LAP audio encoder stages: (channels, stride of the first conv, residual convs after it),
over an (80 mel, 16 frame) window."""


def _c(channels: int, width: float) -> int:
    return max(int(round(channels * width)), 4)


class MelEncoder(nn.Module):
    """mel: (B, 16, 80) log-mel window (IP_LAP settings, time first) -> (B, out_dim).

    Four conv stages shrink (80 mel, 16 frame) to (3, 3); a 3x3 valid conv and a 1x1 conv (tanh
    when ``tanh``) give the vector. ``width`` scales the paper's channel counts (32 .. 256).
    """

    def __init__(self, out_dim: int, *, width: float = 1.0, tanh: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for channels, stride, residual in MEL_STAGES:
            c = _c(channels, width)
            layers.append(ConvNorm(cin, c, 3, stride, 1))
            layers += [ConvNorm(c, c, 3, 1, 1, residual=True) for _ in range(residual)]
            cin = c
        layers += [ConvNorm(cin, out_dim, 3, 1, 0), ConvNorm(out_dim, out_dim, 1, 1, 0, act="tanh" if tanh else "relu")]
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel.transpose(1, 2).unsqueeze(1)).flatten(1)


class WindowEncoder(nn.Module):
    """A short window of per-frame speech features (B, W, D) (phone one-hots or Whisper features, see
    :mod:`talkinghead.audio.speech`) -> (B, out_dim): layer norm over each frame's features, then a two-layer MLP
    over the flattened window (tanh at the end when ``tanh``, like :class:`MelEncoder`)."""

    def __init__(self, window: int, dim: int, out_dim: int, *, tanh: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(nn.Linear(window * dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim),
                                 nn.Tanh() if tanh else nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x).flatten(1))


def speech_encoder(kind: str, out_dim: int, *, width: float = 1.0) -> nn.Module:
    """The per-frame encoder of a speech input kind (:data:`talkinghead.audio.speech.SPEECH_INPUTS`):
    :class:`MelEncoder` for ``mel``, :class:`WindowEncoder` for the others."""
    from talkinghead.audio.speech import input_shape

    window, dim = input_shape(kind)
    return MelEncoder(out_dim, width=width) if kind == "mel" else WindowEncoder(window, dim, out_dim)


class PerFrame(nn.Module):
    """A per-item encoder run on every frame of (B, T, ...) inputs -> (B, T, out)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class PointEncoder(nn.Module):
    """points: (B, P, 2) landmarks -> (B, out_dim): 1D convs over the point sequence (x, y as channels),
    halving its length stage by stage (one conv + two residual convs each) down to 3, then a valid conv.

    Channels start at ``4 * width`` and double per stage, capped at ``out_dim`` (IP_LAP: 4 .. 512).
    """

    def __init__(self, n_points: int, out_dim: int, *, width: float = 1.0) -> None:
        super().__init__()
        c = _c(4, width)
        layers: list[nn.Module] = [ConvNorm(2, c, 3, 1, 1, dims=1)]
        length = n_points
        while length > 3:
            cout = min(2 * c, out_dim)
            layers += [ConvNorm(c, cout, 3, 2, 1, dims=1)]
            layers += [ConvNorm(cout, cout, 3, 1, 1, dims=1, residual=True) for _ in range(2)]
            c, length = cout, (length + 1) // 2
        layers += [ConvNorm(c, out_dim, length, 1, 0, dims=1), ConvNorm(out_dim, out_dim, 1, 1, 0, dims=1, act="tanh")]
        self.net = nn.Sequential(*layers)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.net(points.transpose(1, 2)).flatten(1)
