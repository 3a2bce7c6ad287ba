"""Multi-scale PatchGAN discriminator with intermediate features (pix2pixHD), LSGAN and feature-matching losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """``layers`` stride-2 4x4 convs (instance norm, LeakyReLU) + a stride-1 conv + a 1-channel patch map."""

    def __init__(self, in_channels: int = 3, channels: int = 64, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, channels, 4, 2, 2), nn.LeakyReLU(0.2))]
        c = channels
        for i in range(1, layers + 1):
            cout = min(c * 2, channels * 8)
            stride = 2 if i < layers else 1
            blocks.append(nn.Sequential(nn.Conv2d(c, cout, 4, stride, 2), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2)))
            c = cout
        blocks.append(nn.Conv2d(c, 1, 4, 1, 2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output; the last one is the (B, 1, h, w) patch score map."""
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """``scales`` PatchGANs on the image and its 2x, 4x, ... average-pooled copies."""

    def __init__(self, in_channels: int = 3, channels: int = 64, layers: int = 3, scales: int = 2) -> None:
        super().__init__()
        self.nets = nn.ModuleList(PatchDiscriminator(in_channels, channels, layers) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(net(x))
        return out


def lsgan_loss(outputs: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Least-squares GAN loss of every scale's patch map against 1 (real) or 0 (fake), summed over scales."""
    return sum(F.mse_loss(o[-1], torch.full_like(o[-1], float(real))) for o in outputs)  # type: ignore[return-value]


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD feature matching: L1 between intermediate features, weighted 4 / (layers + 1) / scales."""
    n_layers = len(fake[0]) - 1
    w = 4.0 / n_layers / len(fake)
    return sum(w * F.l1_loss(f, r.detach()) for fs, rs in zip(fake, real)  # type: ignore[return-value]
               for f, r in zip(fs[:-1], rs[:-1]))


class SequenceDiscriminator(nn.Module):
    """1-D convolutions over coefficient sequences x (B, T, K): ``layers`` kernel-4 convs (stride 2,
    LeakyReLU), then either a per-time-step score map (B, T') (``classes`` = 0: a temporal PatchGAN)
    or class logits (B, classes) of the time-averaged features (a sequence classifier)."""

    def __init__(self, in_dim: int, channels: int = 64, layers: int = 3, classes: int = 0) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c = in_dim
        for i in range(layers):
            cout = channels * 2**i
            blocks += [nn.Conv1d(c, cout, 4, 2, 1), nn.LeakyReLU(0.2)]
            c = cout
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(c, classes) if classes else nn.Conv1d(c, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.transpose(1, 2))
        if isinstance(self.head, nn.Linear):
            return self.head(h.mean(-1))
        return self.head(h).squeeze(1)


class VideoPatchDiscriminator(nn.Module):
    """A video PatchGAN (StyleTalker's): 3-D convolutions over clips x (B, T, 3, H, W) in [-1, 1], ``layers``
    blocks halving space (and time from the second block on), LeakyReLU, then a (B, T', H', W') score map."""

    def __init__(self, channels: int = 32, layers: int = 4) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c = 3
        for i in range(layers):
            cout = channels * min(2**i, 8)
            stride = (2 if i else 1, 2, 2)
            blocks += [nn.Conv3d(c, cout, (3, 4, 4), stride, (1, 1, 1)), nn.LeakyReLU(0.2)]
            c = cout
        self.body = nn.Sequential(*blocks, nn.Conv3d(c, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.transpose(1, 2)).squeeze(1)
