"""Log-mel spectrograms with the seed papers' settings, and their resampling to video frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkinghead.constants import SAMPLE_RATE


@dataclass(frozen=True)
class MelConfig:
    """STFT + mel filterbank settings (all at :data:`SAMPLE_RATE`)."""

    name: str
    n_fft: int
    hop: int
    win: int
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None
    preemphasis: float = 0.0
    wav2lip_norm: bool = False
    """Wav2Lip/IP_LAP normalisation: 20*log10 amplitude, -100 dB floor, scaled to [-4, 4]."""

    @property
    def rate(self) -> float:
        """Mel frames per second."""
        return SAMPLE_RATE / self.hop


STYLETALKER = MelConfig("styletalker", n_fft=512, hop=160, win=400)
"""StyleTalker: 16 kHz, n_fft 512, hop 160 (100 frames/s), window 400, 80 mels."""
IPLAP = MelConfig("iplap", n_fft=800, hop=200, win=800, fmin=55.0, fmax=7600.0, preemphasis=0.97, wav2lip_norm=True)
"""IP_LAP / Wav2Lip: 16 kHz, n_fft 800, hop 200 (80 frames/s), window 800, 80 mels, 55-7600 Hz."""
MEL_CONFIGS = {c.name: c for c in (STYLETALKER, IPLAP)}

WINDOW_FRAMES = 16
"""Mel frames per video frame window in IP_LAP / Wav2Lip (0.2 s at 80 frames/s)."""


def mel_spectrogram(audio: np.ndarray, config: MelConfig) -> np.ndarray:
    """Log-mel spectrogram.

    Args:
        audio: (N,) float32 at :data:`SAMPLE_RATE`.
        config: one of :data:`MEL_CONFIGS`.

    Returns:
        (F, n_mels) float32 at ``config.rate`` frames per second: natural-log mel power
        (``wav2lip_norm``: Wav2Lip's dB scaling to [-4, 4]).
    """
    import librosa

    x = audio.astype(np.float32)
    if config.preemphasis:
        x = np.append(x[0], x[1:] - config.preemphasis * x[:-1]).astype(np.float32)
    spec = np.abs(librosa.stft(x, n_fft=config.n_fft, hop_length=config.hop, win_length=config.win))
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=config.n_fft, n_mels=config.n_mels,
                                fmin=config.fmin, fmax=config.fmax)
    mel = basis @ spec
    if config.wav2lip_norm:
        db = 20 * np.log10(np.maximum(1e-5, mel)) - 20.0
        out = np.clip(8.0 * ((db + 100.0) / 100.0) - 4.0, -4.0, 4.0)
    else:
        out = np.log(np.maximum(1e-5, mel**2))
    return out.T.astype(np.float32)


def mel_per_frame(mel: np.ndarray, config: MelConfig, *, fps: float, n_frames: int) -> np.ndarray:
    """Average the mel frames falling in each video frame: (n_frames, n_mels) float32 at ``fps``."""
    edges = np.round(np.arange(n_frames + 1) / fps * config.rate).astype(int)
    edges = np.clip(edges, 0, len(mel))
    out = np.empty((n_frames, mel.shape[1]), np.float32)
    for i in range(n_frames):
        a, b = edges[i], max(edges[i + 1], edges[i] + 1)
        out[i] = mel[min(a, len(mel) - 1):min(b, len(mel))].mean(0)
    return out


def mel_windows(mel: np.ndarray, config: MelConfig, *, fps: float, n_frames: int, first: int = 0,
                window: int = WINDOW_FRAMES) -> np.ndarray:
    """Wav2Lip-style windows: frame i (``first`` .. ``first + n_frames - 1``) gets ``window`` mel frames
    starting at ``int(rate * i / fps)``.

    Returns:
        (n_frames, window, n_mels) float32; windows running past the end repeat the last frame.
    """
    padded = np.concatenate([mel, np.repeat(mel[-1:], window, axis=0)])
    starts = (np.arange(first, first + n_frames) * config.rate / fps).astype(int)
    starts = np.minimum(starts, len(mel) - 1)
    return padded[starts[:, None] + np.arange(window)[None, :]]
