"""The viseme engine's model: calibrated per-phone mouth targets blended by coarticulation,
plus blink and head-motion generators. Pure numpy; nothing is trained by gradient descent."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_closing, gaussian_filter1d

from talkinghead.audio.phonemes import PHONE_INDEX, PHONES, PhonemeTimeline
from talkinghead.audio.speechmap import WindowRidge
from talkinghead.audio.whisper_encoder import encoder_features
from talkinghead.face.expression import MOUTH_FEATURES, ExpressionBasis
from talkinghead.motion.viseme.config import DOMINANCE, PHONES_CLOSED_PAUSE, VISEME_CLASSES

CALIBRATION_ASSET = "visemes_v5.npz"
"""v5: fitted on ../shared/media/train only, its speech map reading all 384 features of the output of Whisper's third
encoder block (no PCA), its choices made with p/b/m and f/v held as long as they sound (:func:`closure_hold`). In the
git history: v4, the same map on 192 principal components; v3, chosen with the older, longer hold; v2, reading
CTranslate2's last layer; v1, fitted on talking/ with phones only."""
SUBSAMPLES = 4
"""Sub-frame samples averaged per video frame so that phones shorter than a frame still count."""

PHONE_CLASS: dict[str, str] = {p: c for c, phones in VISEME_CLASSES.items() for p in phones}
CLOSING_CLASSES = ("closure", "lip_teeth")
"""Viseme classes whose lips the phone shapes alone decide (the speech map does not reopen them)."""


@dataclass
class SpeechMap:
    """The calibrated map from Whisper encoder features to mouth features, and how much of it the engine uses.

    Attributes:
        ridge: (T, 384) Whisper features at the video frame rate -> (T, 5) mouth-feature offsets from rest.
        blend: share of the map's shape in the output, 0 (phones only) .. 1, outside closures.
        gain: the measured lip gap's spread over the engine's output's on the calibration clips (out of fold,
            within each clip; 1 in a calibration written before it was measured). A ridge's predictions are
            shrunk toward the mean, so the blended mouth moves less than a real one; :meth:`mix` with this gain
            brings it to about a real speaker's range.
        closed_pause: pauses inside the speech at least this long (s) close the mouth where the map is used, chosen
            with the map (a calibration written before keeps :data:`PHONES_CLOSED_PAUSE`): in shorter ones the map
            says what the lips do.
        block: the Whisper encoder block whose output the map reads
            (:func:`talkinghead.audio.whisper_encoder.whisper_block_features`); None in a calibration written before
            ``visemes_v3``, whose map reads CTranslate2's last layer.
    """

    ridge: WindowRidge
    blend: float
    gain: float = 1.0
    closed_pause: float = PHONES_CLOSED_PAUSE
    block: int | None = None

    def features(self, audio: np.ndarray, *, fps: float, n_frames: int) -> np.ndarray:
        """(n_frames, 384) the Whisper features this map reads, of (N,) float32 16 kHz audio."""
        return encoder_features(audio, fps=fps, n_frames=n_frames, block=self.block)

    @staticmethod
    def mix(phone: np.ndarray, predicted: np.ndarray, hold: np.ndarray, blend: float, gain: float = 1.0
            ) -> np.ndarray:
        """(T, 5) phone shapes moved ``blend`` of the way to the predicted ones, except where the lips close for
        p/b/m or touch the teeth for f/v: there the phone shapes keep ``hold`` (T,) of the weight
        (:func:`closure_hold`). The result is scaled by ``gain`` in the same proportion (so closed lips stay as
        closed as the phone shapes make them)."""
        free = 1.0 - np.clip(hold, 0.0, 1.0)
        mixed = phone + (blend * free)[:, None] * (predicted - phone)
        return mixed * (1.0 + (gain - 1.0) * free)[:, None]


