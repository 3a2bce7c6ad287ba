"""Perceptual and style (Gram) losses on a frozen feature network that needs no downloaded weights.

IP_LAP (like most renderers) measures these on ImageNet VGG-19 activations (relu1_1 .. relu5_1,
two scales). No VGG weights exist offline here, so the feature network is a VGG-19-shaped stack of
3x3 convs (the same stages, widths divided by ``width_divisor``, the same relu_k_1 taps) with fixed
random He-initialised weights drawn from a seeded generator. Random conv features are a known,
usable perceptual representation (He, Wang & Hopcroft, "A powerful generative model using random
weights for the deep image representation", NeurIPS 2016; Ulyanov et al., "Deep Image Prior"):
they keep local structure and texture statistics, which is what the perceptual and Gram terms
need. The weights are in no checkpoint: the seed makes them identical everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
"""(channels, convs) of VGG-19's five stages; the loss taps the first ReLU of each (relu_k_1)."""


class RandomVGG(nn.Module):
    """Frozen VGG-19-shaped feature extractor with seeded random weights: x (B, 3, H, W) in [0, 1] ->
    relu_k_1 activations of the five stages."""

    def __init__(self, *, width_divisor: int = 4, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        stages, cin = [], 3
        for channels, convs in VGG19_STAGES:
            c = max(channels // width_divisor, 8)
            layers = []
            for _ in range(convs):
                conv = nn.Conv2d(cin, c, 3, 1, 1)
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / (cin * 9)) ** 0.5)
                    conv.bias.zero_()
                layers.append(conv)
                cin = c
            stages.append(nn.ModuleList(layers))
        self.stages = nn.ModuleList(stages)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - 0.5) / 0.25
        taps = []
        for i, stage in enumerate(self.stages):
            if i:
                x = F.max_pool2d(x, 2)
            for j, conv in enumerate(stage):
                x = F.relu(conv(x))
                if j == 0:
                    taps.append(x)
        return taps


def gram(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix normalised by C * H * W."""
    b, c, h, w = x.shape
    f = x.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


class PerceptualLoss(nn.Module):
    """L1 between feature taps at ``scales`` image scales (weights per tap as IP_LAP: 1 each), plus
    ``style_weight`` x L1 between Gram matrices at full scale."""

    def __init__(self, *, scales: int = 2, width_divisor: int = 4) -> None:
        super().__init__()
        self.net = RandomVGG(width_divisor=width_divisor)
        self.scales = scales

    def forward(self, x: torch.Tensor, target: torch.Tensor, *, style_weight: float = 0.0) -> torch.Tensor:
        self.net.eval()
        loss = x.new_zeros(())
        for s in range(self.scales):
            if s:
                x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
                target = F.interpolate(target, scale_factor=0.5, mode="bilinear", align_corners=False)
            fx, ft = self.net(x), self.net(target)
            for a, b in zip(fx, ft):
                loss = loss + F.l1_loss(a, b.detach())
                if style_weight and s == 0:
                    loss = loss + style_weight * F.l1_loss(gram(a), gram(b).detach())
        return loss
