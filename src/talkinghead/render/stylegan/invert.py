"""GAN inversion of new photos: the encoder's W+ code, optionally refined by optimisation.

pSp gives a code in one pass; optimising it further against the photo (as in image2StyleGAN / the first step of
pivotal tuning) recovers detail the encoder misses, at the cost of codes that can drift from what the encoder
(and models trained on its codes) produce.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from talkinghead.nn.perceptual import PerceptualLoss
from talkinghead.render.stylegan.model import Encoder, Generator, Reference


def invert(generator: Generator, encoder: Encoder, images: torch.Tensor, *, steps: int = 0, lr: float = 0.01,
           perceptual_weight: float = 0.8) -> tuple[torch.Tensor, Reference | None]:
    """(W+ codes (B, L, w_dim), the reference a feature-path generator draws them from (the encoder's maps and
    unrefined codes, :meth:`Encoder.encode`) or None on the constant path) of images
    (B, 3, S, S) in [-1, 1] at the generator's size: the encoder's, then ``steps`` Adam steps on the codes against
    L2 + ``perceptual_weight`` x perceptual (the random-VGG stand-in for LPIPS) of the generated image (no per-pixel
    noise; the perceptual term needs images of at least 32 px). On the feature path the image is drawn from the
    encoder's map with the encoder's codes as its reference, so refined codes move it by their offsets. The models
    are left unchanged."""
    with torch.no_grad():
        codes, maps = encoder.encode(images)
    reference = (maps, codes) if maps is not None else None
    if steps <= 0:
        return codes, reference
    perceptual = PerceptualLoss().to(images.device) if perceptual_weight > 0 else None
    codes = codes.clone().requires_grad_(True)
    opt = torch.optim.Adam([codes], lr=lr)
    frozen = [p.requires_grad for p in generator.parameters()]
    generator.requires_grad_(False)
    try:
        for _ in range(steps):
            recon, _ = generator(codes, noise="none", reference=reference)
            loss = F.mse_loss(recon, images)
            if perceptual is not None:
                loss = loss + perceptual_weight * perceptual((recon + 1) / 2, (images + 1) / 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p, flag in zip(generator.parameters(), frozen):
            p.requires_grad_(flag)
    return codes.detach(), reference
