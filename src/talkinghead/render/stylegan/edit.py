"""Latent directions of the style-based generator without labels (GANSpace: PCA of W) and gradual edits along them.

GANSpace (Härkönen et al., 2020) samples many z, maps them to w, and takes the principal components of w as edit
directions; an edit adds ``strength`` standard deviations of a component to some of the W+ style vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talkinghead.render.stylegan.model import Generator


@dataclass
class LatentDirections:
    """``components`` (K, w_dim) orthonormal, ``stds`` (K,) the standard deviation of w along each (descending),
    ``mean`` (w_dim,)."""

    components: torch.Tensor
    stds: torch.Tensor
    mean: torch.Tensor


@torch.no_grad()
def principal_directions(generator: Generator, *, samples: int = 10_000, k: int = 16, seed: int = 0,
                         batch: int = 1000) -> LatentDirections:
    """The first ``k`` principal components of w = mapping(z) over ``samples`` random z (GANSpace)."""
    gen = torch.Generator().manual_seed(seed)
    d = generator.config.w_dim
    ws = torch.cat([generator.mapping(torch.randn(min(batch, samples - s), d, generator=gen))
                    for s in range(0, samples, batch)])
    return principal_components(ws, k)


def principal_components(ws: torch.Tensor, k: int) -> LatentDirections:
    """The first ``k`` principal components of codes ``ws`` (N, w_dim), with the codes' spread along each."""
    mean = ws.mean(0)
    _, sing, vt = torch.linalg.svd(ws - mean, full_matrices=False)
    k = min(k, ws.shape[1])
    return LatentDirections(vt[:k], sing[:k] / np.sqrt(max(len(ws) - 1, 1)), mean)


def apply_edit(w_plus: torch.Tensor, directions: LatentDirections, component: int, strength: float | torch.Tensor,
               layers: slice = slice(None)) -> torch.Tensor:
    """W+ codes (..., L, w_dim) moved by ``strength`` standard deviations of ``component`` on the style vectors
    ``layers`` (GANSpace edits a layer range); a tensor ``strength`` of shape (...) varies it per code (a gradual
    edit over a video's frames)."""
    step = directions.components[component] * directions.stds[component]
    amount = torch.as_tensor(strength, dtype=w_plus.dtype)[..., None, None]
    mask = torch.zeros(w_plus.shape[-2], 1, dtype=w_plus.dtype)
    mask[layers] = 1.0
    return w_plus + amount * mask * step
