"""VAST's image renderer (after its personalised cGAN): a U-Net that turns a mesh sketch and the eroded
background of a template frame into the face, with speech features run through an LSTM and injected at
the bottleneck, trained adversarially (PatchGAN) with an L1 loss on one template video of the target.

Per frame the input is 6 channels at ``size`` x ``size``: the sketch of the target mesh (IP_LAP's coloured
polylines, :func:`talkinghead.render.iplap.sketch.draw_sketch`) and the template crop with the face region
blacked out (the "eroded background"). The network predicts RGB and the caller keeps the background outside
the face mask (:func:`composite`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from talkinghead.audio.posteriorgram import speech_dim
from talkinghead.nn.checkpoint import CheckpointModel


@dataclass
class VastRendererConfig:
    """U-Net of ``depth`` stride-2 levels starting at ``channels`` (doubling, at most 8x), LSTM over the speech."""

    size: int = 128
    channels: int = 32
    depth: int = 4
    speech: str = "ppg"
    speech_hidden: int = 64
    l1_weight: float = 100.0
    """pix2pix's weight of the L1 against the adversarial loss (weight 1)."""

    def __post_init__(self) -> None:
        speech_dim(self.speech)
        if self.size % (2 ** self.depth):
            raise ValueError(f"size must be a multiple of {2 ** self.depth}")


def _down(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
                         nn.Conv2d(cin, cout, 3, 1, 1), nn.InstanceNorm2d(cout), nn.ReLU())


class VastRenderer(CheckpointModel):
    """sketches (B, F, 3, S, S) + backgrounds (B, F, 3, S, S) in [0, 1] + speech (B, F, D) -> (B, F, 3, S, S)."""

    config_class = VastRendererConfig

    def __init__(self, config: VastRendererConfig) -> None:
        super().__init__()
        self.config = c = config
        widths = [min(c.channels * 2 ** i, c.channels * 8) for i in range(c.depth + 1)]
        self.inp = nn.Sequential(nn.Conv2d(6, widths[0], 3, 1, 1), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList(_down(widths[i], widths[i + 1]) for i in range(c.depth))
        self.lstm = nn.LSTM(speech_dim(c.speech), c.speech_hidden, batch_first=True)
        self.bottleneck = nn.Sequential(nn.Conv2d(widths[-1] + c.speech_hidden, widths[-1], 3, 1, 1), nn.ReLU())
        self.ups = nn.ModuleList(_up(widths[i + 1] * (1 if i == c.depth - 1 else 2), widths[i])
                                 for i in reversed(range(c.depth)))
        self.out = nn.Conv2d(widths[0] * 2, 3, 3, 1, 1)

    def forward(self, sketches: torch.Tensor, backgrounds: torch.Tensor, speech: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(frames (B, F, 3, S, S) in [0, 1], the LSTM state to continue from)."""
        b, f = sketches.shape[:2]
        x = self.inp(torch.cat([sketches, backgrounds], 2).flatten(0, 1))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        audio, state = self.lstm(speech, state)
        audio = audio.reshape(b * f, -1, 1, 1).expand(-1, -1, *x.shape[2:])
        x = self.bottleneck(torch.cat([x, audio], 1))
        for i, up in enumerate(self.ups):
            x = up(x if i == 0 else torch.cat([x, skips[-1 - i]], 1))
        out = torch.sigmoid(self.out(torch.cat([x, skips[0]], 1)))
        return out.view(b, f, 3, *out.shape[2:]), state  # type: ignore[return-value]


def composite(rendered: torch.Tensor, background: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The rendered face inside ``mask`` (..., 1, S, S) in [0, 1], the template background outside."""
    return mask * rendered + (1 - mask) * background


