"""Normalizing flows on latent vectors.

Householder flow (Tomczak & Welling, 2016), VAST's variational style enhancer: z_k = H_k z_{k-1} with
H_k = I - 2 v_k v_k^T / ||v_k||^2, a reflection, hence invertible (H_k^-1 = H_k) and volume preserving
(|det H_k| = 1, log-det 0). The vectors come from the encoder's hidden state: v_1 = W_1 h, v_k = W_k v_{k-1}.
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
