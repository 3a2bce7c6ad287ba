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
    input_resolution: int = 4
    """Where synthesis starts. 4: StyleGAN2's learned 4x4 constant (the ``paper`` path: identity must come from
    the GAN prior through W+). Larger (a power of two below ``size``): the *feature path*: synthesis starts from a
    reference image's feature map at this resolution, given by the encoder (HFGI's 64 x 64 map of StyleHEAT's
    supplement), warped by a flow that :class:`MotionFlow` predicts from the codes; identity travels through the
    reference's own features. W+ keeps its length: the vectors of the layers below this resolution drive the
    flow (the ``motion_latents``: pose and mouth shape, the coarse and middle codes), the rest modulate the
    convolutions above it."""
    flow_channels: int = 64
    """Width of the feature path's flow network."""
    skip_channels: int = 0
    """Feature path: channels of the reference's skip maps at each resolution above ``input_resolution`` (the
    encoder's early features, warped by the same flow and added after each upsampling convolution, as LIA's
    decoder takes its encoder's warped features); 0: the input map alone."""

    def __post_init__(self) -> None:
        check_size(self.size)
        r = self.input_resolution
        if r & (r - 1) or not 4 <= r < self.size:
            raise ValueError(f"input_resolution must be a power of two in 4..{self.size // 2}, not {r}")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_latents(self) -> int:
        """Style vectors of W+: two per resolution from 4 px (one conv at 4 px + toRGB share), 2 log2(size) - 2."""
        return 2 * self.log_size - 2

    def channels_at(self, resolution: int) -> int:
        return width_at(resolution, self.channels, self.min_channels)

    @property
    def feature_path(self) -> bool:
        """Whether synthesis starts from an encoder's feature map (see ``input_resolution``)."""
        return self.input_resolution > 4

    @property
    def motion_latents(self) -> int:
        """W+ vectors that drive the feature path's flow (those of the layers below ``input_resolution``: the
        toRGB at 2^k reads vector 2k - 3); 0 on the constant path."""
        return 2 * int(math.log2(self.input_resolution)) - 3 if self.feature_path else 0


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
    feature_channels: int = 0
    """Channels of the feature map at size / 4 that the encoder also gives a feature-path generator (its
    ``channels_at(size / 4)``); 0: codes only (pSp)."""
    skip_channels: int = 0
    """With a feature map, also skip maps of this many channels at size / 2 and size (from the backbone's first
    levels) for a generator with the same ``skip_channels``; 0: none."""


def check_feature_path(generator: GeneratorConfig, encoder: EncoderConfig) -> None:
    """Raise unless ``encoder`` gives what the feature-path ``generator`` starts from: its map at a quarter of the
    size with the generator's channels there, and the same skip maps."""
    g, e = generator, encoder
    if not g.feature_path or g.input_resolution != g.size // 4 or e.skip_channels != g.skip_channels or \
            e.feature_channels != g.channels_at(g.input_resolution):
        raise ValueError("a feature-path generator starts at a quarter of its size from the encoder's map of its "
                         "channels there (and the same skip channels)")


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
