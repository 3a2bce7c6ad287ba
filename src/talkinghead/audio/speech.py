"""The speech a learned model reads, per video frame, by kind (one switch shared by the models' configs):

- ``mel``: the IP_LAP / Wav2Lip log-mel window of each frame, (16, 80) (0.2 s at 80 frames/s);
- ``phones``: one-hot phones of the frame and the :data:`CONTEXT` frames either side, (2 CONTEXT + 1, len(PHONES));
- ``whisper``: Whisper tiny.en encoder features (CTranslate2's last layer) of the frame and its neighbours,
  (2 CONTEXT + 1, 384);
- ``whisper3``: the same window of the encoder's third block, the output the default engine's speech map reads
  (:mod:`talkinghead.audio.whisper_encoder`; it predicts a new speaker's lip gap better than the last layer).

Mel spectrograms and phone one-hots are learned from scratch on minutes of data and carry poorly to new speakers;
Whisper's encoder was trained on 680k hours (``benchmarks/speech_probe.py`` measures how well each predicts a new
speaker's mouth opening).
"""

from __future__ import annotations

import numpy as np

from talkinghead.audio.mel import IPLAP, mel_spectrogram, mel_windows
from talkinghead.audio.phonemes import PHONES, PhonemeTimeline, phoneme_timeline
from talkinghead.audio.posteriorgram import WHISPER_DIM
from talkinghead.audio.whisper_encoder import KIND_BLOCKS, kind_features
from talkinghead.constants import DATA_FPS

SPEECH_INPUTS = ("mel", "phones", *KIND_BLOCKS)
CONTEXT = 2
"""Frames either side of each frame in the ``phones`` and ``whisper`` inputs (0.2 s in all at 25 fps, as a mel
window)."""


def input_shape(kind: str) -> tuple[int, int]:
    """The per-frame input shape of a kind (see the module docstring)."""
    if kind == "mel":
        return (16, 80)
    if kind == "phones":
        return (2 * CONTEXT + 1, len(PHONES))
    if kind in KIND_BLOCKS:
        return (2 * CONTEXT + 1, WHISPER_DIM)
    raise ValueError(f"speech input must be one of {', '.join(SPEECH_INPUTS)}, not {kind!r}")


def frame_dim(kind: str) -> int:
    """The length of a kind's :func:`frame_vectors` row."""
    shape = input_shape(kind)
    return shape[0] * shape[1] if kind == "mel" else shape[1]


def around(x: np.ndarray, w: int, start: int = 0, length: int | None = None) -> np.ndarray:
    """(T, D) per-frame rows -> (length, 2w + 1, D) of the same dtype: each of the frames ``start .. start + length``
    (default: all) with the ``w`` frames before and after it (the edge frames repeated past the ends)."""
    length = len(x) - start if length is None else length
    lo, hi = max(0, start - w), min(len(x), start + length + w)
    padded = np.pad(x[lo:hi], ((w, w), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1, axis=0).transpose(0, 2, 1)
    return windows[start - lo:start - lo + length].copy()


def mel_inputs(audio: np.ndarray, *, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames, 16, 80) IP_LAP log-mel windows of 16 kHz speech for a video at ``fps`` (Wav2Lip indexing)."""
    return mel_windows(mel_spectrogram(audio, IPLAP), IPLAP, fps=fps, n_frames=n_frames)


def frame_vectors(kind: str, *, audio: np.ndarray, phone_ids: np.ndarray, fps: float, n_frames: int,
                  whisper: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, frame_dim(kind)) float32, one row per frame: its log-mel window flattened (``mel``), its phone
    one-hot (``phones``) or its Whisper features (``whisper``, ``whisper3``); arguments as :func:`speech_inputs`."""
    input_shape(kind)
    if kind == "mel":
        return mel_inputs(audio, fps=fps, n_frames=n_frames).reshape(n_frames, -1).astype(np.float32, copy=False)
    if kind == "phones":
        return np.eye(len(PHONES), dtype=np.float32)[phone_ids[:n_frames]]
    if whisper is None:
        whisper = kind_features(kind, audio, fps=fps, n_frames=n_frames)
    return whisper.astype(np.float32, copy=False)


def speech_inputs(kind: str, *, audio: np.ndarray, phone_ids: np.ndarray, fps: float, n_frames: int,
                  whisper: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, *input_shape(kind)) float32 inputs of one utterance.

    Args:
        audio: (N,) float32 16 kHz speech.
        phone_ids: (n_frames,) phone index of each frame.
        whisper: its Whisper features of the kind (n_frames, 384) when already computed.
    """
    return inputs_of(kind, frame_vectors(kind, audio=audio, phone_ids=phone_ids, fps=fps, n_frames=n_frames,
                                         whisper=whisper))


def inputs_of(kind: str, rows: np.ndarray) -> np.ndarray:
    """:func:`speech_inputs` from the utterance's :func:`frame_vectors` ``rows``."""
    return rows.reshape(len(rows), *input_shape(kind)) if kind == "mel" else around(rows, CONTEXT)


def speech_at(kind: str, audio: np.ndarray, n_frames: int, *, timeline: PhonemeTimeline | None = None,
              whisper: np.ndarray | None = None) -> np.ndarray:
    """:func:`speech_inputs` of ``n_frames`` frames at 25 fps of 16 kHz speech; ``phones`` reads ``timeline`` (the
    speech analysis's; the speech is analysed now when it is not given), the Whisper kinds ``whisper`` when given
    (:meth:`talkinghead.audio.features.AudioFeatures.whisper_of`; computed now when not)."""
    ids = np.zeros(n_frames, np.int64)
    if kind == "phones":
        ids = (timeline or phoneme_timeline(audio)).frame_ids(fps=DATA_FPS, n_frames=n_frames)
    return speech_inputs(kind, audio=audio, phone_ids=ids, fps=DATA_FPS, n_frames=n_frames, whisper=whisper)
