"""Running StyleTalker: a face crop and speech -> W+ codes of every frame -> face crops from the generator.

StyleTalker works at :data:`~talkinghead.data.clip.DATA_FPS` (its training rate) on aligned face crops (the crops
of preprocessing, resized to the generator's size); the pipeline in :mod:`talkinghead.api` cuts the crop from
the photo and pastes the generated crops back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from talkinghead.data.clip import DATA_FPS
from talkinghead.errors import TalkingHeadError
from talkinghead.io.video import frame_indices
from talkinghead.motion.styletalker.model import StyleTalker
from talkinghead.render.stylegan.invert import invert
from talkinghead.render.stylegan.model import Encoder, Generator

ROLES = ("styletalker", "generator", "encoder")
"""The checkpoints StyleTalker runs with (``generate(checkpoints=...)`` keys)."""
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
            raise TalkingHeadError("the StyleTalker, generator and encoder checkpoints were not trained together "
                                   "(their W+ shapes differ)")


def check_paths(paths: dict[str, str | Path]) -> None:
    """No StyleTalker weights ship with the package (a usable generator needs hours of GPU training, see the
    README): all of :data:`ROLES` must be given."""
    if missing := [r for r in ROLES if r not in paths]:
        raise TalkingHeadError(
            f"styletalker needs trained models (missing: {', '.join(missing)}); none ship with the package: train "
            "them with talkinghead train-stylegan and train-styletalker, then pass --stylegan DIR "
            "--styletalker-checkpoint FILE")


def load_models(paths: dict[str, str | Path]) -> StyleTalkerModels:
    """The models of ``paths`` (keys :data:`ROLES`, see :func:`check_paths`)."""
    check_paths(paths)
    return StyleTalkerModels(StyleTalker.load(paths["styletalker"]), Generator.load(paths["generator"]),
                             Encoder.load(paths["encoder"]))


def crops_tensor(crops: np.ndarray, size: int) -> torch.Tensor:
    """Aligned face crops (N, S, S, 3) uint8 of any size -> (N, 3, size, size) float in [-1, 1]."""
    resized = [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def encode_crops(encoder: Encoder, crops: np.ndarray) -> torch.Tensor:
    """W+ codes (N, L, w_dim) of aligned face crops (N, S, S, 3) uint8 of any size (the encoder alone)."""
    codes = [encoder(crops_tensor(crops[s:s + BATCH], encoder.config.size)) for s in range(0, len(crops), BATCH)]
    return torch.cat(codes)


def reference_code(models: StyleTalkerModels, crop: np.ndarray, *, steps: int = 0) -> torch.Tensor:
    """The W+ code (L, w_dim) of the photo's face crop (S, S, 3) uint8: the encoder's, refined by ``steps`` of
    optimisation (:func:`talkinghead.render.stylegan.invert.invert`)."""
    image = crops_tensor(crop[None], models.generator.config.size)
    return invert(models.generator, models.encoder, image, steps=steps)[0]


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
