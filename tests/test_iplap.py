"""IP_LAP: landmark tables, layers, tiny-config tests of both networks, datasets and Lightning runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import optimise
from talkinghead.face import indices as ix
from talkinghead.motion.iplap.model import LandmarkGenerator
from talkinghead.nn.layers import warp
from talkinghead.nn.perceptual import PerceptualLoss
from talkinghead.render.iplap.model import IPLAPRenderer
from talkinghead.render.iplap.sketch import draw_sketch
from talkinghead.train.iplap import LANDMARK_CONFIGS, RENDERER_CONFIGS, train_landmarks, train_renderer


def test_landmark_sets_match_iplap_and_mediapipe() -> None:
    import mediapipe as mp

    assert (len(ix.IPLAP_POSE), len(ix.IPLAP_LIPS), len(ix.IPLAP_JAW), len(ix.IPLAP_REFERENCE)) == (74, 40, 17, 131)
    assert len(set(ix.IPLAP_REFERENCE.tolist())) == 131
    fm = mp.solutions.face_mesh
    edges = {frozenset(e) for e in fm.FACEMESH_LIPS | fm.FACEMESH_LEFT_EYE | fm.FACEMESH_RIGHT_EYE | fm.FACEMESH_NOSE
             | fm.FACEMESH_LEFT_EYEBROW | fm.FACEMESH_RIGHT_EYEBROW | fm.FACEMESH_FACE_OVAL}
    drawn = {frozenset(e) for lines in ix.IPLAP_SKETCH_PARTS.values() for line in lines for e in zip(line, line[1:])}
    assert drawn <= edges
    assert {p for e in drawn for p in e} == set(ix.IPLAP_REFERENCE.tolist())


def test_sketch_draws_each_part_in_its_colour() -> None:
    pts = np.full((131, 2), 0.5, np.float32)
    lips = [i for i, p in enumerate(ix.IPLAP_REFERENCE) if p in ix.LIPS_UPPER_OUTER]
    pts[lips] = np.stack([np.linspace(0.2, 0.8, len(lips)), np.full(len(lips), 0.75)], 1)
    img = draw_sketch(pts, 64)
    assert img[48, 16:48].max(0).tolist() == [255, 64, 64]  # a horizontal red lip line at y = 0.75
    assert img[10].max() == 0


def test_warp_by_a_constant_flow_shifts_exactly() -> None:
    src = torch.arange(2 * 8 * 8, dtype=torch.float32).view(1, 2, 8, 8)
    flow = torch.zeros(1, 2, 8, 8)
    assert torch.allclose(warp(src, flow), src)
    flow[:, 0] = 2.0  # output(x) = source(x + 2)
    assert torch.allclose(warp(src, flow)[..., :6], src[..., 2:])
    half = torch.zeros(1, 2, 4, 4)
    half[:, 1] = 1.0  # 1 px at half resolution = 2 px at full
    assert torch.allclose(warp(src, half)[..., :6, :], src[..., 2:, :])


def test_spade_shares_one_modulation_across_consecutive_items() -> None:
    from talkinghead.nn.layers import SPADE

    torch.manual_seed(0)
    spade = SPADE(6, 4, 8)
    x, m = torch.randn(6, 6, 8, 8), torch.rand(2, 4, 16, 16)  # 2 targets x 3 references
    assert torch.allclose(spade(x, m), spade(x, m.repeat_interleave(3, 0)), atol=1e-6)


def test_landmark_references_avoid_the_target_window() -> None:
    from talkinghead.train.iplap_data import reference_frames

    rng = np.random.default_rng(0)
    for _ in range(50):
        refs = reference_frames(rng, 30, 15, exclude=range(10, 15))
        assert len(refs) == 15 and not set(refs.tolist()) & set(range(10, 15)) and len(set(refs.tolist())) == 15
    refs = reference_frames(rng, 8, 15, exclude=range(0, 5))  # a short clip: repeats of the 3 others
    assert set(refs.tolist()) == {5, 6, 7}


def test_landmark_augmentation_moves_every_array_by_one_similarity() -> None:
    from talkinghead.train.iplap_data import augment_landmarks

    rng = np.random.default_rng(0)
    a, b = rng.random((5, 131, 2), dtype=np.float32), rng.random((15, 131, 2), dtype=np.float32)
    mels = rng.uniform(-4, 4, (5, 16, 80)).astype(np.float32)
    (a2, b2), mels2 = augment_landmarks(np.random.default_rng(1), [a, b], mels)
    assert not np.allclose(a2, a)
    src = np.concatenate([a.reshape(-1, 2), np.ones((a.size // 2, 1), np.float32)], 1)  # affine fit on a ...
    fit, *_ = np.linalg.lstsq(src, a2.reshape(-1, 2), rcond=None)
    lin = fit[:2]
    assert np.allclose(lin @ lin.T / (lin @ lin.T)[0, 0], np.eye(2), atol=1e-4)  # ... is a similarity ...
    moved_b = np.concatenate([b.reshape(-1, 2), np.ones((b.size // 2, 1), np.float32)], 1) @ fit
    assert np.allclose(moved_b, b2.reshape(-1, 2), atol=1e-4)  # ... that moved b too
    shift = (mels2 - mels)[(np.abs(mels2) < 4) & (np.abs(mels) < 3.4)]
    assert np.ptp(shift) < 1e-5 and abs(shift[0]) <= 0.5 and mels2.min() >= -4 and mels2.max() <= 4


def test_perceptual_loss_is_zero_for_equal_images_and_the_same_everywhere() -> None:
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b = PerceptualLoss(width_divisor=16), PerceptualLoss(width_divisor=16)
    assert float(a(x, x, style_weight=250)) == 0.0
    y = (x + 0.1).clamp(0, 1)
    assert float(a(y, x)) > 0 and float(a(y, x)) == float(b(y, x))
    assert float(a(y, x, style_weight=250)) > float(a(y, x))


def _landmark_batch(b: int = 4, refs: int = 3, speech: str = "mel") -> tuple[torch.Tensor, ...]:
    from talkinghead.audio.speech import input_shape

    g = torch.Generator().manual_seed(0)
    return (torch.randn(b, 5, *input_shape(speech), generator=g), torch.rand(b, 5, 74, 2, generator=g),
            torch.rand(b, refs, 131, 2, generator=g), torch.rand(b, 5, 57, 2, generator=g))


@pytest.mark.slow
@pytest.mark.parametrize("sequence, speech", [("transformer", "mel"), ("bilstm", "mel"), ("transformer", "whisper"),
                                              ("transformer", "phones")])
def test_tiny_landmark_generator(sequence: str, speech: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LandmarkGenerator(replace(LANDMARK_CONFIGS["tiny"], sequence=sequence, dropout=0.0, speech=speech))
    mels, pose, refs, target = _landmark_batch(speech=speech)
    pred = model(mels, pose, refs)
    assert pred.shape == (4, 5, 57, 2) and torch.isfinite(pred).all()
    losses = optimise(model, lambda: model.loss(model(mels, pose, refs), target)[0], steps=8, lr=1e-3)
    assert losses[-1] < losses[0] and set(model.loss(pred, target)[1]) == {"l1", "continuity"}
    model.eval().save(tmp_path / "lm.pt")
    again = LandmarkGenerator.load(tmp_path / "lm.pt")
    assert again.config == model.config
    with torch.no_grad():
        assert torch.equal(again(mels, pose, refs), model(mels, pose, refs))


def test_continuity_loss_sees_only_motion() -> None:
    model = LandmarkGenerator(LANDMARK_CONFIGS["tiny"])
    target = torch.rand(2, 5, 57, 2)
    _, parts = model.loss(target + 0.1, target)  # a constant offset: L1 error, no motion error
    assert float(parts["l1"]) == pytest.approx(0.1, abs=1e-6) and float(parts["continuity"]) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("use_warp, blend", [(True, False), (False, False), (True, True)])
def test_tiny_renderer(use_warp: bool, blend: bool, tmp_path: Path) -> None:
    torch.manual_seed(0)
    c = replace(RENDERER_CONFIGS["tiny"], warp=use_warp, blend_warped=blend)
    model = IPLAPRenderer(c)
    g = torch.Generator().manual_seed(1)
    s = c.size
    target, sketches = torch.rand(2, 3, s, s, generator=g), torch.rand(2, 5, 3, s, s, generator=g)
    refs, ref_sk, mel = torch.rand(2, 3, 3, s, s, generator=g), torch.rand(2, 3, 3, s, s, generator=g), \
        torch.randn(2, 16, 80, generator=g)
    out, warped = model(target, sketches, refs, ref_sk, mel)
    assert out.shape == warped.shape == (2, 3, s, s) and torch.isfinite(out).all()
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    def loss() -> torch.Tensor:
        out, warped = model(target, sketches, refs, ref_sk, mel)
        return (out - target).abs().mean() + (warped - target).abs().mean()

    losses = optimise(model, loss, steps=8, lr=3e-3)
    assert losses[-1] < losses[0]
    model.eval().save(tmp_path / "r.pt")
    again = IPLAPRenderer.load(tmp_path / "r.pt")
    with torch.no_grad():
        assert torch.equal(again(target, sketches, refs, ref_sk, mel)[0], model(target, sketches, refs, ref_sk, mel)[0])


def test_renderer_ignores_the_target_lower_half() -> None:
    model = IPLAPRenderer(RENDERER_CONFIGS["tiny"]).eval()
    s = model.config.size
    target = torch.rand(1, 3, s, s)
    other = target.clone()
    other[..., s // 2:, :] = torch.rand(1, 3, s - s // 2, s)
    args = (torch.rand(1, 5, 3, s, s), torch.rand(1, 2, 3, s, s), torch.rand(1, 2, 3, s, s), torch.randn(1, 16, 80))
    with torch.no_grad():
        assert torch.equal(model(target, *args)[0], model(other, *args)[0])


@pytest.mark.train
@pytest.mark.slow
def test_lightning_runs_of_both_stages(one_clip_dataset: Path, tmp_path: Path) -> None:
    from talkinghead.data.clip import load_clip
    from talkinghead.train.iplap_data import LandmarkDataset, RendererDataset

    item = LandmarkDataset(one_clip_dataset, "train", references=3)[0]
    assert item["pose"].shape == (5, 74, 2) and item["content"].shape == (5, 57, 2)
    assert item["speech"].shape == (5, 16, 80)
    whisper = LandmarkDataset(one_clip_dataset, "train", references=3, speech="whisper")[0]["speech"]
    stored = load_clip(one_clip_dataset / "clips" / "a").whisper  # frames 0..4, each with 2 neighbours either side
    assert whisper.shape == (5, 5, 384) and torch.allclose(whisper[2], torch.from_numpy(stored[:5]))
    assert 0.0 < float(item["content"].min()) and float(item["content"].max()) < 1.0  # the face fills the crop
    item = RendererDataset(one_clip_dataset, "train", size=32)[0]
    assert item["sketches"].shape == (5, 3, 32, 32) and item["refs"].shape == (3, 3, 32, 32)
    kw = {"quiet": True, "accelerator": "cpu", "devices": 1}
    m = train_landmarks([one_clip_dataset], tmp_path / "lm.pt", config=LANDMARK_CONFIGS["tiny"], max_steps=3, batch=4,
                        **kw)
    assert m["train_loss"] < m["first_train_loss"]  # the training loss fell
    m = train_renderer([one_clip_dataset], tmp_path / "r.pt", config=RENDERER_CONFIGS["tiny"], max_steps=3, batch=2,
                       warmup=1, **kw)
    assert "train_gan" in m and np.isfinite(m["train_loss"])  # past warm-up: all losses
    assert m["train_warp"] < m["first_train_warp"]  # the warping loss fell (the others start after warm-up)
    assert torch.load(tmp_path / "r.pt", weights_only=True)["steps"] == 3
    assert IPLAPRenderer.load(tmp_path / "r.pt").config == RENDERER_CONFIGS["tiny"]


@pytest.mark.train
def test_landmarks_trained_without_a_fold_and_with_input_dropout(styled_dataset: Path, tmp_path: Path) -> None:
    """``hold_out`` leaves one fold of speakers out of the landmark training items and lists its clips in the
    checkpoint; the input dropout acts in training only and adds no weights."""
    from talkinghead.nn.checkpoint import checkpoint_meta
    from talkinghead.train.iplap_data import LandmarkDataset

    kept = {key[1] for key in LandmarkDataset(styled_dataset, "train", references=3,
                                              exclude=frozenset({(styled_dataset, "b")})).store.keys}
    assert kept == {"a", "c"}
    config = replace(LANDMARK_CONFIGS["tiny"], input_dropout=0.5, dropout=0.0)
    ckpt = tmp_path / "lm.pt"
    train_landmarks([styled_dataset], ckpt, config=config, max_steps=2, batch=4, hold_out=(1, 3), quiet=True,
                    accelerator="cpu", devices=1)
    meta, model = checkpoint_meta(ckpt), LandmarkGenerator.load(ckpt)
    assert meta["held_out"] == [str(styled_dataset / "clips" / "b")] and meta["training"]["hold_out"] == "1/3"
    assert model.config.input_dropout == 0.5
    assert set(model.state_dict()) == set(LandmarkGenerator(LANDMARK_CONFIGS["tiny"]).state_dict())
    speech, pose, refs, _ = _landmark_batch()
    with torch.no_grad():
        assert torch.equal(model.eval()(speech, pose, refs), model(speech, pose, refs))
        assert not torch.equal(model.train()(speech, pose, refs), model(speech, pose, refs))


def test_train_iplap_reads_the_landmark_options() -> None:
    """``--hold-out`` and ``--input-dropout`` on the command line; the renderer stage refuses them."""
    import argparse

    from talkinghead.errors import TalkingHeadError
    from talkinghead.train.iplap import COMMAND

    parser = argparse.ArgumentParser()
    COMMAND.arguments(parser)
    args = parser.parse_args(["data/train", "-o", "x.pt", "--stage", "landmarks", "--hold-out", "0/4",
                              "--input-dropout", "0.3"])
    assert args.hold_out == (0, 4) and args.input_dropout == 0.3
    for extra in (["--hold-out", "0/4"], ["--input-dropout", "0.3"]):
        with pytest.raises(TalkingHeadError, match="options of --stage landmarks"):
            COMMAND.run(parser.parse_args(["data/train", "-o", "x.pt", "--stage", "renderer", *extra]))
    with pytest.raises(TalkingHeadError, match="--input-dropout must be in"):
        COMMAND.run(parser.parse_args(["data/train", "-o", "x.pt", "--stage", "landmarks", "--input-dropout", "1"]))


@pytest.mark.slow
def test_dub_regenerates_only_the_lower_face(media: Path, tmp_path: Path) -> None:
    from helpers import write_wav
    from talkinghead.api import generate
    from talkinghead.face.mesh import track_faces
    from talkinghead.io import load_audio, read_video, write_video

    src = media / "talking" / "videoretalking_face5.mp4"
    speech = write_wav(tmp_path / "s.wav", load_audio(media / "speech" / "videoretalking_1.wav")[:32000], 16000)
    out = tmp_path / "dub.mp4"
    result = generate(video=src, audio=speech, output=out, method="iplap", size=256, references=4, quiet=True)
    assert result.method == "iplap" and result.frames == 50
    dubbed, source = read_video(out).frames, read_video(src, max_side=256, max_frames=50).frames
    write_video(tmp_path / "plain.mp4", iter(source), fps=25.0)  # the same frames re-encoded: h264 noise alone
    plain = read_video(tmp_path / "plain.mp4").frames
    meshes = track_faces(source).meshes
    top = int(meshes[:, ix.NOSE_TIP, 1].min()) - 10  # above the nose: kept as it was
    lips = meshes[:, ix.LIPS_ALL]
    mouth = (slice(int(lips[..., 1].min()), int(lips[..., 1].max()) + 1),
             slice(int(lips[..., 0].min()), int(lips[..., 0].max()) + 1))

    def diff(video: np.ndarray, region: tuple[slice, ...]) -> float:
        return float(np.abs(video[(slice(None), *region)].astype(int) - source[(slice(None), *region)]).mean())

    above = (slice(0, top),)
    assert diff(dubbed, above) < diff(plain, above) + 0.3  # only h264 noise above the nose
    assert diff(dubbed, mouth) > diff(plain, mouth) + 3.0  # the regenerated mouth


@pytest.mark.slow
def test_a_photo_gets_references_with_the_mouth_open(media: Path, tmp_path: Path) -> None:
    """A photo shows one closed mouth; the references drawn for it by the default engine show it open, so the
    renderer opens the mouth wider than from the most closed of them alone (measured: std 0.0174 against 0.0139 with
    the v4 landmarks, 0.020 against 0.012 with v3, which opened the mouth wider), and wider than when the photo was the
    only reference, before they were drawn (0.013 with v3)."""
    from helpers import write_wav
    from talkinghead.api import generate
    from talkinghead.face.mesh import track_faces
    from talkinghead.io import load_audio, read_video
    from talkinghead.metrics.mouth import mouth_opening

    speech = write_wav(tmp_path / "s.wav", load_audio(media / "speech" / "videoretalking_1.wav")[:48000], 16000)
    spread = {}
    for references in (None, 1):  # the default (five, spread over the mouth openings), and the most closed one
        out = tmp_path / f"{references}.mp4"
        generate(image=media / "faces" / "liveportrait_s5.jpg", audio=speech, output=out, method="iplap", size=256,
                 references=references, quiet=True)
        spread[references] = float(mouth_opening(track_faces(read_video(out).frames).meshes).std())
    assert spread[None] > 1.15 * spread[1] and spread[None] > 0.016, spread


@pytest.mark.slow
def test_iplap_photo_and_bad_checkpoint(media: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    face, speech = media / "faces" / "liveportrait_s5.jpg", media / "speech" / "videoretalking_1.wav"
    out = tmp_path / "photo.mp4"
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "generate", "--image", str(face), "--audio",
                           str(speech), "-o", str(out), "--method", "iplap", "--size", "256", "-q"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and out.stat().st_size > 0, proc.stderr
    bad = tmp_path / "bad.mp4"
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "dub", "--video", str(media / "talking" /
                           "videoretalking_face5.mp4"), "--audio", str(speech), "-o", str(bad), "--method", "iplap",
                           "--checkpoint", f"renderer={tmp_path / 'missing.pt'}"], capture_output=True, text=True)
    assert proc.returncode == 2 and "missing.pt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not bad.exists()
