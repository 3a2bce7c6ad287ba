"""Speech with exactly known phoneme times from libespeak-ng (Debian package ``espeak-ng``), via ctypes.

Used to build exactly aligned synthetic test and training data.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from talkinghead.audio.phonemes import PHONE_INDEX, PhonemeTimeline
from talkinghead.constants import SAMPLE_RATE

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_CHARS_AUTO, _POS_CHARACTER = 0, 1

# eSpeak's English phoneme mnemonics -> ARPAbet (stress marks and length marks stripped first)
ESPEAK_TO_ARPABET = {
    "p": "P", "b": "B", "m": "M", "f": "F", "v": "V", "T": "TH", "D": "DH", "t": "T", "d": "D", "n": "N",
    "s": "S", "z": "Z", "l": "L", "r": "R", "S": "SH", "Z": "ZH", "tS": "CH", "dZ": "JH", "j": "Y", "w": "W",
    "k": "K", "g": "G", "N": "NG", "h": "HH", "a": "AE", "aa": "AA", "A": "AA", "A@": "AA", "0": "AA",
    "V": "AH", "@": "AH", "@2": "AH", "@5": "AH", "3": "ER", "3:": "ER", "E": "EH", "e": "EH", "e@": "EH",
    "eI": "EY", "I": "IH", "I2": "IH", "i": "IY", "i@": "IY", "O": "AO", "O:": "AO", "O@": "AO", "o@": "AO",
    "oU": "OW", "OI": "OY", "U": "UH", "u": "UW", "u:": "UW", "U@": "UH", "aI": "AY", "aU": "AW", "aI@": "AY",
    "aU@": "AW", "a#": "AH", "I#": "IH", "@L": "L", "3:r": "ER", "_": "SIL", "_:": "SIL", "_!": "SIL",
    "l/": "L", "r-": "R", "t#": "T", "n-": "N", "?": "SIL",
}


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class SyntheticSpeech:
    """espeak-ng speech with its phoneme events.

    Attributes:
        audio: (N,) float32 at :data:`SAMPLE_RATE`.
        timeline: ARPAbet phones with exact start/end times (s) from libespeak-ng events.
        espeak_phonemes: (mnemonic, start s) as eSpeak reported them.
    """

    audio: np.ndarray
    timeline: PhonemeTimeline
    espeak_phonemes: list[tuple[str, float]]


@lru_cache(maxsize=1)
def _library() -> tuple[ctypes.CDLL, int]:
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise RuntimeError("libespeak-ng is not installed (apt-get install espeak-ng)") from exc
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
    if rate <= 0:
        raise RuntimeError("libespeak-ng failed to initialise")
    return lib, rate


def arpabet(mnemonic: str) -> str:
    """ARPAbet phone for an eSpeak English mnemonic ("SIL" when unknown)."""
    m = mnemonic.replace("'", "").replace(",", "").strip()
    if m in ESPEAK_TO_ARPABET:
        return ESPEAK_TO_ARPABET[m]
    m = m.rstrip(":;")
    return ESPEAK_TO_ARPABET.get(m, "SIL")


def synthesize(text: str, *, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> SyntheticSpeech:
    """Speak ``text`` with espeak-ng.

    Phone times are exact and repeatable; the waveform is not bit-identical between calls (voice
    variants add noise from the synthesiser's running state).

    Args:
        voice: espeak-ng voice name (e.g. "en-us", "en", "en-us+f3").
        rate: words per minute (80-450).
        pitch: 0-99.
    """
    import librosa

    lib, sr = _library()
    chunks: list[np.ndarray] = []
    events: list[tuple[str, float]] = []

    def on_synth(wav, n, ev):  # type: ignore[no-untyped-def]
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while ev[i].type != _EVENT_LIST_TERMINATED:
            if ev[i].type == _EVENT_PHONEME:
                events.append((ev[i].id.decode("ascii", "replace"), ev[i].audio_position / 1000.0))
            i += 1
        return 0

    callback = _CALLBACK(on_synth)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"unknown espeak-ng voice {voice!r}")
    lib.espeak_SetParameter(1, int(rate), 0)  # espeakRATE
    lib.espeak_SetParameter(3, int(pitch), 0)  # espeakPITCH
    data = text.encode("utf-8") + b"\0"
    lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_AUTO, None, None)
    lib.espeak_Synchronize()
    raw = np.concatenate(chunks).astype(np.float32) / 32768.0 if chunks else np.zeros(0, np.float32)
    audio = librosa.resample(raw, orig_sr=sr, target_sr=SAMPLE_RATE).astype(np.float32)
    duration = audio.size / SAMPLE_RATE
    phones = [arpabet(m) for m, _ in events]
    starts = [t for _, t in events]
    ends = starts[1:] + [duration]
    keep = [i for i, p in enumerate(phones) if p in PHONE_INDEX and ends[i] > starts[i]]
    timeline = PhonemeTimeline(
        phones=[phones[i] for i in keep], starts=np.array([starts[i] for i in keep]),
        ends=np.array([ends[i] for i in keep]), method="espeak", transcript=text,
    )
    return SyntheticSpeech(audio=audio, timeline=timeline, espeak_phonemes=events)
