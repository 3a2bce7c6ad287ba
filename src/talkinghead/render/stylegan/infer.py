"""Running the style-based generator on aligned face crops: crops <-> W+ codes (used by StyleTalker and StyleHEAT).

Crops are the aligned face crops of preprocessing (any size; resized to the networks' size here).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from talkinghead.render.stylegan.invert import invert
from talkinghead.render.stylegan.model import Encoder, Generator, Reference

BATCH = 32
"""Frames per generator / encoder call."""


def crops_tensor(crops: np.ndarray, size: int) -> torch.Tensor:
    """Aligned face crops (N, S, S, 3) uint8 of any size -> (N, 3, size, size) float in [-1, 1]."""
    resized = [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_crops(images: torch.Tensor) -> np.ndarray:
    """Generator images (N, 3, S, S) in [-1, 1] -> crops (N, S, S, 3) uint8."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def encode_crops(encoder: Encoder, crops: np.ndarray) -> torch.Tensor:
    """W+ codes (N, L, w_dim) of aligned face crops (N, S, S, 3) uint8 of any size (the encoder alone)."""
    codes = [encoder(crops_tensor(crops[s:s + BATCH], encoder.config.size)) for s in range(0, len(crops), BATCH)]
    return torch.cat(codes)


def reference_code(generator: Generator, encoder: Encoder, crop: np.ndarray, *, steps: int = 0
                   ) -> tuple[torch.Tensor, Reference | None]:
    """(the W+ code (L, w_dim) of a photo's face crop (S, S, 3) uint8, the reference a feature-path generator
    draws from, or None on the constant path): the encoder's, the code refined by ``steps`` of optimisation
    (:func:`talkinghead.render.stylegan.invert.invert`)."""
    codes, reference = invert(generator, encoder, crops_tensor(crop[None], generator.config.size), steps=steps)
    return codes[0], reference


@torch.no_grad()
def render_codes(generator: Generator, codes: torch.Tensor, reference: Reference | None = None) -> np.ndarray:
    """Face crops (T, S, S, 3) uint8 of W+ codes (T, L, w_dim) (deterministic: no per-pixel noise), drawn from
    ``reference`` on the feature path."""
    out = [to_crops(generator(codes[s:s + BATCH], noise="none", reference=reference)[0])
           for s in range(0, len(codes), BATCH)]
    return np.concatenate(out) if out else np.zeros((0, generator.config.size, generator.config.size, 3), np.uint8)
