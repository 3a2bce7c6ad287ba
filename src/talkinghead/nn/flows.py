"""Normalizing flows on latent vectors.

Householder flow (Tomczak & Welling, 2016), VAST's variational style enhancer: z_k = H_k z_{k-1} with
H_k = I - 2 v_k v_k^T / ||v_k||^2, a reflection, hence invertible (H_k^-1 = H_k) and volume preserving
(|det H_k| = 1, log-det 0). The vectors come from the encoder's hidden state: v_1 = W_1 h, v_k = W_k v_{k-1}.

Sequence flow, StyleTalker's prior: steps of actnorm and an affine coupling whose scale and shift come from an
LSTM over the untouched half of the sequence (and a condition such as audio features), the halves swapped
between steps. Both layers are made volume preserving (log-scales with zero sum per frame), so the flow's
log-det is exactly 0 and the prior's likelihood is the base density of the inverse-mapped sequence.
"""

from __future__ import annotations

import torch
from torch import nn


def householder(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Reflect z (B, D) in the hyperplane orthogonal to v (B, D): z - 2 v (v.z) / (v.v)."""
    return z - 2.0 * v * (v * z).sum(-1, keepdim=True) / (v * v).sum(-1, keepdim=True).clamp_min(1e-12)


class HouseholderFlow(nn.Module):
    """K Householder reflections conditioned on h (B, H): z0 (B, D) -> (z_K (B, D), log|det| (B,) = 0)."""

    def __init__(self, dim: int, hidden: int, steps: int) -> None:
        super().__init__()
        self.first = nn.Linear(hidden, dim)
        self.next = nn.ModuleList(nn.Linear(dim, dim) for _ in range(max(steps - 1, 0)))
        self.steps = steps

    def vectors(self, h: torch.Tensor) -> list[torch.Tensor]:
        """The K reflection vectors v_1..v_K, each (B, D)."""
        if not self.steps:
            return []
        vs = [self.first(h)]
        for layer in self.next:
            vs.append(layer(vs[-1]))
        return vs

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for v in self.vectors(h):
            z = householder(z, v)
        return z, z.new_zeros(len(z))  # reflections preserve volume exactly

    def inverse(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """z_K -> z0 (reflections are their own inverses, applied in reverse order)."""
        for v in reversed(self.vectors(h)):
            z = householder(z, v)
        return z


class VolumePreservingActNorm(nn.Module):
    """Per-channel affine map y = x * exp(s) + b over (B, T, D) with sum(s) = 0 (log-det 0)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def _scale(self) -> torch.Tensor:
        return torch.exp(self.log_scale - self.log_scale.mean())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._scale() + self.bias

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.bias) / self._scale()


class LSTMCoupling(nn.Module):
    """Affine coupling over (B, T, D): the first half passes, the second is scaled and shifted by an LSTM over
    the first half and the condition (B, T, C); log-scales are centred per frame (log-det 0) and bounded by tanh.
    """

    def __init__(self, dim: int, condition: int, hidden: int) -> None:
        super().__init__()
        self.half = dim // 2
        self.lstm = nn.LSTM(self.half + condition, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 2 * (dim - self.half))
        nn.init.zeros_(self.out.weight)  # starts as the identity
        nn.init.zeros_(self.out.bias)

    def _params(self, a: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.lstm(torch.cat([a, c], -1))
        log_s, t = self.out(h).chunk(2, -1)
        log_s = torch.tanh(log_s)
        return log_s - log_s.mean(-1, keepdim=True), t

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        a, b = x[..., :self.half], x[..., self.half:]
        log_s, t = self._params(a, c)
        return torch.cat([a, b * torch.exp(log_s) + t], -1)

    def inverse(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        a, b = y[..., :self.half], y[..., self.half:]
        log_s, t = self._params(a, c)
        return torch.cat([a, (b - t) * torch.exp(-log_s)], -1)


class SequenceFlow(nn.Module):
    """K steps of (actnorm, LSTM coupling, channel reversal) on (B, T, D) sequences conditioned on (B, T, C).

    ``forward`` maps base samples to the data side; ``inverse`` maps data to the base side; both keep volume
    (log-det exactly 0).
    """

    def __init__(self, dim: int, condition: int, hidden: int, steps: int) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError("a coupling flow needs at least 2 channels")
        self.norms = nn.ModuleList(VolumePreservingActNorm(dim) for _ in range(steps))
        self.couplings = nn.ModuleList(LSTMCoupling(dim, condition, hidden) for _ in range(steps))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        for norm, coupling in zip(self.norms, self.couplings):
            x = coupling(norm(x), c).flip(-1)
        return x

    def inverse(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        for norm, coupling in zip(reversed(self.norms), reversed(self.couplings)):
            y = norm.inverse(coupling.inverse(y.flip(-1), c))
        return y
