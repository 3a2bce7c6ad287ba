"""A differentiable student of dlib's face embedding, for identity losses.

pSp and StyleTalker take an identity loss from ArcFace. No ArcFace weights exist offline, and dlib's
ResNet (our identity metric, :mod:`talkinghead.face.identity`) is not differentiable. So identity
losses use this small CNN, trained to map each aligned face crop to its clip's dlib embedding; the loss
is the distance between the student's embeddings of two images. Reports still measure identity with
dlib itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.nn.checkpoint import CheckpointModel


@dataclass
class IdentityNetConfig:
    size: int = 128
    """Input crops are resized to this (aligned face crops, RGB in [-1, 1])."""
    channels: int = 32
    """Width of the first stage (doubling at each of the four stride-2 stages, at most 8x)."""
    embed: int = 128
    """dlib's embedding size."""


class IdentityNet(CheckpointModel):
    """image (B, 3, H, W) in [-1, 1] -> (B, embed) estimate of its dlib embedding."""

    config_class = IdentityNetConfig
    default_checkpoint = Path(__file__).parents[1] / "render" / "stylegan" / "assets" / "feature_identity_v1.pt"
    """The student shipped with the feature-path generator (trained by the same train-stylegan run)."""

    def __init__(self, config: IdentityNetConfig) -> None:
        super().__init__()
        self.config = c = config
        layers: list[nn.Module] = []
        cin = 3
        for i in range(5):
            cout = c.channels * min(2**i, 8)
            layers += [nn.Conv2d(cin, cout, 3, 2 if i else 1, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
                       nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, c.embed)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] != self.config.size:
            image = F.interpolate(image, size=(self.config.size, self.config.size), mode="bilinear",
                                  align_corners=False, antialias=True)
        return self.head(self.features(image).mean((2, 3)))


def identity_loss(net: IdentityNet, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean distance between the student's embeddings of ``image`` and ``target`` (B, 3, H, W); the target's
    embedding is a constant. ``net`` should be frozen and in eval mode."""
    with torch.no_grad():
        goal = net(target)
    return (net(image) - goal).norm(dim=1).mean()
