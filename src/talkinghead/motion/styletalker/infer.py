"""Running StyleTalker: a face crop and speech -> W+ codes of every frame -> face crops from the generator.

StyleTalker works at :data:`~talkinghead.data.clip.DATA_FPS` (its training rate) on aligned face crops (the crops
of preprocessing, resized to the generator's size); the pipeline in :mod:`talkinghead.api` cuts the crop from
the photo and pastes the generated crops back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from talkinghead.data.clip import DATA_FPS
from talkinghead.io.video import frame_indices
from talkinghead.motion.styletalker.model import StyleTalker
from talkinghead.render.stylegan.model import Encoder, Generator

ASSETS = Path(__file__).parent / "assets"
DEFAULT_CHECKPOINTS = {"styletalker": ASSETS / "styletalker_v1.pt",
                       "generator": ASSETS / "generator_v1.pt", "encoder": ASSETS / "encoder_v1.pt"}
"""The shipped StyleTalker and the 64 px generator and encoder it was trained on (data card:
``styletalker_v1.json`` beside them)."""
BATCH = 32
"""Frames per generator / encoder call."""


@dataclass
class StyleTalkerModels:
    model: StyleTalker
    generator: Generator
    encoder: Encoder

    def __post_init__(self) -> None:
        g, c = self.generator.config, self.model.config
        if (g.w_dim, g.n_latents) != (c.w_dim, c.n_latents) or self.encoder.config.n_latents != g.n_latents:
            raise ValueError("StyleTalker, generator and encoder were not trained together (W+ shapes differ)")


def load_models(paths: dict[str, str | Path] | None = None) -> StyleTalkerModels:
    """The models of ``paths`` (keys "styletalker", "generator", "encoder"; missing ones: the shipped ones)."""
    paths = {**DEFAULT_CHECKPOINTS, **(paths or {})}
    if paths == DEFAULT_CHECKPOINTS:
        return default_models()
    return StyleTalkerModels(StyleTalker.load(paths["styletalker"]), Generator.load(paths["generator"]),
                             Encoder.load(paths["encoder"]))


@lru_cache(maxsize=1)
def default_models() -> StyleTalkerModels:
    return StyleTalkerModels(*(cls.load(DEFAULT_CHECKPOINTS[k]) for cls, k in
                               ((StyleTalker, "styletalker"), (Generator, "generator"), (Encoder, "encoder"))))


@torch.no_grad()
def encode_crops(encoder: Encoder, crops: np.ndarray) -> torch.Tensor:
    """W+ codes (N, L, w_dim) of aligned face crops (N, S, S, 3) uint8 of any size."""
    size = encoder.config.size
    codes = []
    for s in range(0, len(crops), BATCH):
        batch = [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops[s:s + BATCH]]
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 127.5 - 1
        codes.append(encoder(x))
    return torch.cat(codes)


@torch.no_grad()
def render_codes(generator: Generator, codes: torch.Tensor) -> np.ndarray:
    """Face crops (T, S, S, 3) uint8 of W+ codes (T, L, w_dim) (deterministic: no per-pixel noise)."""
    out = []
    for s in range(0, len(codes), BATCH):
        images, _ = generator(codes[s:s + BATCH], noise="none")
        out.append(((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, generator.config.size, generator.config.size, 3), np.uint8)


@torch.no_grad()
def styletalker_codes(models: StyleTalkerModels, w_ref: torch.Tensor, mels: np.ndarray, *, seed: int = 0,
                      temperature: float = 1.0, motion: tuple[torch.Tensor, np.ndarray] | None = None
                      ) -> torch.Tensor:
    """W+ codes (T, L, w_dim) of T frames at 25 fps for a reference code w_ref (L, w_dim) and the speech's mel
    windows (T, 16, 80).

    Audio-driven (``motion`` None): motion latents sampled from the prior (``seed``, ``temperature``).
    Motion-controllable: ``motion`` = (the codes (M, L, w_dim) of a motion video at 25 fps, its mel windows
    (M, 16, 80)); its posterior motion latents (from its first frame as reference) drive our face, looped
    back and forth when shorter than the speech."""
    model = models.model.eval()
    mel = torch.from_numpy(mels).float()[None]
    if motion is None:
        gen = torch.Generator().manual_seed(seed)
        return model.generate(w_ref[None], mel, temperature=temperature, generator=gen)[0]
    codes, motion_mels = motion
    z = model.motion_latents(codes[None], codes[:1], torch.from_numpy(motion_mels).float()[None])[0]
    order = frame_indices(len(mels), DATA_FPS, len(z), DATA_FPS)
    return model.drive(z[order][None], w_ref[None], mel)[0]
