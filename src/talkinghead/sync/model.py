"""SyncNet: a visual encoder over 5 frames of the mouth and an audio encoder over 0.2 s of mel, compared
by cosine similarity.

The visual stream sees mouth crops (``visual="image"``) or pose-free lip and jaw mesh points
(``visual="mesh"``); see :mod:`talkinghead.sync.inputs`.

Objectives: "contrastive" (StyleTalker §3.1: cosine / temperature, InfoNCE of the in-sync mel
against mel windows shifted within the same clip) or "binary" (Wav2Lip: binary cross-entropy on
the cosine similarity of in-sync vs shifted pairs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.nn.checkpoint import CheckpointModel
from talkinghead.nn.encoders import speech_encoder


@dataclass
class SyncNetConfig:
    """Architecture and objective, stored inside checkpoints."""

    visual: str = "image"
    """"image" (mouth crops) or "mesh" (lip and jaw points)."""
    frames: int = 5
    """Mouth frames per window (0.2 s at 25 fps)."""
    mesh_dim: int = 165
    """Mesh stream: values per frame (55 points x 3)."""
    height: int = 64
    width: int = 128
    """Mouth crop size: the lower half of a face crop, resized."""
    speech: str = "mel"
    """What the audio stream reads (:data:`talkinghead.audio.speech.SPEECH_INPUTS`): mel windows (16, 80) into a
    CNN, or a 5-frame window of phone one-hots or Whisper tiny.en encoder features into a small MLP
    (:class:`talkinghead.nn.encoders.WindowEncoder`; our addition)."""
    mel_frames: int = 16
    n_mels: int = 80
    embed: int = 128
    channels: int = 32
    """Width of the first conv block (doubled at each later block, up to 8x)."""
    objective: str = "contrastive"
    temperature: float = 0.07
    in_batch_negatives: bool = True
    """Contrastive only: besides the shifted windows of the same clip (StyleTalker's hard negatives),
    the other items' in-sync windows are negatives too. Without them a CPU run stayed at chance
    (loss ln 5) for 375 steps; with them it left chance within 100 steps."""


def _block(cin: int, cout: int, stride: tuple[int, int] | int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.LayerNorm(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


class SyncNet(CheckpointModel):
    """mouth: (B, frames, 3, H, W) in [0, 1] or (B, frames, mesh_dim); mel: (B, mel_frames, n_mels)
    -> unit embeddings (B, embed)."""

    config_class = SyncNetConfig
    default_checkpoint = Path(__file__).parent / "assets" / "syncnet_mesh_v2.pt"
    """The SyncNet shipped with the package (its data card: the .json file beside it)."""

    def __init__(self, config: SyncNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        widths = [c, 2 * c, 4 * c, 8 * c, 8 * c]
        if config.visual == "image":
            layers, cin = [], 3 * config.frames
            for w in widths:
                layers.append(_block(cin, w, 2))
                cin = w
            self.visual = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, config.embed))
        elif config.visual == "mesh":
            self.visual = _mlp([config.frames * config.mesh_dim, 16 * c, 16 * c, 8 * c, config.embed])
        else:
            raise ValueError(f"unknown visual stream {config.visual!r}")
        if config.speech == "mel":
            layers, cin = [], 1
            for w, stride in zip(widths[:4], [(1, 2), (2, 2), (2, 2), (2, 2)]):
                layers.append(_block(cin, w, stride))
                cin = w
            self.audio = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, config.embed))
        else:
            self.audio = speech_encoder(config.speech, config.embed)

    def embed_mouth(self, mouth: torch.Tensor) -> torch.Tensor:
        b = mouth.shape[0]
        if self.config.visual == "mesh":
            return F.normalize(self.visual(mouth.reshape(b, -1)), dim=-1)
        x = mouth.reshape(b, -1, *mouth.shape[-2:]) * 2 - 1
        return F.normalize(self.visual(x), dim=-1)

    def embed_audio(self, speech: torch.Tensor) -> torch.Tensor:
        """Speech inputs (B, ...) (mel windows (B, 16, 80), or ``config.speech``'s) -> unit embeddings (B, embed)."""
        if self.config.speech == "mel":
            return F.normalize(self.audio(speech.unsqueeze(1) / 4.0), dim=-1)
        return F.normalize(self.audio(speech), dim=-1)

    def loss(self, mouth: torch.Tensor, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Objective for mouth (B, frames, 3, H, W) or (B, frames, mesh_dim) against mels
        (B, 1 + K, mel_frames, n_mels), index 0 in sync.

        Returns:
            (loss, accuracy: share of items whose in-sync mel scores highest among its own clip's windows).
        """
        b, k = mels.shape[:2]
        v = self.embed_mouth(mouth)
        a = self.embed_audio(mels.reshape(b * k, *mels.shape[2:])).reshape(b, k, -1)
        cos = torch.einsum("bd,bkd->bk", v, a)
        if self.config.objective == "contrastive":
            logits = cos
            if self.config.in_batch_negatives and b > 1:
                others = (v @ a[:, 0].T).masked_fill(torch.eye(b, dtype=torch.bool, device=v.device), -1e4)
                logits = torch.cat([cos, others], 1)
            target = torch.zeros(b, dtype=torch.long, device=cos.device)
            loss = F.cross_entropy(logits / self.config.temperature, target)
        elif self.config.objective == "binary":
            target = torch.zeros_like(cos)
            target[:, 0] = 1.0
            prob = ((cos + 1) / 2).clamp(1e-6, 1 - 1e-6)
            weight = torch.ones_like(cos)
            weight[:, 1:] = 1.0 / max(k - 1, 1)  # as many positive as negative pairs in the loss
            loss = F.binary_cross_entropy(prob, target, weight=weight)
        else:
            raise ValueError(f"unknown objective {self.config.objective!r}")
        return loss, (cos.argmax(1) == 0).float().mean()


def sequence_sync_loss(net: SyncNet, mouth: torch.Tensor, mels: torch.Tensor, *, min_offset: int = 5) -> torch.Tensor:
    """Lip-sync loss of generated sequences under a (frozen) contrastive SyncNet.

    Every ``frames``-long chunk of ``mouth`` (B, N, ...) is scored against the mel windows (B, N, 16, 80)
    of every chunk start of its own sequence: InfoNCE (cosine / temperature) of the in-sync window
    against those shifted by at least ``min_offset`` frames (nearer shifts are left out, as in
    :class:`talkinghead.train.datasets.SyncDataset`). Needs N >= frames + min_offset.
    """
    if net.config.speech != "mel":
        raise ValueError(f"the sync loss reads mel windows: its SyncNet reads {net.config.speech}")
    f = net.config.frames
    b, n = mouth.shape[:2]
    starts = n - f + 1
    if starts <= min_offset:
        raise ValueError(f"sequences of {n} frames are too short for a sync loss over {f}-frame chunks")
    chunks = torch.stack([mouth[:, s:s + f] for s in range(starts)], 1)  # (B, S, f, ...)
    v = net.embed_mouth(chunks.flatten(0, 1)).view(b, starts, -1)
    a = net.embed_audio(mels[:, :starts].flatten(0, 1)).view(b, starts, -1)
    logits = torch.einsum("bsd,bud->bsu", v, a) / net.config.temperature
    shift = (torch.arange(starts)[:, None] - torch.arange(starts)[None]).abs().to(logits.device)
    logits = logits.masked_fill((shift > 0) & (shift < min_offset), float("-inf"))
    target = torch.arange(starts, device=logits.device).repeat(b)
    return F.cross_entropy(logits.flatten(0, 1), target)
