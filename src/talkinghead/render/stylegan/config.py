"""Architectures of the compact style-based generator and its encoder (stored inside their checkpoints)."""

from __future__ import annotations

import math
from dataclasses import dataclass


def check_size(size: int) -> None:
    """Images of a style-based network are square, a power of two of at least 8 px."""
    if size < 8 or size & (size - 1):
        raise ValueError(f"size must be a power of two of at least 8, not {size}")


def width_at(resolution: int, channels: int, min_channels: int) -> int:
    """Channels at a resolution: ``channels`` up to 32 px, halved at every doubling above, at least ``min_channels``."""
    return max(min_channels, channels // max(1, resolution // 32))


@dataclass
class GeneratorConfig:
    """A StyleGAN2-style generator (Karras et al., 2020), compact: a mapping network of ``mapping_layers`` from
    z to w, a learned 4x4 constant, two modulated 3x3 convolutions per resolution (bilinear upsampling before the
    first, per-pixel noise after each) and skip toRGB outputs. StyleGAN2's FFHQ model is 1024 px, w 512, 8
    mapping layers; the defaults here are the 128 px CPU size (``size`` up to 1024 for GPU users)."""

    size: int = 128
    w_dim: int = 256
    mapping_layers: int = 4
    channels: int = 256
    """Channels at 4..32 px; halved at every doubling above 32 px, never below ``min_channels``."""
    min_channels: int = 32
    lr_mapping: float = 0.01
    """Learning-rate multiplier of the mapping network (equalised learning rate, as StyleGAN2)."""

    def __post_init__(self) -> None:
        check_size(self.size)

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_latents(self) -> int:
        """Style vectors of W+: two per resolution from 4 px (one conv at 4 px + toRGB share), 2 log2(size) - 2."""
        return 2 * self.log_size - 2

    def channels_at(self, resolution: int) -> int:
        return width_at(resolution, self.channels, self.min_channels)


@dataclass
class EncoderConfig:
    """A pSp-style encoder (Richardson et al., 2021): a residual backbone over the image whose feature pyramid
    (coarse, medium, fine maps) feeds one map2style head per W+ vector (coarse vectors from the coarsest map,
    as in pSp's 3 / 4 / rest split of 18), added to the generator's average w."""

    size: int = 128
    w_dim: int = 256
    n_latents: int = 12
    channels: int = 32
    """Backbone width at full resolution (doubling per level, at most 8x)."""
    head_channels: int = 64
    """Width of the map2style convolutions (pSp: 512, the w width; narrower keeps the 128 px encoder small)."""


@dataclass
class DiscriminatorConfig:
    """StyleGAN2's residual discriminator: residual blocks halving the resolution down to 4 px, the minibatch
    standard deviation as an extra channel (groups of ``mbstd_group``), a 3x3 conv and two linear layers -> one
    logit per image. Widths follow :class:`GeneratorConfig`'s rule."""

    size: int = 128
    channels: int = 256
    min_channels: int = 32
    mbstd_group: int = 4

    def __post_init__(self) -> None:
        check_size(self.size)

    def channels_at(self, resolution: int) -> int:
        return width_at(resolution, self.channels, self.min_channels)
