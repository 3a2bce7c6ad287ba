"""Running StyleTalker: a face crop and speech -> W+ codes of every frame -> face crops from the generator.

StyleTalker works at :data:`~talkinghead.data.clip.DATA_FPS` (its training rate) on aligned face crops (the crops
of preprocessing, resized to the generator's size); the pipeline in :mod:`talkinghead.api` cuts the crop from
the photo and pastes the generated crops back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talkinghead.constants import DATA_FPS
from talkinghead.errors import TalkingHeadError
from talkinghead.io.video import frame_indices
from talkinghead.motion.styletalker.model import StyleTalker
from talkinghead.render.stylegan.model import Encoder, Generator


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


def load_models(paths: dict[str, str | Path]) -> StyleTalkerModels:
    """The models of ``paths`` (keys: the method, the generator and the encoder; the shipped ones when absent)."""
    return StyleTalkerModels(StyleTalker.load(paths["styletalker"]) if "styletalker" in paths else StyleTalker.default(),
                             Generator.load(paths["generator"]) if "generator" in paths else Generator.default(),
                             Encoder.load(paths["encoder"]) if "encoder" in paths else Encoder.default())


@torch.no_grad()
def styletalker_codes(models: StyleTalkerModels, w_ref: torch.Tensor, speech: np.ndarray, *, seed: int = 0,
                      temperature: float = 1.0, motion: tuple[torch.Tensor, np.ndarray] | None = None,
                      mouth_scale: float = 1.0) -> torch.Tensor:
    """W+ codes (T, L, w_dim) of T frames at 25 fps for a reference code w_ref (L, w_dim) and the speech's inputs
    (T, ...) (:func:`talkinghead.audio.speech.speech_at` of the model's ``config.speech``). ``mouth_scale``
    multiplies the model's ``mouth_gain`` (``--expression-scale``; a model without a mouth direction takes 1 only).

    Audio-driven (``motion`` None): motion latents sampled from the prior (``seed``, ``temperature``).
    Motion-controllable: ``motion`` = (the codes (M, L, w_dim) of a motion video at 25 fps, its speech inputs
    (M, ...)); its posterior motion latents drive our face, looped back and forth when shorter than the speech."""
    model = models.model.eval()
    if mouth_scale != 1.0 and not model.config.stores_mouth_direction:
        raise TalkingHeadError("this StyleTalker checkpoint stores no mouth direction (it was trained with "
                               "--mouth-gain 1), so it cannot scale the mouth: leave --expression-scale at 1")
    gain = model.config.mouth_gain * mouth_scale
    inputs = torch.from_numpy(speech).float()[None]
    if motion is None:
        gen = torch.Generator().manual_seed(seed)
        return model.generate(w_ref[None], inputs, temperature=temperature, generator=gen, mouth_gain=gain)[0]
    codes, motion_speech = motion
    z = model.motion_latents(codes[None], torch.from_numpy(motion_speech).float()[None])[0]
    order = frame_indices(len(speech), DATA_FPS, len(z), DATA_FPS)
    return model.drive(z[order][None], w_ref[None], inputs, mouth_gain=gain)[0]
