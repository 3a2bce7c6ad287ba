"""Transformer pieces of the DETR family that StyleTalk builds on: post-norm layers whose positional
encodings are added to the queries and keys of every attention (never to the values), additive
self-attention pooling, and the dynamic linear layer of StyleTalk's style-controllable decoder.

Sequences are batch-first: (B, L, D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PosEncoderLayer(nn.Module):
    """Post-norm encoder layer: self-attention with ``pos`` added to queries and keys, then a ReLU
    feed-forward; x (B, L, D), pos (L, D) or (B, L, D), key_padding (B, L) bool (True = padding)."""

    def __init__(self, d: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, feedforward), nn.ReLU(), nn.Dropout(dropout), nn.Linear(feedforward, d))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        q = x + pos
        x = self.norm1(x + self.drop1(self.attn(q, q, x, key_padding_mask=key_padding, need_weights=False)[0]))
        return self.norm2(x + self.drop2(self.ff(x)))


class PosEncoder(nn.Module):
    """A stack of :class:`PosEncoderLayer` sharing one positional encoding."""

    def __init__(self, d: int, heads: int, feedforward: int, dropout: float, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(PosEncoderLayer(d, heads, feedforward, dropout) for _ in range(layers))

    def forward(self, x: torch.Tensor, pos: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos, key_padding)
        return x


class AttentionPooling(nn.Module):
    """Self-attention pooling (Safari et al. 2020, StyleTalk's style aggregation): weights
    softmax(w2 . mish(W1 h_t)) over time; x (B, L, D), key_padding (B, L) bool -> (B, D)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d, d), nn.Mish(), nn.Linear(d, 1))

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.score(x).squeeze(-1)
        if key_padding is not None:
            logits = logits.masked_fill(key_padding, float("-inf"))
        return (logits.softmax(-1).unsqueeze(-1) * x).sum(1)


class DynamicLinear(nn.Module):
    """A linear layer whose weight and bias are a per-sample mixture of K kernels (dynamic convolution,
    Chen et al. 2020, as StyleTalk uses it): mixture weights softmax(MLP(c) / temperature), the MLP
    c -> c_dim / ratio -> K without biases. x (B, L, in_dim), c (B, c_dim) -> (B, L, out_dim).

    With K = 1 the mixture weight is 1 and the layer is a plain ``nn.Linear`` with kernel 0.
    """

    def __init__(self, in_dim: int, out_dim: int, c_dim: int, *, k: int = 8, ratio: int = 4,
                 temperature: float = 30.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.attention = nn.Sequential(nn.Linear(c_dim, max(c_dim // ratio, 1), bias=False), nn.ReLU(),
                                       nn.Linear(max(c_dim // ratio, 1), k, bias=False))
        self.weight = nn.Parameter(torch.empty(k, out_dim, in_dim))
        self.bias = nn.Parameter(torch.empty(k, out_dim))
        bound = 1.0 / math.sqrt(in_dim)
        for i in range(k):  # nn.Linear's initialisation, per kernel
            nn.init.kaiming_uniform_(self.weight[i], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def mixture(self, c: torch.Tensor) -> torch.Tensor:
        """(B, K) kernel weights of the conditions c (B, c_dim)."""
        return (self.attention(c) / self.temperature).softmax(-1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        pi = self.mixture(c)
        weight = torch.einsum("bk,koi->boi", pi, self.weight)
        bias = pi @ self.bias
        return torch.einsum("bli,boi->blo", x, weight) + bias[:, None]


def dynamic_or_plain(in_dim: int, out_dim: int, c_dim: int, k: int, ratio: int, temperature: float) -> nn.Module:
    """:class:`DynamicLinear` for ``k`` >= 1, a plain ``nn.Linear`` (the ablation without it) for ``k`` = 0."""
    if k == 0:
        return nn.Linear(in_dim, out_dim)
    return DynamicLinear(in_dim, out_dim, c_dim, k=k, ratio=ratio, temperature=temperature)


class DynamicDecoderLayer(nn.Module):
    """StyleTalk's style-controllable decoder layer (post-norm): self-attention over the style tokens,
    cross-attention to the articulation features, then a feed-forward whose first layer is a
    :class:`DynamicLinear` conditioned on the style code (plain when ``k`` = 0).
    tgt (B, W, D), memory (B, W', D), style (B, D) -> (B, W, D)."""

    def __init__(self, d: int, heads: int, feedforward: int, dropout: float, *, k: int, ratio: int,
                 temperature: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.linear1 = dynamic_or_plain(d, feedforward, d, k, ratio, temperature)
        self.linear2 = nn.Linear(feedforward, d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in range(4))

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = self.norms[0](tgt + self.drops[0](self.self_attn(tgt, tgt, tgt, need_weights=False)[0]))
        x = self.norms[1](x + self.drops[1](self.cross_attn(x, memory, memory, need_weights=False)[0]))
        h = self.linear1(x, style) if isinstance(self.linear1, DynamicLinear) else self.linear1(x)
        return self.norms[2](x + self.drops[3](self.linear2(self.drops[2](F.relu(h)))))