@dataclass
class VisemeCalibration:
    """Mouth shapes measured on real talking faces (see :mod:`talkinghead.motion.viseme.calibrate`).

    Attributes:
        targets: (len(PHONES), 5) float64 mouth-feature offsets from rest per phone (lip_gap is absolute).
        counts: (len(PHONES),) int64 phone samples measured.
        gap_direction: (5,) float64 how every feature moves per unit lip gap (regression on the data);
            used to find the closed-mouth rest shape of a reference with an open mouth.
        basis: mesh offsets per unit feature change ("articulation" basis, K = 5).
        lag: seconds by which mouth shapes lead the sound.
        card: provenance and fit figures.
        speech_map: the Whisper map blended into the phone shapes (None: phones only).
    """

    targets: np.ndarray
    counts: np.ndarray
    gap_direction: np.ndarray
    basis: ExpressionBasis
    lag: float
    card: dict
    speech_map: SpeechMap | None = None

    def mouth_deltas(self, timeline: PhonemeTimeline, *, fps: float, n_frames: int,
                     whisper: np.ndarray | None = None, spread: bool = False) -> np.ndarray:
        """(n_frames, 5) mouth-feature offsets from rest before loudness and pauses: the blended phone shapes,
        mixed with the speech map's prediction from ``whisper`` (n_frames, 384; the map's :meth:`SpeechMap.features`)
        when both are there, with ``spread`` at the map's :attr:`SpeechMap.gain`."""
        phone = articulation(timeline, self.targets, fps=fps, n_frames=n_frames, lag=self.lag)
        if self.speech_map is None or whisper is None:
            return phone
        hold = closure_hold(timeline, fps=fps, n_frames=n_frames, lag=self.lag)
        m = self.speech_map
        return SpeechMap.mix(phone, m.ridge.predict(whisper), hold, m.blend, m.gain if spread else 1.0)

    def save(self, path: str | Path) -> None:
        """Write the calibration as a compressed .npz (the card as JSON inside)."""
        m = self.speech_map
        extra = {} if m is None else {
            "map_mean": m.ridge.mean.astype(np.float32), "map_components": m.ridge.components.astype(np.float32),
            "map_scale": m.ridge.scale.astype(np.float32), "map_window": np.int64(m.ridge.window),
            "map_weights": m.ridge.weights.astype(np.float32), "map_blend": np.float64(m.blend),
            "map_gain": np.float64(m.gain), "map_centre": np.bool_(m.ridge.centre),
            "map_closed_pause": np.float64(m.closed_pause),
            **({} if m.block is None else {"map_block": np.int64(m.block)})}
        np.savez_compressed(
            path, targets=self.targets, counts=self.counts, gap_direction=self.gap_direction,
            components=self.basis.components.astype(np.float32), lag=np.float64(self.lag),
            card=np.array(json.dumps(self.card, indent=1)), phones=np.array(PHONES), **extra,
        )

    @classmethod
    def load(cls, path: str | Path) -> VisemeCalibration:
        """Read a calibration written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            if tuple(z["phones"].tolist()) != PHONES:
                raise ValueError(f"{path}: phone set does not match this version of talkinghead")
            card = json.loads(str(z["card"]))
            basis = ExpressionBasis(card.get("basis", "articulation"), MOUTH_FEATURES, z["components"])
            speech_map = None
            if "map_weights" in z:
                ridge = WindowRidge(z["map_mean"], z["map_components"], z["map_scale"], int(z["map_window"]),
                                    z["map_weights"], bool(z["map_centre"]) if "map_centre" in z else False)
                gain = float(z["map_gain"]) if "map_gain" in z else 1.0
                pause = float(z["map_closed_pause"]) if "map_closed_pause" in z else PHONES_CLOSED_PAUSE
                block = int(z["map_block"]) if "map_block" in z else None
                speech_map = SpeechMap(ridge, float(z["map_blend"]), gain, pause, block)
            return cls(z["targets"], z["counts"], z["gap_direction"], basis, float(z["lag"]), card, speech_map)


@lru_cache(maxsize=1)
def default_calibration() -> VisemeCalibration:
    """The calibration shipped with the package."""
    with resources.as_file(resources.files("talkinghead.motion.viseme").joinpath("assets", CALIBRATION_ASSET)) as p:
        return VisemeCalibration.load(p)


def articulation(timeline: PhonemeTimeline, targets: np.ndarray, *, fps: float, n_frames: int,
                 lag: float, start: int = 0) -> np.ndarray:
    """Blend per-phone mouth targets over time with dominance functions.

    Each phone i with span [s_i, e_i] has dominance alpha_i inside its span, decaying as
    exp(-distance / tau_i) outside it (:data:`DOMINANCE` per viseme class); the shape at time t is
    the dominance-weighted mean of all targets.

    Args:
        timeline: phones with times in seconds.
        targets: (len(PHONES), F) per-phone targets.
        lag: mouth lead in seconds (the shape shown at t is the one for the sound at t + lag).
        start: first frame wanted (a stream asks for the frames that became ready).

    Returns:
        (n_frames - start, F) float64, each frame the mean over :data:`SUBSAMPLES` sub-frame samples.
    """
    times = (np.arange(start * SUBSAMPLES, n_frames * SUBSAMPLES) + 0.5) / (fps * SUBSAMPLES) + lag
    num = np.zeros((times.size, targets.shape[1]))
    den = np.full(times.size, 1e-9)
    for phone, s, e in zip(timeline.phones, timeline.starts, timeline.ends):
        alpha, tau = DOMINANCE[PHONE_CLASS[phone]]
        lo, hi = np.searchsorted(times, [s - 10 * tau, e + 10 * tau])
        t = times[lo:hi]
        dist = np.maximum(0.0, np.maximum(s - t, t - e))
        dom = alpha * np.exp(-dist / tau)
        num[lo:hi] += dom[:, None] * targets[PHONE_INDEX[phone]]
        den[lo:hi] += dom
    # where no phone reaches (far outside the timeline) the mouth rests
    out = num / np.maximum(den, 1e-3)[:, None]
    return out.reshape(n_frames - start, SUBSAMPLES, -1).mean(1)


def closure_hold(timeline: PhonemeTimeline, *, fps: float, n_frames: int, lag: float) -> np.ndarray:
    """(n_frames,) 0..1: how much of each frame the phone shapes alone decide, where a phone closes the lips (p/b/m)
    or puts them to the teeth (f/v) (:data:`CLOSING_CLASSES`).

    For each such phone: the share of each frame's time that its span covers (frame k shows the sound of
    [k / fps + lag, (k + 1) / fps + lag]), divided by the largest share any frame has of that phone, so that the
    frame showing most of it is handed over wholly and the lips close on it however short the phone; the maximum
    over phones. A closure is held about as long as it sounds (a median p/b/m lasts 70 ms: two frames at 25 fps).
    """
    hold = np.zeros(n_frames)
    for phone, s, e in zip(timeline.phones, timeline.starts, timeline.ends):
        if PHONE_CLASS[phone] not in CLOSING_CLASSES:
            continue
        lo, hi = max(0, int(np.floor((s - lag) * fps))), min(n_frames, int(np.ceil((e - lag) * fps)))
        if hi <= lo:
            continue
        edges = np.arange(lo, hi + 1) / fps + lag
        cover = np.clip(np.minimum(edges[1:], e) - np.maximum(edges[:-1], s), 0.0, None)
        if cover.max() > 0:
            hold[lo:hi] = np.maximum(hold[lo:hi], cover / cover.max())
    return hold


def loudness_gain(loudness_db: np.ndarray, voiced: np.ndarray, *, exponent: float,
                  gain_range: tuple[float, float], fps: float, closed_pause: float) -> tuple[np.ndarray, np.ndarray]:
    """Opening amplitude from speech loudness, and a voice gate that closes the mouth in silence.

    The gain follows a slow (0.3 s) loudness envelope, so louder phrases open the mouth wider
    without fighting the phone-level shapes. Pauses shorter than ``closed_pause`` seconds are
    not gated: there the lips keep the measured shape of short pauses (usually parted).

    Returns:
        (gain, gate): (T,) float64 each. gain = (envelope RMS / median voiced RMS) ** exponent,
        clipped to ``gain_range``; gate is 1 in speech, fading to 0 over ~2 frames in longer silences.
    """
    width = max(1, int(round(closed_pause * fps)))
    speech = binary_closing(np.pad(voiced, width), structure=np.ones(width, bool))[width:-width]
    gate = np.clip(gaussian_filter1d(speech.astype(np.float64), sigma=max(0.04 * fps, 0.5)) * 2.0, 0.0, 1.0)
    if not voiced.any():
        return np.ones(len(voiced)), gate
    power = gaussian_filter1d(10 ** (loudness_db / 10.0), sigma=0.3 * fps)
    env_db = 10 * np.log10(np.maximum(power, 1e-10))
    ref = float(np.median(env_db[voiced]))
    gain = np.clip(10 ** ((env_db - ref) / 20 * exponent), *gain_range)
    return gain, gate


class Blinks:
    """Eye blinks at random intervals, drawn lazily: any stretch of frames can be asked for, in order or not,
    and a stream asking block by block gets exactly the curve of one call for the whole length.

    Args:
        rng: the only source of randomness (blink times and lengths are drawn from it in time order).
        interval: seconds between blink starts (uniform).
        duration: blink length in seconds (uniform).
    """

    def __init__(self, rng: np.random.Generator, *, interval: tuple[float, float],
                 duration: tuple[float, float]) -> None:
        self._rng, self._interval, self._duration = rng, interval, duration
        self._starts: list[float] = []
        self._lengths: list[float] = []
        self._next = float(rng.uniform(0.3, interval[0]))

    def curve(self, fps: float, start: int, stop: int) -> np.ndarray:
        """Eyelid closure of frames [start, stop): (stop - start,) float64 in [0, 1] (raised-cosine lid curve)."""
        while self._next < stop / fps:
            self._starts.append(self._next)
            self._lengths.append(float(self._rng.uniform(*self._duration)))
            self._next += float(self._rng.uniform(*self._interval))
        times = (np.arange(start * SUBSAMPLES, stop * SUBSAMPLES) + 0.5) / (fps * SUBSAMPLES)
        curve = np.zeros(times.size)
        first = bisect.bisect_left(self._starts, start / fps - self._duration[1])
        for t, d in zip(self._starts[first:], self._lengths[first:]):
            inside = (times >= t) & (times <= t + d)
            curve[inside] = 0.5 - 0.5 * np.cos(2 * np.pi * (times[inside] - t) / d)
        return curve.reshape(stop - start, SUBSAMPLES).max(1)


HEAD_SMOOTHING = (0.35, 0.5, 0.6)
"""Time scale (Gaussian sigma, seconds) of the random head motion about the pitch, yaw and roll axes."""
TRUNCATE = 4.0
"""Gaussian kernels reach this many sigmas (scipy's default)."""


class HeadNoise:
    """Smoothed random motion with unit variance per axis (pitch, yaw, roll), indexed by absolute frame: any
    window of frames equals the same frames of any longer window (white noise drawn lazily per axis from its own
    seeded generator, smoothed with every kernel tap inside the noise), so a stream gets the motion of one call.

    Args:
        seed: the noise's seed.
        fps: frame rate (the smoothing time scales are :data:`HEAD_SMOOTHING` seconds).
    """

    def __init__(self, seed: int, fps: float) -> None:
        self._sigmas = [s * fps for s in HEAD_SMOOTHING]
        self._pad = max(int(TRUNCATE * s + 0.5) for s in self._sigmas)
        self._rngs = [np.random.default_rng((seed, 1 + axis)) for axis in range(3)]
        self._white = np.zeros((0, 3))  # row i is frame i - pad
        self._norms = []
        for sigma in self._sigmas:  # std of unit white noise after the filter: the kernel's L2 norm
            delta = np.zeros(2 * self._pad + 1)
            delta[self._pad] = 1.0
            self._norms.append(float(np.linalg.norm(gaussian_filter1d(delta, sigma, truncate=TRUNCATE))))

    def window(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop): (stop - start, 3) float64, each axis mean 0 and variance 1 in expectation."""
        need = stop + 2 * self._pad
        if need > len(self._white):
            more = need - len(self._white) + 256
            self._white = np.concatenate([self._white, np.stack([r.standard_normal(more) for r in self._rngs], 1)])
        x = self._white[start:need]
        out = np.stack([gaussian_filter1d(x[:, a], s, truncate=TRUNCATE) / n
                        for a, (s, n) in enumerate(zip(self._sigmas, self._norms))], 1)
        return out[self._pad:self._pad + stop - start]


def head_track(loudness_db: np.ndarray, voiced: np.ndarray, fps: float, noise: np.ndarray, *,
               amplitude_deg: tuple[float, float, float], idle_fraction: float) -> np.ndarray:
    """Subtle head motion whose energy follows the speech energy.

    Random motion per axis (``noise``, e.g. :class:`HeadNoise`), scaled from ``idle_fraction`` (silence) to 1
    (loud speech), plus small nods (pitch) on rises of speech energy.

    Args:
        noise: (T, 3) unit-variance smoothed noise of the same frames.

    Returns:
        (T, 3) float64 (pitch, yaw, roll) radians, mean 0 in expectation.
    """
    ref = float(np.median(loudness_db[voiced])) if voiced.any() else float(np.max(loudness_db))
    energy = np.clip(10 ** ((loudness_db - ref) / 20), 0, 1.5) * voiced
    env = np.clip(gaussian_filter1d(energy, 0.4 * fps), 0, 1)
    scale = idle_fraction + (1 - idle_fraction) * env
    rot = np.deg2rad(np.asarray(amplitude_deg)) * scale[:, None] * noise
    onset = gaussian_filter1d(energy, 0.08 * fps) - gaussian_filter1d(energy, 0.5 * fps)
    rot[:, 0] += np.deg2rad(amplitude_deg[0]) * 0.8 * onset
    return gaussian_filter1d(rot, max(0.06 * fps, 0.5), axis=0)
