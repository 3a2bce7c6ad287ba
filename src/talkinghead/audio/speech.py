"""The speech a learned model reads, per video frame, by kind (one switch shared by the models' configs):

- ``mel``: the IP_LAP / Wav2Lip log-mel window of each frame, (16, 80) (0.2 s at 80 frames/s);
- ``phones``: one-hot phones of the frame and the :data:`CONTEXT` frames either side, (2 CONTEXT + 1, len(PHONES));
- ``whisper``: Whisper tiny.en encoder features of the frame and its neighbours, (2 CONTEXT + 1, 384).

Mel spectrograms and phone one-hots are learned from scratch on minutes of data and carry poorly to new speakers;
Whisper's encoder was trained on 680k hours (``benchmarks/speech_probe.py`` measures how well each predicts a new
speaker's mouth opening).
"""

from __future__ import annotations

import numpy as np

from talkinghead.audio.mel import IPLAP, mel_spectrogram, mel_windows
from talkinghead.audio.phonemes import PHONES
from talkinghead.audio.posteriorgram import WHISPER_DIM, whisper_features
from talkinghead.audio.speechmap import stack_window

SPEECH_INPUTS = ("mel", "phones", "whisper")
CONTEXT = 2
"""Frames either side of each frame in the ``phones`` and ``whisper`` inputs (0.2 s in all at 25 fps, as a mel
window)."""


def input_shape(kind: str) -> tuple[int, int]:
    """The per-frame input shape of a kind (see the module docstring)."""
    if kind == "mel":
        return (16, 80)
    if kind == "phones":
        return (2 * CONTEXT + 1, len(PHONES))
    if kind == "whisper":
        return (2 * CONTEXT + 1, WHISPER_DIM)
    raise ValueError(f"speech input must be one of {', '.join(SPEECH_INPUTS)}, not {kind!r}")


def _windows(x: np.ndarray) -> np.ndarray:
    """(T, D) -> (T, 2 CONTEXT + 1, D) float32."""
    return stack_window(x, CONTEXT).reshape(len(x), 2 * CONTEXT + 1, -1).astype(np.float32)


def speech_inputs(kind: str, *, audio: np.ndarray, phone_ids: np.ndarray, fps: float, n_frames: int,
                  whisper: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, *input_shape(kind)) float32 inputs of one utterance.

    Args:
        audio: (N,) float32 16 kHz speech.
        phone_ids: (n_frames,) phone index of each frame.
        whisper: its Whisper features (n_frames, 384) when already computed.
    """
    input_shape(kind)
    if kind == "mel":
        return mel_windows(mel_spectrogram(audio, IPLAP), IPLAP, fps=fps, n_frames=n_frames)
    if kind == "phones":
        return _windows(np.eye(len(PHONES), dtype=np.float32)[phone_ids[:n_frames]])
    if whisper is None:
        whisper = whisper_features(audio, fps=fps, n_frames=n_frames)
    return _windows(whisper)
