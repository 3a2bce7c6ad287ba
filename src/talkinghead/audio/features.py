"""All per-frame audio analysis bundled at the video frame rate."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from talkinghead.audio import phonemes
from talkinghead.audio.phonemes import PhonemeTimeline, phoneme_timeline
from talkinghead.audio.vad import loudness, voice_activity
from talkinghead.audio.whisper_encoder import KIND_BLOCKS, SPEECH_MAP_BLOCK, kind_features, whisper_block_features
from talkinghead.constants import SAMPLE_RATE
from talkinghead.threads import Background


@dataclass
class AudioFeatures:
    """Speech analysed for T video frames at ``fps``.

    Attributes:
        audio: (N,) float32 mono samples at :data:`SAMPLE_RATE`.
        fps: video frame rate.
        n_frames: T = ceil(duration * fps), so the video covers the whole audio.
        phonemes: the phone timeline (seconds).
        phone_ids: (T,) int64 index into ``PHONES`` at each frame centre.
        loudness_db: (T,) float32 RMS level in dBFS of a 40 ms window at each frame centre.
        voiced: (T,) bool voice activity.
        whisper: (T, 384) float32 Whisper tiny.en encoder features, the output of the block the default engine's
            speech map reads (:func:`talkinghead.audio.whisper_encoder.whisper_block_features` of
            :data:`~talkinghead.audio.whisper_encoder.SPEECH_MAP_BLOCK`), when the analysis was asked for them.
    """

    audio: np.ndarray
    fps: float
    n_frames: int
    phonemes: PhonemeTimeline
    phone_ids: np.ndarray
    loudness_db: np.ndarray
    voiced: np.ndarray
    whisper: np.ndarray | None = None

    @property
    def duration(self) -> float:
        """Audio duration in seconds."""
        return self.audio.size / SAMPLE_RATE

    def whisper_of(self, kind: str, *, fps: float, n_frames: int) -> np.ndarray | None:
        """(n_frames, 384) float32 features of a Whisper speech kind (a learned model's ``speech``) at ``fps``, or
        None for a kind that is not Whisper's: the analysis's own ``whisper`` when they are that block at that rate
        (computed while the speech was aligned), else computed now
        (:func:`~talkinghead.audio.whisper_encoder.kind_features`)."""
        if kind not in KIND_BLOCKS:
            return None
        if self.whisper is not None and KIND_BLOCKS[kind] == SPEECH_MAP_BLOCK and fps == self.fps \
                and n_frames == len(self.whisper):
            return self.whisper
        return kind_features(kind, self.audio, fps=fps, n_frames=n_frames)


def frame_count(n_samples: int, fps: float) -> int:
    """Video frames needed to cover ``n_samples`` audio samples at ``fps``."""
    return max(1, math.ceil(n_samples / SAMPLE_RATE * fps - 1e-6))


def analyse_audio(audio: np.ndarray, *, fps: float, language: str = "auto", transcript: str | None = None,
                  progress: Callable[[float], None] | None = None, whisper: bool = False) -> AudioFeatures:
    """Phonemes, loudness and voice activity of speech, per video frame.

    Args:
        audio: (N,) float32 mono at :data:`SAMPLE_RATE`.
        fps: video frame rate.
        language, transcript: see :func:`talkinghead.audio.phonemes.phoneme_timeline`.
        progress: called with the fraction done.
        whisper: also the speech map's Whisper encoder features (``AudioFeatures.whisper``). When Whisper
            transcribes, they are computed in a thread of their own from the moment it has finished, while the
            aligner works on the last chunks (on a laptop's two cores they then cost next to no time).
    """
    n = frame_count(audio.size, fps)
    encoding: list[Background[np.ndarray]] = []

    def map_features() -> np.ndarray:
        return whisper_block_features(audio, fps=fps, n_frames=n, block=SPEECH_MAP_BLOCK)

    def encode() -> None:  # in Whisper's thread, once it has transcribed the speech
        encoding.append(Background(map_features, name="talkinghead-whisper"))

    try:
        timeline = phoneme_timeline(audio, language=language, transcript=transcript, progress=progress,
                                    on_transcribed=encode if whisper else None)
    except BaseException:  # stopped: the encoder's native code must not run on into the interpreter's exit
        for started in encoding:
            with contextlib.suppress(BaseException):
                started.result()
        raise
    encoded = None
    if whisper:
        encoded = encoding[0].result()[0] if encoding else map_features()
    return features_from_timeline(audio, timeline, fps=fps, whisper=encoded)


def features_from_timeline(audio: np.ndarray, timeline: PhonemeTimeline, *, fps: float,
                           whisper: np.ndarray | None = None) -> AudioFeatures:
    """AudioFeatures of speech whose phone timeline is already known (e.g. exact espeak-ng times); ``whisper``:
    its Whisper encoder features when they were computed."""
    n = frame_count(audio.size, fps)
    return AudioFeatures(
        audio=audio,
        fps=fps,
        n_frames=n,
        phonemes=timeline,
        phone_ids=timeline.frame_ids(fps=fps, n_frames=n),
        loudness_db=loudness(audio, fps=fps, n_frames=n),
        voiced=voice_activity(audio, fps=fps, n_frames=n),
        whisper=whisper,
    )


def release_models() -> None:
    """Free the speech models of this process (Whisper about 200 MB while it works, the voice-activity model; the
    next analysis loads them again in about 0.5 s) and hand the freed heap back to the system, so that the rest of
    a one-off generation runs in less memory. pocketsphinx's models live in its own process
    (:class:`talkinghead.audio.phonemes._Decoders`), which stays, ready for the next analysis."""
    from faster_whisper.vad import get_vad_model

    for cached in (phonemes._whisper, get_vad_model):
        cached.cache_clear()
    gc.collect()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).malloc_trim(0)  # glibc keeps freed heap otherwise
