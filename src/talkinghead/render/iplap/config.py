"""Architecture and loss weights of the IP_LAP landmark-to-video renderer (stored inside its checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RendererConfig:
    """IP_LAP's defaults (paper §3.2, released code): 128 px, 2k+1 = 5 sketches, 32 full-resolution
    and 256 half-resolution channels, SPADE hidden width 256, 512-d audio feature; loss weights
    warp 2.5, perceptual 4, style 250 (inside the perceptual term), GAN 0.25, feature matching 2.5."""

    size: int = 128
    """Face crop side in pixels (the upper half is given, the lower half is generated)."""
    frames: int = 5
    """2k + 1 target sketches around the generated frame."""
    full_channels: int = 32
    """Channels of the full-resolution encoder features (h1)."""
    half_channels: int = 256
    """Channels of the half-resolution features (h2); PixelShuffle brings them to half_channels / 4."""
    hidden: int = 256
    """SPADE hidden width."""
    audio_dim: int = 512
    audio_width: float = 1.0
    """Channel multiplier of the audio encoder."""
    warp: bool = True
    """Alignment module warps the references by predicted motion fields (False: the ablation without
    warping, references aggregated where they are)."""
    warp_weight: float = 2.5
    perceptual_weight: float = 4.0
    style_weight: float = 250.0
    gan_weight: float = 0.25
    feature_matching_weight: float = 2.5
    blend_warped: bool = False
    """The translation module also predicts a per-pixel mask that blends the aggregated warped references
    with its own output (occlusion-aware blending as in FOMM; not in IP_LAP: off in the paper config). On a
    CPU budget it lets the renderer start from the sharp warped pixels instead of learning to copy them
    through SPADE."""
    l1_weight: float = 0.0
    """Pixel L1 between the generated and the real face (not in IP_LAP: 0 in the paper config). The small
    CPU config uses it because our perceptual network has random weights (no VGG offline): without it
    2000 CPU steps left the translation blurry and ghosted, worse than its own warped input."""
    disc_channels: int = 64
    disc_layers: int = 3
    disc_scales: int = 2
    perceptual_width_divisor: int = 4
    """Width divisor of the frozen random VGG-shaped perceptual network (see talkinghead.nn.perceptual)."""
