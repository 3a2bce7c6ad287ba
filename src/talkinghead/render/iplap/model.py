"""IP_LAP's landmark-to-video renderer (Zhong et al., CVPR 2023, §3.2): an alignment module warps N
reference faces (and their encoder features) towards the target sketches and aggregates them with
per-pixel softmax weights; a translation module completes the masked lower half of the target from
its sketches, the aggregated warped images/features (SPADE) and the audio feature (AdaIN).

Images are (.., 3, S, S) RGB in [0, 1]; sketches are drawn by :func:`talkinghead.render.iplap.sketch.draw_sketch`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from talkinghead.nn.checkpoint import CheckpointModel
from talkinghead.nn.encoders import MelEncoder
from talkinghead.nn.layers import adain_block, spade_block, warp
from talkinghead.render.iplap.config import RendererConfig


def _stem(cin: int, c1: int, c2: int) -> tuple[nn.Sequential, nn.Sequential]:
    """7x7 conv to c1 at full resolution, then a stride-2 3x3 conv to c2 (both BN + ReLU)."""
    return (nn.Sequential(nn.Conv2d(cin, c1, 7, 1, 3, bias=False), nn.BatchNorm2d(c1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(c1, c2, 3, 2, 1, bias=False), nn.BatchNorm2d(c2), nn.ReLU()))


def lower_half_masked(image: torch.Tensor) -> torch.Tensor:
    """A copy of (B, 3, S, S) images with the lower half zeroed."""
    out = image.clone()
    out[..., image.shape[-2] // 2:, :] = 0
    return out


class Alignment(nn.Module):
    """Warps each reference towards the target sketches and aggregates over references.

    refs (B, N, 3, S, S), ref_sketches (B, N, 3, S, S), sketches (B, F, 3, S, S) ->
    (warped image (B, 3, S, S), warped h1 (B, c1, S, S), warped h2 (B, c2, S/2, S/2)).
    """

    def __init__(self, c: RendererConfig) -> None:
        super().__init__()
        self.config = c
        mod = 3 * c.frames
        q = c.half_channels // 4
        self.enc1, self.enc2 = _stem(6, c.full_channels, c.half_channels)
        self.spade1 = spade_block(c.half_channels, mod, c.hidden)
        self.spade2 = spade_block(c.half_channels, mod, c.hidden)
        self.shuffle = nn.PixelShuffle(2)
        self.spade3 = spade_block(q, mod, c.hidden)
        self.flow = nn.Conv2d(q, 2, 7, 1, 3)
        self.weight = nn.Sequential(nn.Conv2d(q, q, 7, 1, 3), nn.ReLU(), nn.Conv2d(q, 1, 7, 1, 3))
        nn.init.zeros_(self.flow.weight)
        nn.init.zeros_(self.flow.bias)

    def encode(self, refs: torch.Tensor, ref_sketches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The references' encoder features, which depend on no target: (B * N, c1, S, S), (B * N, c2, S/2, S/2)."""
        h1 = self.enc1(torch.cat([refs, ref_sketches], 2).flatten(0, 1))
        return h1, self.enc2(h1)

    def forward(self, refs: torch.Tensor, ref_sketches: torch.Tensor, sketches: torch.Tensor,
                encoded: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``encoded``: :meth:`encode` of these references (computed here when not given)."""
        b, n = refs.shape[:2]
        drive = sketches.flatten(1, 2)  # (B, 3F, S, S): SPADE modulates each target's N references alike
        h1, h2 = encoded if encoded is not None else self.encode(refs, ref_sketches)
        y = self.spade2(self.spade1(h2, drive), drive)
        y = self.spade3(self.shuffle(y), drive)
        logits = self.weight(y).view(b, n, 1, *y.shape[-2:])
        weights = logits.softmax(1)
        images = refs.flatten(0, 1)
        if self.config.warp:
            flow = self.flow(y)
            images, h1, h2 = warp(images, flow), warp(h1, flow), warp(h2, flow)

        def aggregate(t: torch.Tensor) -> torch.Tensor:
            w = weights if t.shape[-1] == weights.shape[-1] else nn.functional.avg_pool2d(weights.flatten(0, 1), 2
                                                                                          ).view(b, n, 1, *t.shape[-2:])
            return (t.view(b, n, *t.shape[1:]) * w).sum(1)

        return aggregate(images), aggregate(h1), aggregate(h2)


class Translation(nn.Module):
    """masked target (B, 3, S, S) + sketches (B, F, 3, S, S) + aligned references + audio (B, A) -> (B, 3, S, S)."""

    def __init__(self, c: RendererConfig) -> None:
        super().__init__()
        q = c.half_channels // 4
        self.enc1, self.enc2 = _stem(3 + 3 * c.frames, c.full_channels, c.half_channels)
        self.spade1 = spade_block(c.half_channels, c.half_channels, c.hidden)
        self.adain1 = adain_block(c.half_channels, c.audio_dim)
        self.shuffle = nn.PixelShuffle(2)
        self.spade2 = spade_block(q, c.full_channels, c.hidden)
        self.adain2 = adain_block(q, c.audio_dim)
        self.spade3 = spade_block(q, 3, c.hidden)
        self.out = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(q, 3, 7, 1, 3, bias=False), nn.Sigmoid())
        self.blend = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(q, 1, 7, 1, 3), nn.Sigmoid()) \
            if c.blend_warped else None

    def forward(self, masked: torch.Tensor, sketches: torch.Tensor, image: torch.Tensor, h1: torch.Tensor,
                h2: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        x = self.enc2(self.enc1(torch.cat([masked, sketches.flatten(1, 2)], 1)))
        x = self.shuffle(self.adain1(self.spade1(x, h2), audio))
        x = self.spade3(self.adain2(self.spade2(x, h1), audio), image)
        if self.blend is None:
            return self.out(x)
        m = self.blend(x)
        return m * image + (1 - m) * self.out(x)


class IPLAPRenderer(CheckpointModel):
    """target (B, 3, S, S) (only its upper half is used), sketches (B, F, 3, S, S), refs and ref_sketches
    (B, N, 3, S, S), mel (B, 16, 80) -> (generated (B, 3, S, S), aggregated warped references (B, 3, S, S))."""

    config_class = RendererConfig
    default_checkpoint = Path(__file__).parent / "assets" / "iplap_renderer_v1.pt"
    """The renderer shipped with the package (its data card: ``motion/iplap/assets/iplap_v1.json``)."""

    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        self.config = config
        self.alignment = Alignment(config)
        self.translation = Translation(config)
        self.audio = MelEncoder(config.audio_dim, width=config.audio_width, tanh=False)

    def forward(self, target: torch.Tensor, sketches: torch.Tensor, refs: torch.Tensor, ref_sketches: torch.Tensor,
                mel: torch.Tensor, encoded: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``encoded``: the references' :meth:`Alignment.encode`, when a clip's references serve many batches."""
        image, h1, h2 = self.alignment(refs, ref_sketches, sketches, encoded)
        out = self.translation(lower_half_masked(target), sketches, image, h1, h2, self.audio(mel))
        return out, image
