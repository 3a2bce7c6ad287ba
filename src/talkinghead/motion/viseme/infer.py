"""Audio features + reference face -> FaceMotion with the viseme engine."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from talkinghead.audio.features import AudioFeatures
from talkinghead.audio.whisper_encoder import SPEECH_MAP_BLOCK
from talkinghead.face.expression import (
    GAP,
    OPENING_FEATURES,
    STYLE_COMPONENTS,
    ExpressionBasis,
    mouth_features,
    style_components,
)
from talkinghead.face.motion import FaceMotion
from talkinghead.motion.viseme.config import PHONES_CLOSED_PAUSE, VisemeConfig
from talkinghead.motion.viseme.model import (
    Blinks,
    HeadNoise,
    VisemeCalibration,
    default_calibration,
    head_track,
    loudness_gain,
)


def rest_features(reference: np.ndarray, calibration: VisemeCalibration) -> np.ndarray:
    """The closed-mouth rest shape's mouth features for pose-free reference mesh(es).

    The reference's own lip gap is removed along the calibrated gap direction, so a reference
    photographed with an open mouth rests with closed lips.

    Args:
        reference: (R, 478, 3) canonical-space meshes (R = 1 for a photo, one per frame for a video).

    Returns:
        (5,) rest features (the median over R).
    """
    f = mouth_features(reference)
    rest = f - f[:, GAP:GAP + 1] * calibration.gap_direction[None, :]
    return np.median(rest, axis=0)


def mouth_targets(features: AudioFeatures, *, config: VisemeConfig, calibration: VisemeCalibration) -> np.ndarray:
    """Mouth-feature offsets from rest per frame: (T, 5) float64 (lip_gap absolute, >= 0): the calibration's phone
    shapes, blended with its Whisper speech map when it has one and ``config.speech_map`` is on (on the features'
    own Whisper features when the analysis computed them), at a real speaker's range with ``config.spread``."""
    whisper = None
    if calibration.speech_map is not None and config.speech_map:
        if calibration.speech_map.block == SPEECH_MAP_BLOCK:
            whisper = features.whisper
        if whisper is None:
            whisper = calibration.speech_map.features(features.audio, fps=features.fps, n_frames=features.n_frames)
    deltas = calibration.mouth_deltas(features.phonemes, fps=features.fps, n_frames=features.n_frames,
                                      whisper=whisper, spread=config.spread)
    if whisper is not None and config.closed_pause is None:
        config = replace(config, closed_pause=calibration.speech_map.closed_pause)
    return shape_mouth(deltas, features.loudness_db, features.voiced, fps=features.fps, config=config)


def shape_mouth(deltas: np.ndarray, loudness_db: np.ndarray, voiced: np.ndarray, *, fps: float,
                config: VisemeConfig, ahead: int = 0) -> np.ndarray:
    """Articulated mouth-feature offsets (D, 5) opened with speech loudness, closed in pauses, scaled.

    Args:
        deltas: (D, 5) offsets of the last D frames of ``loudness_db`` / ``voiced`` (all of them in one call
            for a whole utterance); a stream passes a window of recent frames ending ``ahead`` frames after the new
            ones (the audio heard past them).
        loudness_db, voiced: (W,) per-frame loudness and voice activity, W >= D (+ ``ahead``).
        ahead: frames of ``loudness_db`` / ``voiced`` after the last of ``deltas``: a stream's audio heard past the
            new frames, which tells whether a pause there is a short one (kept open) or not.

    Returns:
        (D, 5) float64 (lip_gap >= 0).
    """
    gain, gate = loudness_gain(loudness_db, voiced, exponent=config.loudness_exponent,
                               gain_range=config.loudness_gain_range, fps=fps,
                               closed_pause=PHONES_CLOSED_PAUSE if config.closed_pause is None else config.closed_pause)
    end = len(gain) - ahead
    gain, gate = gain[end - len(deltas):end, None], gate[end - len(deltas):end, None]
    opening = np.isin(np.arange(deltas.shape[1]), OPENING_FEATURES)
    out = deltas * gate * np.where(opening, gain, 1.0) * config.expression_scale
    out[:, GAP] = np.maximum(out[:, GAP], 0.0)
    return out


def viseme_motion(
    features: AudioFeatures,
    reference: np.ndarray,
    *,
    config: VisemeConfig | None = None,
    calibration: VisemeCalibration | None = None,
) -> FaceMotion:
    """Motion of a talking face for the given speech.

    Args:
        features: analysed speech (T frames).
        reference: (478, 3) pose-free mesh of a photo, or (T, 478, 3) one per video frame (dubbing:
            each frame's mouth is replaced, its other motion kept).
        config: options (defaults: :class:`VisemeConfig`).
        calibration: mouth shapes (default: the shipped calibration).

    Returns:
        FaceMotion whose first 5 expression coefficients are mouth-feature changes in the calibration's
        articulation basis, relative to each reference mesh, and last 2 the held smile and brow raise.
    """
    config = config or VisemeConfig()
    calibration = calibration or default_calibration()
    refs = reference[None] if reference.ndim == 2 else reference
    if len(refs) not in (1, features.n_frames):
        raise ValueError(f"reference has {len(refs)} meshes; expected 1 or {features.n_frames}")
    n, fps = features.n_frames, features.fps
    blink = blinks(config).curve(fps, 0, n) if config.blink else np.zeros(n)
    head = np.zeros((n, 3))
    if config.head_motion:
        head = head_track(features.loudness_db, features.voiced, fps, HeadNoise(config.seed, fps).window(0, n),
                          amplitude_deg=config.head_amplitude_deg, idle_fraction=config.head_idle_fraction)
        head -= head.mean(0)
    return assemble_motion(refs, mouth_targets(features, config=config, calibration=calibration), blink, head,
                           fps=fps, config=config, calibration=calibration)


def blinks(config: VisemeConfig) -> Blinks:
    """The blinks of ``config`` (timing and seed), the same for a whole utterance and a stream."""
    return Blinks(np.random.default_rng((config.seed, 0)), interval=config.blink_interval,
                  duration=config.blink_duration)


def assemble_motion(refs: np.ndarray, mouth: np.ndarray, blink: np.ndarray, head: np.ndarray, *, fps: float,
                    config: VisemeConfig, calibration: VisemeCalibration) -> FaceMotion:
    """FaceMotion of T frames from mouth-feature offsets from rest (T, 5), eyelid closure (T,) and head rotation
    (T, 3), relative to the pose-free reference mesh(es) ``refs`` (1 or T, 478, 3)."""
    n = len(mouth)
    coefficients = rest_features(refs, calibration) + mouth - mouth_features(refs)
    style = np.broadcast_to([config.smile, config.brow_raise], (n, 2))
    basis = ExpressionBasis(f"{calibration.basis.name}+style", calibration.basis.coefficient_names + STYLE_COMPONENTS,
                            np.concatenate([calibration.basis.components, style_components(refs[0])]))
    return FaceMotion(
        fps=fps,
        expression=np.concatenate([coefficients, style], 1).astype(np.float32),
        basis=basis,
        head_rotation=head.astype(np.float32),
        head_translation=np.zeros((n, 3), np.float32),
        blink=blink.astype(np.float32),
    )
