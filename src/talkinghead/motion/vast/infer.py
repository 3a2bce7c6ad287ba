"""Running VAST: a style clip (expression coefficients + speech features) -> style vector z; speech features +
z -> expression coefficients of every output frame."""

from __future__ import annotations

import numpy as np
import torch

from talkinghead.audio.features import AudioFeatures
from talkinghead.audio.posteriorgram import speech_features
from talkinghead.constants import DATA_FPS
from talkinghead.face.model import default_face_model
from talkinghead.io.video import frame_count
from talkinghead.motion.styleclip import resample
from talkinghead.motion.vast.model import Vast


@torch.no_grad()
def vast_style(model: Vast, coefficients: np.ndarray | None, speech: np.ndarray | None, *, sample: bool = False,
               seed: int = 0) -> torch.Tensor:
    """(Z,) style vector of a style clip's (L, K) coefficients and (L, S) speech features at 25 fps: the posterior
    mean, or with ``sample`` a draw from the posterior (seeded). None: the mean of the learned prior."""
    if coefficients is None or speech is None:
        if not model.config.enhancer:
            raise ValueError("this VAST model has no style enhancer (no prior): give a style clip")
        return model.enhancer.prior_mu.detach().clone()
    coeffs = torch.from_numpy(coefficients[:, :model.config.n_expression]).float()[None]
    generator = torch.Generator().manual_seed(seed) if sample else None
    return model.style(coeffs, torch.from_numpy(speech).float()[None], sample=sample, generator=generator)[0][0]


@torch.no_grad()
def vast_expression(model: Vast, features: AudioFeatures, z: torch.Tensor) -> np.ndarray:
    """(T, K) expression coefficients of the T output frames: VAST runs at 25 fps on the speech features, then the
    coefficients are resampled to the output frame rate. Their mean over the output is removed: training
    coefficients are offsets from each clip's mean shape, so they average zero over every clip, and a mean offset
    is an error of the model, not a style (on `talking/`'s `videoretalking_face1` it held the lips shut). The
    lower-face coefficients are then multiplied by the model's ``mouth_gain``."""
    n25 = frame_count(features.duration, DATA_FPS)
    kind = model.config.speech
    speech = speech_features(kind, audio=features.audio, timeline=features.phonemes, fps=DATA_FPS, n_frames=n25,
                             whisper=features.whisper_of(kind, fps=DATA_FPS, n_frames=n25))
    out = model.generate(torch.from_numpy(speech).float()[None], z[None])[0].numpy()
    out = resample(out, features.n_frames)
    out = out - out.mean(0)
    out[:, default_face_model().lower_face[:model.config.n_expression]] *= model.config.mouth_gain
    return out
