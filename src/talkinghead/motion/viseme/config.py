"""Settings of the viseme engine."""

from __future__ import annotations

from dataclasses import dataclass, field

PHONES_CLOSED_PAUSE = 0.5
"""Pauses at least this long (s) close a mouth the phone shapes alone drive (0.15 -> 0.5 raised the lip-gap
correlation on ../shared/media/talking from 0.504 to 0.537, before the speech map)."""

VISEME_CLASSES: dict[str, tuple[str, ...]] = {
    "silence": ("SIL",),
    "closure": ("P", "B", "M"),
    "lip_teeth": ("F", "V"),
    "dental": ("TH", "DH"),
    "rounded": ("UW", "UH", "OW", "OY", "W"),
    "postalveolar": ("SH", "ZH", "CH", "JH"),
    "open": ("AA", "AE", "AH", "AO", "AW", "AY"),
    "mid": ("EH", "EY", "ER"),
    "spread": ("IY", "IH", "Y"),
    "alveolar": ("T", "D", "N", "L", "S", "Z", "R"),
    "velar": ("K", "G", "NG", "HH"),
}
"""Phones grouped by mouth shape; every phone of ``PHONES`` is in exactly one class."""

DOMINANCE: dict[str, tuple[float, float]] = {
    "silence": (0.5, 0.06),
    "closure": (6.0, 0.025),
    "lip_teeth": (3.0, 0.03),
    "dental": (0.5, 0.04),
    "rounded": (1.6, 0.06),
    "postalveolar": (0.7, 0.05),
    "open": (1.4, 0.05),
    "mid": (1.2, 0.05),
    "spread": (1.2, 0.05),
    "alveolar": (0.3, 0.04),
    "velar": (0.2, 0.04),
}
"""Coarticulation (Cohen-Massaro style): (dominance inside the phone, decay time constant in s
outside it). Strong, fast-decaying dominance makes closures and lip-teeth contacts reached
exactly; weak dominance lets alveolars and velars take their neighbours' shape. Vowel dominance
was doubled after a leave-one-clip-out study on ../shared/media/talking (lip-gap correlation
0.453 -> 0.477); the decay constants were left as they were (scaling them did not help)."""


@dataclass
class VisemeConfig:
    """Options of :func:`talkinghead.motion.viseme.infer.viseme_motion`."""

    expression_scale: float = 1.0
    """Multiplies every mouth deviation from rest."""
    speech_map: bool = True
    """Blend in the calibration's Whisper speech map, when it has one (the streaming path uses phones only)."""
    spread: bool = True
    """Widen the speech map's blend by the calibration's spread gain
    (:attr:`~talkinghead.motion.viseme.model.SpeechMap.gain`), except where the lips close, toward a real speaker's
    range of lip motion. The engine sets it for a photo only: on ../shared/media/talking it raised a photo's
    mouth-opening correlation with the real clips, while a dub's mouth widened alike kept its correlation and got a
    larger mouth landmark error and a lower PSNR (README, "The default engine's mouth at a real speaker's range")."""
    loudness_exponent: float = 0.25
    """Opening amplitude follows (speech RMS / median speech RMS) ** this."""
    loudness_gain_range: tuple[float, float] = (0.5, 1.5)
    closed_pause: float | None = None
    """Pauses inside the speech at least this long (s) close the mouth; shorter ones keep the lips as the speech
    shapes them (silence before the first and after the last speech always closes it). None: the calibration's
    speech map's (:attr:`~talkinghead.motion.viseme.model.SpeechMap.closed_pause`, chosen with it) when the map is
    used, :data:`PHONES_CLOSED_PAUSE` otherwise."""
    blink: bool = True
    blink_interval: tuple[float, float] = (2.0, 6.0)
    """Seconds between blink starts (uniform)."""
    blink_duration: tuple[float, float] = (0.10, 0.15)
    """Blink length in seconds (uniform)."""
    head_motion: bool = True
    head_amplitude_deg: tuple[float, float, float] = field(default=(2.0, 3.0, 1.2))
    """Standard deviation of (pitch, yaw, roll) while speaking loudly, degrees."""
    head_idle_fraction: float = 0.35
    """Head motion in silence relative to loud speech."""
    smile: float = 0.0
    """Held smile, 0 (none) to 1 (full)."""
    brow_raise: float = 0.0
    """Held brow raise, 0 (none) to 1 (full)."""
    seed: int = 0
