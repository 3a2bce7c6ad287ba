"""The viseme engine on exactly-timed espeak-ng speech, plus blinks, head motion and silence."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.audio.espeak import synthesize
from talkinghead.audio.features import AudioFeatures, features_from_timeline
from talkinghead.audio.phonemes import PHONES
from talkinghead.face.expression import GAP, JAW, mouth_features
from talkinghead.face.pose import canonical_mesh
from talkinghead.motion.viseme.config import VISEME_CLASSES, VisemeConfig
from talkinghead.motion.viseme.infer import viseme_motion
from talkinghead.motion.viseme.model import Blinks, HeadNoise, default_calibration, head_track

FPS = 100.0  # fine frames so every phone centre is sampled


def _features(audio: np.ndarray, timeline, fps: float = FPS) -> AudioFeatures:  # type: ignore[no-untyped-def]
    return features_from_timeline(audio, timeline, fps=fps)


def _mouth(features: AudioFeatures, **config) -> np.ndarray:  # type: ignore[no-untyped-def]
    ref = canonical_mesh()
    motion = viseme_motion(features, ref, config=VisemeConfig(**config))
    shapes = ref + motion.basis.decode(motion.expression)
    return mouth_features(shapes)


def test_every_phone_has_one_viseme_class() -> None:
    grouped = [p for phones in VISEME_CLASSES.values() for p in phones]
    assert sorted(grouped) == sorted(PHONES)


def test_calibration_asset_is_complete() -> None:
    cal = default_calibration()
    assert cal.targets.shape == (len(PHONES), 5) and np.isfinite(cal.targets).all()
    assert cal.basis.components.shape == (5, 478, 3)
    assert cal.card["phone_samples"] > 500 and cal.card["clips"]
    assert cal.card["inputs"] == ["data/train"] and "non-commercial" in cal.card["terms"]  # never fitted on talking/
    assert cal.speech_map is not None and cal.speech_map.ridge.weights.shape[1] == 5
    assert cal.speech_map.gain == pytest.approx(cal.card["speech_map"]["spread_gain"], abs=1e-4)
    assert cal.speech_map.gain > 1.0  # held-out ridge predictions move less than the real lips
    assert cal.speech_map.ridge.centre == cal.card["speech_map"]["centred_per_utterance"]
    assert cal.speech_map.closed_pause == cal.card["speech_map"]["closed_pause"]
    for p in VISEME_CLASSES["closure"]:
        assert cal.targets[PHONES.index(p), GAP] == 0.0


def test_known_m_closes_lips_and_known_a_opens_jaw() -> None:
    speech = synthesize("mama, papa, bob, mop, palm.")
    features = _features(speech.audio, speech.timeline)
    f = _mouth(features, blink=False, head_motion=False)
    rest = f[0]
    tl, lead = speech.timeline, default_calibration().lag  # the mouth shows each sound this much before it
    closures = [(s + e) / 2 - lead for p, s, e in zip(tl.phones, tl.starts, tl.ends) if p in ("M", "P", "B")]
    opens = [(s + e) / 2 - lead for p, s, e in zip(tl.phones, tl.starts, tl.ends) if p == "AA"]
    assert len(closures) >= 6 and len(opens) >= 4
    gap_closed = [f[int(t * FPS), GAP] for t in closures]
    gap_open = [f[int(t * FPS), GAP] for t in opens]
    assert max(gap_closed) < 0.02  # lips together (canonical units; eye distance = 1)
    assert min(gap_open) > 0.03 and np.mean(gap_open) > 0.06  # a short /a/ between two /m/ opens less
    assert np.mean([f[int(t * FPS), JAW] for t in opens]) > rest[JAW] + 0.01  # jaw drops on /a/


def test_silence_closes_the_mouth() -> None:
    speech = synthesize("hello world")
    pad = np.zeros(int(1.5 * 16000), np.float32)
    audio = np.concatenate([pad, speech.audio, pad])
    tl = speech.timeline
    shifted = type(tl)(["SIL", *tl.phones, "SIL"], np.concatenate([[0.0], tl.starts + 1.5, [1.5 + tl.ends[-1]]]),
                       np.concatenate([[1.5], tl.ends + 1.5, [audio.size / 16000]]), "espeak")
    f = _mouth(_features(audio, shifted, fps=25.0), blink=False, head_motion=False)
    assert np.abs(f[:30, GAP]).max() < 1e-6 and np.abs(f[-30:, GAP]).max() < 1e-6
    assert f[40:60, GAP].max() > 0.05


def test_the_speech_map_chooses_which_pauses_close_the_mouth() -> None:
    from talkinghead.motion.viseme.config import PHONES_CLOSED_PAUSE
    from talkinghead.motion.viseme.infer import mouth_targets

    speech = synthesize("hello world")
    gap = np.zeros(int(1.2 * 16000), np.float32)
    audio = np.concatenate([speech.audio, gap, speech.audio])
    tl, second = speech.timeline, speech.audio.size / 16000 + 1.2
    both = type(tl)([*tl.phones, "SIL", *tl.phones],
                    np.concatenate([tl.starts, [tl.ends[-1]], tl.starts + second]),
                    np.concatenate([tl.ends, [second], tl.ends + second]), "espeak")
    features = features_from_timeline(audio, both, fps=25.0)
    cal = default_calibration()
    assert cal.speech_map is not None and cal.speech_map.closed_pause > 1.2  # chosen by calibrate on train/
    pause = slice(int((tl.ends[-1] + 0.4) * 25), int((second - 0.4) * 25))

    def targets(**config: object) -> np.ndarray:
        return mouth_targets(features, config=VisemeConfig(**config), calibration=cal)[:, GAP]

    kept = targets()
    assert np.array_equal(kept, targets(closed_pause=cal.speech_map.closed_pause))
    assert np.abs(targets(closed_pause=0.5)[pause]).max() < 1e-9 < np.abs(kept[pause]).max()  # the map's lips
    phones = targets(speech_map=False)
    assert np.array_equal(phones, targets(speech_map=False, closed_pause=PHONES_CLOSED_PAUSE))
    assert np.abs(phones[pause]).max() < 1e-9  # phones alone close a 1.2 s pause, as before


def test_expression_scale_zero_keeps_rest() -> None:
    speech = synthesize("open your mouth wide")
    f = _mouth(_features(speech.audio, speech.timeline), expression_scale=0.0, blink=False, head_motion=False)
    assert np.abs(f[:, GAP]).max() < 1e-6


def test_blinks_have_natural_timing() -> None:
    fps = 100.0
    track = Blinks(np.random.default_rng(3), interval=(2.0, 6.0), duration=(0.10, 0.15)).curve(fps, 0, int(600 * fps))
    closed = track > 0.5
    starts = np.nonzero(closed[1:] & ~closed[:-1])[0]
    intervals = np.diff(starts) / fps
    assert 100 < len(starts) < 300  # mean interval 4 s over 600 s
    assert intervals.min() > 1.9 and intervals.max() < 6.1
    lengths = [np.argmax(~closed[s + 1:]) / fps for s in starts]
    assert 0.04 < np.mean(lengths) < 0.1  # half-closed span of a 100-150 ms raised cosine
    assert track.max() == pytest.approx(1.0, abs=0.02) and track.min() == 0.0


def test_head_motion_follows_speech_energy() -> None:
    fps, n = 25.0, 1500
    level = np.full(n, -80.0)
    level[750:] = -20.0  # silence, then loud speech
    voiced = level > -50
    rot = head_track(level.astype(np.float32), voiced, fps, HeadNoise(0, fps).window(0, n),
                     amplitude_deg=(2.0, 3.0, 1.2), idle_fraction=0.35)
    assert rot.shape == (n, 3)
    assert np.rad2deg(np.abs(rot)).max() < 12
    speed = np.abs(np.diff(rot, axis=0)).sum(1)
    assert speed[800:].mean() > 1.5 * speed[:700].mean()


def test_blinks_and_head_noise_are_the_same_asked_for_block_by_block() -> None:
    fps, n = 25.0, 400
    whole = Blinks(np.random.default_rng(1), interval=(2.0, 6.0), duration=(0.10, 0.15)).curve(fps, 0, n)
    blinks = Blinks(np.random.default_rng(1), interval=(2.0, 6.0), duration=(0.10, 0.15))
    assert np.array_equal(np.concatenate([blinks.curve(fps, a, a + 7) for a in range(0, n, 7)])[:n], whole[:n])
    assert whole.max() > 0.9  # blinks happened
    noise = HeadNoise(5, fps).window(0, n)
    streamed = HeadNoise(5, fps)
    assert np.allclose(np.concatenate([streamed.window(a, min(a + 3, n)) for a in range(0, n, 3)]), noise, atol=1e-12)
    long = HeadNoise(5, fps).window(0, 20000)
    assert np.allclose(long.std(0), 1.0, atol=0.15) and np.allclose(long.mean(0), 0.0, atol=0.15)


def test_same_seed_same_motion_different_seed_different() -> None:
    speech = synthesize("one two three four five six")
    features = _features(speech.audio, speech.timeline, fps=25.0)
    ref = canonical_mesh()
    a = viseme_motion(features, ref, config=VisemeConfig(seed=1))
    b = viseme_motion(features, ref, config=VisemeConfig(seed=1))
    c = viseme_motion(features, ref, config=VisemeConfig(seed=2))
    assert np.array_equal(a.head_rotation, b.head_rotation) and np.array_equal(a.blink, b.blink)
    assert not np.allclose(a.head_rotation, c.head_rotation)


@pytest.mark.train
@pytest.mark.slow
def test_calibrate_command_fits_loadable_assets(media, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from talkinghead.cli import main
    from talkinghead.motion.viseme.model import VisemeCalibration

    clips = [str(media / "talking" / n) for n in ("videoretalking_face2.mp4", "videoretalking_face5.mp4")]
    canonical, calibration = tmp_path / "canonical.npz", tmp_path / "visemes.npz"
    assert main(["calibrate", *clips, "--canonical-out", str(canonical), "--calibration-out", str(calibration),
                 "-q"]) == 0
    cal = VisemeCalibration.load(calibration)
    assert [c["name"] for c in cal.card["clips"]] == ["videoretalking_face2.mp4", "videoretalking_face5.mp4"]
    assert cal.card["frames"] == 247 and cal.card["basis_lip_r2"] > 0.5
    open_gap = cal.targets[PHONES.index("AA"), GAP]
    assert open_gap > 0.03 and cal.targets[PHONES.index("M"), GAP] == 0.0
    mesh = np.load(canonical)["mesh"]
    assert mesh.shape == (478, 3)
    assert np.linalg.norm(mesh[263] - mesh[33]) == pytest.approx(1.0, abs=1e-5)  # unit: outer eye corners
    assert json.loads(json.dumps(cal.card))  # the card is plain JSON


def test_speech_map_round_trip_and_closures_keep_the_phone_shapes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from talkinghead.audio.speechmap import fit_window_ridge
    from talkinghead.motion.viseme.model import SpeechMap, VisemeCalibration, closure_hold

    rng = np.random.default_rng(0)
    ridge = fit_window_ridge([rng.standard_normal((100, 384))], [rng.standard_normal((100, 5))], window=1, alpha=1.0,
                             dims=4, centre=True)
    calibration = replace(default_calibration(), speech_map=SpeechMap(ridge, 0.5, 1.4, 2.0))
    calibration.save(tmp_path / "c.npz")
    back = VisemeCalibration.load(tmp_path / "c.npz")
    assert back.speech_map is not None and back.speech_map.gain == 1.4 and back.speech_map.ridge.centre
    assert back.speech_map.closed_pause == 2.0 and back.speech_map.block is None  # as written before visemes_v3
    replace(calibration, speech_map=replace(calibration.speech_map, block=3)).save(tmp_path / "b.npz")
    assert VisemeCalibration.load(tmp_path / "b.npz").speech_map.block == 3  # type: ignore[union-attr]
    speech = synthesize("mama, papa, bob.")
    n = int(speech.audio.size / 16000 * 25)
    whisper = rng.standard_normal((n, 384))
    mixed = back.mouth_deltas(speech.timeline, fps=25, n_frames=n, whisper=whisper)
    assert np.allclose(mixed, calibration.mouth_deltas(speech.timeline, fps=25, n_frames=n, whisper=whisper),
                       atol=1e-5)  # the map is stored as float32
    phone = back.mouth_deltas(speech.timeline, fps=25, n_frames=n)
    keep = closure_hold(speech.timeline, fps=25, n_frames=n, lag=back.lag)
    assert np.allclose(mixed, phone + 0.5 * (1 - keep)[:, None] * (ridge.predict(whisper) - phone), atol=1e-5)
    tl = speech.timeline
    spans = [(max(s - back.lag, 0.0), e - back.lag) for p, s, e in zip(tl.phones, tl.starts, tl.ends)
             if p in ("P", "B", "M", "F", "V")]
    # every p/b/m and f/v hands the mouth wholly to the phone shapes on the frame that shows most of it ...
    centres = [int(np.argmax(keep[int(s * 25):int(np.ceil(e * 25))])) + int(s * 25) for s, e in spans]
    assert len(centres) == 6 and np.allclose(keep[centres], 1.0)
    assert np.allclose(mixed[centres], phone[centres])
    # ... for about as long as it sounds: frames beyond its span are the map's
    inside = np.zeros(n, bool)
    for s, e in spans:
        inside[int(np.floor(s * 25)):int(np.ceil(e * 25))] = True
    assert np.all(keep[~inside] == 0) and 0 < keep.mean() < 0.5
    spread = back.mouth_deltas(speech.timeline, fps=25, n_frames=n, whisper=whisper, spread=True)
    assert np.allclose(spread, (1 + 0.4 * (1 - keep))[:, None] * mixed)  # the gain, but not on closures
    assert np.allclose(spread[centres], phone[centres])
    assert np.array_equal(back.mouth_deltas(speech.timeline, fps=25, n_frames=n, spread=True), phone)  # no map


def test_spread_gain_is_the_ratio_of_the_spreads_within_clips() -> None:
    from talkinghead.motion.viseme.calibrate import spread_gain

    rng = np.random.default_rng(0)
    measured = [rng.standard_normal(300), 3.0 * rng.standard_normal(100)]
    assert spread_gain([0.5 * m + 7.0 for m in measured], measured) == pytest.approx(2.0)  # each clip's mean apart
    shaped = [rng.standard_normal(300), rng.standard_normal(100)]
    pooled = (300 * measured[0].var() + 100 * measured[1].var()) / (300 * shaped[0].var() + 100 * shaped[1].var())
    assert spread_gain(shaped, measured) == pytest.approx(np.sqrt(pooled))  # frames weigh, not clips


def test_spread_moves_the_mouth_by_the_calibrated_gain() -> None:
    from dataclasses import replace

    from talkinghead.audio.posteriorgram import whisper_features
    from talkinghead.motion.viseme.infer import mouth_targets

    speech = synthesize("Hello there, how are you today?")
    features = _features(speech.audio, speech.timeline, fps=25.0)
    features = replace(features, whisper=whisper_features(features.audio, fps=25.0, n_frames=features.n_frames))
    cal = default_calibration()
    wide = mouth_targets(features, config=VisemeConfig(spread=True), calibration=cal)
    dub = mouth_targets(features, config=VisemeConfig(spread=False), calibration=cal)
    open_ = dub[:, GAP] > 0.03
    assert open_.sum() > 10 and np.allclose(wide[open_, GAP], cal.speech_map.gain * dub[open_, GAP], rtol=0.02)

    # the engine widens a photo's mouth, not a dub's: the same face as a photo and as a 2-frame video
    from types import SimpleNamespace

    from talkinghead.motion.viseme.method import viseme_base

    ref = canonical_mesh()
    request = SimpleNamespace(blink=False, still=True, seed=0, checkpoints={})
    gaps = []
    for meshes in (ref[None] * 100.0 + 200.0, np.repeat(ref[None] * 100.0 + 200.0, 2, axis=0)):
        scene = SimpleNamespace(is_photo=len(meshes) == 1, meshes=meshes, features=features,
                                src_idx=np.zeros(features.n_frames, np.int64))
        motion = viseme_base(request, scene, expression_scale=1.0, own_mouth=True)
        gaps.append(mouth_features(ref + motion.basis.decode(motion.expression))[:, GAP])
    photo, video = gaps
    assert np.allclose(photo[open_] - photo[0], cal.speech_map.gain * (video[open_] - video[0]), rtol=0.05)


@pytest.mark.train
@pytest.mark.slow
def test_calibrate_from_a_preprocessed_dataset_fits_the_speech_map(styled_dataset, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from talkinghead.cli import main
    from talkinghead.motion.viseme.model import VisemeCalibration

    out = tmp_path / "visemes.npz"
    assert main(["calibrate", str(styled_dataset), "--calibration-out", str(out), "-q"]) == 0
    cal = VisemeCalibration.load(out)
    frames = json.loads((styled_dataset / "clips" / "a" / "meta.json").read_text())["frames"]
    assert [c["name"] for c in cal.card["clips"]] == ["a", "b", "c"] and cal.card["frames"] == 3 * frames
    assert cal.speech_map is not None and cal.speech_map.ridge.weights.shape == (13 * 384 + 1, 5)
    assert 0.0 <= cal.speech_map.blend <= 1.0 and cal.card["speech_map"]["pca_dims"] is None
    assert cal.speech_map.gain == pytest.approx(cal.card["speech_map"]["spread_gain"], abs=1e-4)
    assert cal.speech_map.gain > 1.0
    by_pause = cal.card["speech_map"]["out_of_fold_lip_gap_correlation_by_closed_pause"]
    assert cal.speech_map.closed_pause == float(max(by_pause, key=by_pause.get))  # the best of those tried
    assert list(tmp_path.iterdir()) == [out]  # the shipped canonical mesh kept: none written
    assert cal.speech_map.block == 3 and "block 3 of 4" in cal.card["speech_map"]["features"]


@pytest.mark.train
@pytest.mark.slow
def test_calibrate_skips_a_clip_without_speech(styled_dataset, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from talkinghead.cli import main
    from talkinghead.motion.viseme.model import VisemeCalibration

    data = tmp_path / "data"
    shutil.copytree(styled_dataset, data)
    with np.load(data / "clips" / "c" / "data.npz") as z:
        arrays = dict(z)
    arrays["voiced"] = np.zeros_like(arrays["voiced"])  # a driving video with no speech
    np.savez(data / "clips" / "c" / "data.npz", **arrays)
    out = tmp_path / "visemes.npz"
    assert main(["calibrate", str(data), "--calibration-out", str(out), "-q"]) == 0
    card = VisemeCalibration.load(out).card
    assert card["skipped_without_speech"] == ["c"] and [c["name"] for c in card["clips"]] == ["a", "b"]
    assert np.isfinite(card["speech_map"]["out_of_fold_lip_gap_correlation"])  # motion/ clips kept gave NaN


def test_the_analysis_features_are_used_only_by_a_map_that_reads_them() -> None:
    """The analysis computes the third block's features for the shipped map; a calibration made before visemes_v3
    (block None) reads CTranslate2's last layer instead, computed for it, and the analysis's are left unused."""
    from dataclasses import replace

    from talkinghead.audio.whisper_encoder import SPEECH_MAP_BLOCK, whisper_block_features
    from talkinghead.motion.viseme.infer import mouth_targets

    speech = synthesize("we were away a year ago.")
    n = int(np.ceil(speech.audio.size / 16000 * 25))
    third = whisper_block_features(speech.audio, fps=25.0, n_frames=n, block=SPEECH_MAP_BLOCK)
    given = features_from_timeline(speech.audio, speech.timeline, fps=25.0, whisper=third)
    bare = features_from_timeline(speech.audio, speech.timeline, fps=25.0)
    new = default_calibration()
    assert new.speech_map is not None and new.speech_map.block == SPEECH_MAP_BLOCK
    old = replace(new, speech_map=replace(new.speech_map, block=None))
    config = VisemeConfig()
    assert np.allclose(mouth_targets(given, config=config, calibration=new),
                       mouth_targets(bare, config=config, calibration=new), atol=1e-4)
    assert np.allclose(mouth_targets(given, config=config, calibration=old),
                       mouth_targets(bare, config=config, calibration=old), atol=1e-4)
    assert not np.allclose(mouth_targets(given, config=config, calibration=old),
                           mouth_targets(given, config=config, calibration=new), atol=1e-3)
