"""Running StyleTalk: a style clip's expression coefficients (+ head motion) -> style code; speech (phonemes or
Whisper features, as the model was trained) + style code -> expression coefficients of every output frame."""

from __future__ import annotations

import numpy as np
import torch

from talkinghead.audio.features import AudioFeatures
from talkinghead.audio.speech import frame_vectors
from talkinghead.constants import DATA_FPS
from talkinghead.face.pose import with_head_motion
from talkinghead.io.video import frame_count
from talkinghead.motion.styleclip import resample
from talkinghead.motion.styletalk.model import StyleTalk, content_inputs


def style_frames(model: StyleTalk, expression: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(L, style width) style-encoder input of a style clip's (L, K) expression coefficients and (L, 3, 3) head
    rotations (its first ``max_style_frames`` frames)."""
    n = model.config.max_style_frames
    if model.config.style_head_motion:
        return with_head_motion(expression[:n], rotations[:n])
    return expression[:n].astype(np.float32)


@torch.no_grad()
def style_code(model: StyleTalk, style: np.ndarray | None, *, intensity: float = 1.0) -> torch.Tensor:
    """(D,) style code of a style clip's :func:`style_frames` (None: the neutral style), scaled by
    ``intensity``."""
    if style is None:
        return model.neutral_style.clone()
    code = model.encode_style(torch.from_numpy(style).float()[None])[0]
    return model.scaled_style(code, intensity)


@torch.no_grad()
def styletalk_expression(model: StyleTalk, features: AudioFeatures, code: torch.Tensor, *, chunk: int = 512
                         ) -> np.ndarray:
    """(T, K) expression coefficients of the T output frames: StyleTalk runs at 25 fps on the phone timeline,
    then the coefficients are resampled to the output frame rate. Their mean over the output is removed, as
    :func:`talkinghead.motion.vast.infer.vast_expression` removes VAST's (the shipped model's first two
    coefficients averaged 0.4 to 0.8 of their spread away from zero on every `talking/` clip)."""
    n25 = frame_count(features.duration, DATA_FPS)
    ids = features.phonemes.frame_ids(fps=DATA_FPS, n_frames=n25)
    kind = model.config.speech
    rows = None if kind == "phones" else \
        frame_vectors(kind, audio=features.audio, phone_ids=ids, fps=DATA_FPS, n_frames=n25,
                      whisper=features.whisper_of(kind, fps=DATA_FPS, n_frames=n25))
    out = resample(decode_frames(model, ids, rows, code, chunk=chunk), features.n_frames)
    return out - out.mean(0)


@torch.no_grad()
def decode_frames(model: StyleTalk, phone_ids: np.ndarray, rows: np.ndarray | None, code: torch.Tensor, *,
                  chunk: int = 512) -> np.ndarray:
    """(N, K) expression coefficients of N frames at 25 fps from their (N,) phone ids and, unless the model reads
    phones, (N, S) frame rows of its speech kind, decoded with style ``code`` in chunks of ``chunk`` frames."""
    n = len(phone_ids)
    return np.concatenate([model.decode(torch.from_numpy(content_inputs(
        model.config, phone_ids, rows, s, min(chunk, n - s)))[None], code[None])[0].numpy() for s in range(0, n, chunk)])
