"""The viseme engine on speech that arrives in pieces (voice agents, live input)."""

from __future__ import annotations

import math

import numpy as np

from talkinghead.audio.features import frame_count
from talkinghead.audio.phonemes import PhoneStream
from talkinghead.audio.vad import loudness, voice_activity
from talkinghead.constants import SAMPLE_RATE
from talkinghead.face.motion import FaceMotion
from talkinghead.motion.viseme.config import VisemeConfig
from talkinghead.motion.viseme.infer import assemble_motion, blinks, shape_mouth
from talkinghead.motion.viseme.model import HeadNoise, VisemeCalibration, articulation, default_calibration, head_track

PHONE_REACH = 1.0
"""Seconds before the first new frame from which phones are still read: beyond a phone's dominance reach
(10 decay times, at most 0.6 s), so the mouth is exactly what the whole timeline would give."""


class VisemeStream:
    """Push audio as it arrives; get the motion of the frames that became ready.

    Frame t (showing the sound of [t/fps, (t+1)/fps)) is ready once the audio reaches ``lookahead`` seconds
    past its end. The calibration's lag (the mouth shows each sound that much before it is heard) comes out of that
    wait: phone recognition and coarticulation see ``lookahead - lag`` past the sound the frame shows (none when the
    lag is the longer, and then the frame waits for the lag).
    Loudness, voice activity and the head-motion energy are measured over the last ``history`` seconds.

    Differences from :func:`talkinghead.motion.viseme.infer.viseme_motion` on the whole utterance:
    phones are recognised without a transcript (pocketsphinx allphone, as ``language="other"``, decoding
    incrementally); a pause whose end is not heard within the lookahead closes the mouth
    (the whole-utterance engine keeps parted lips in pauses up to ``closed_pause``); the loudness reference is the
    recent speech's; head motion is not re-centred on its mean. Blinks and head noise are the same as the
    whole-utterance engine's for the same seed.

    Args:
        reference: (478, 3) pose-free mesh of the face photo.
        fps: video frame rate.
        config: options (defaults: :class:`VisemeConfig`).
        calibration: mouth shapes (default: the shipped calibration).
        lookahead: seconds of audio past a frame before it is produced, the lag included (latency against quality).
        history: seconds of past audio kept for loudness, voice activity and head energy.
    """

    def __init__(self, reference: np.ndarray, *, fps: float, config: VisemeConfig | None = None,
                 calibration: VisemeCalibration | None = None, lookahead: float = 0.15, history: float = 2.0) -> None:
        self.fps = fps
        self.config = config or VisemeConfig()
        self.calibration = calibration or default_calibration()
        self.lookahead, self.history = lookahead, history
        self._refs = reference[None]
        self._phones = PhoneStream()
        self._blinks = blinks(self.config)
        self._noise = HeadNoise(self.config.seed, fps)
        self._audio = np.zeros(0, np.float32)
        self._audio_start = 0  # sample index of self._audio[0]
        self.samples = 0
        """Audio samples pushed so far."""
        self.frames = 0
        """Frames produced so far."""

    def push(self, audio: np.ndarray) -> FaceMotion:
        """Add (N,) float32 mono audio at :data:`SAMPLE_RATE`; returns the motion of the frames now ready
        (possibly none), continuing the frames returned before."""
        self._audio = np.concatenate([self._audio, audio.astype(np.float32, copy=False)])
        self.samples += audio.size
        self._phones.push(audio)
        ahead = self.samples / SAMPLE_RATE - max(self.lookahead, self.calibration.lag)
        return self._emit(max(self.frames, math.floor(ahead * self.fps + 1e-9)))

    def close(self) -> FaceMotion:
        """The audio has ended: the motion of the remaining frames (the video covers all the audio)."""
        self._phones.close()
        return self._emit(frame_count(self.samples, self.fps))

    def _emit(self, stop: int) -> FaceMotion:
        start, fps, config = self.frames, self.fps, self.config
        n = stop - start
        if n == 0:
            return assemble_motion(self._refs, np.zeros((0, 5)), np.zeros(0), np.zeros((0, 3)), fps=fps,
                                   config=config, calibration=self.calibration)
        first = max(0, start - int(self.history * fps))  # the window of frames whose audio is measured
        offset = round(first / fps * SAMPLE_RATE) - self._audio_start
        audio = self._audio[offset:]
        heard = max(stop, math.floor(self.samples / SAMPLE_RATE * fps))  # frames whose audio is all here
        level = loudness(audio, fps=fps, n_frames=heard - first)
        voiced = voice_activity(audio, fps=fps, n_frames=heard - first)
        timeline = self._phones.timeline(since=start / fps + self.calibration.lag - PHONE_REACH)
        deltas = articulation(timeline, self.calibration.targets, fps=fps, n_frames=stop,
                              lag=self.calibration.lag, start=start)
        mouth = shape_mouth(deltas, level, voiced, fps=fps, config=config, ahead=heard - stop)
        level, voiced = level[:stop - first], voiced[:stop - first]
        blink = self._blinks.curve(fps, start, stop) if config.blink else np.zeros(n)
        head = np.zeros((n, 3))
        if config.head_motion:
            head = head_track(level, voiced, fps, self._noise.window(first, stop),
                              amplitude_deg=config.head_amplitude_deg, idle_fraction=config.head_idle_fraction)[-n:]
        self.frames = stop
        keep = round(max(0, stop - int(self.history * fps)) / fps * SAMPLE_RATE)  # the next window's start
        self._audio = self._audio[keep - self._audio_start:]
        self._audio_start = keep
        return assemble_motion(self._refs, mouth, blink, head, fps=fps, config=config, calibration=self.calibration)
