"""VAST: speech features, Householder flow, tiny-config model, coefficient split, dataset, Lightning run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import mouth_follows_phonemes, optimise
from talkinghead.audio.phonemes import PHONE_INDEX, PHONES
from talkinghead.audio.posteriorgram import phone_posteriorgram
from talkinghead.motion.vast.model import Vast, gaussian_log_prob, reconstruction_loss
from talkinghead.nn.flows import HouseholderFlow
from talkinghead.train.vast import VAST_CONFIGS, train_vast

TINY = replace(VAST_CONFIGS["tiny"], n_expression=12, strong=[0, 2, 5], dropout=0.0, speech_dropout=0.0)


def test_posteriorgram_is_one_hot_inside_phones_and_cross_fades_at_boundaries() -> None:
    aa, m = PHONE_INDEX["AA"], PHONE_INDEX["M"]
    # AA over 0.0-0.2 s, M over 0.2-0.5 s, silence after: frames at 25 fps have centres 0.02, 0.06, ...
    ppg = phone_posteriorgram(np.array([aa, m]), np.array([0.0, 0.2]), np.array([0.2, 0.5]), fps=25.0, n_frames=15)
    assert ppg.shape == (15, len(PHONES)) and np.allclose(ppg.sum(1), 1.0)
    assert ppg[1, aa] == 1.0 and ppg[8, m] == 1.0 and ppg[14, PHONE_INDEX["SIL"]] == 1.0
    # the 0.2 s boundary lies between frames 4 (centre 0.18) and 5 (0.22), each 0.02 s from it: the
    # triangular window (0.08 s base) gives the other phone 1/8 of its weight
    assert ppg[4, aa] == pytest.approx(7 / 8) and ppg[4, m] == pytest.approx(1 / 8)
    assert ppg[5, m] == pytest.approx(7 / 8)


def test_householder_flow_is_invertible_and_volume_preserving() -> None:
    torch.manual_seed(0)
    flow = HouseholderFlow(6, 5, steps=4).double()
    h, z0 = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    z, logdet = flow(z0, h)
    assert torch.allclose(flow.inverse(z, h), z0, atol=1e-5) and not torch.allclose(z, z0)
    assert torch.equal(logdet, torch.zeros(3, dtype=torch.float64))
    for i in range(3):  # the numerical Jacobian: orthogonal, |det| = 1
        jac = torch.autograd.functional.jacobian(lambda x: flow(x[None], h[i:i + 1])[0][0], z0[i])
        assert abs(torch.linalg.slogdet(jac)[1].item()) < 1e-5
        assert torch.allclose(jac @ jac.T, torch.eye(6, dtype=torch.float64), atol=1e-5)


def test_asymmetric_loss_weighs_shrinking_errors_more() -> None:
    target = torch.tensor([1.0, -1.0, 1.0, -1.0])
    shrunk, exaggerated = target * 0.5, target * 1.5
    assert reconstruction_loss(shrunk, target, kind="mse", asymmetry=2.0) == pytest.approx(0.25)
    assert reconstruction_loss(exaggerated, target, kind="asymmetric", asymmetry=2.0) == pytest.approx(0.25)
    assert reconstruction_loss(shrunk, target, kind="asymmetric", asymmetry=2.0) == pytest.approx(0.5)
    assert reconstruction_loss(-target, target, kind="asymmetric", asymmetry=3.0) == pytest.approx(12.0)


def test_variational_loss_estimates_the_kl_divergence() -> None:
    """Without reflections the sampled loss log q(z0) - log p(z) averages to KL(N(mu, s) || N(mu_p, s_p))."""
    torch.manual_seed(0)
    model = Vast(replace(TINY, flow_steps=0))
    enhancer = model.enhancer
    h = torch.randn(1, TINY.d_model).expand(20000, -1)
    mu, logvar = enhancer.mu(h[:1]), enhancer.logvar(h[:1])
    with torch.no_grad():
        enhancer.prior_mu.fill_(0.3)
        enhancer.prior_logvar.fill_(-0.5)
        _, loss = enhancer(h, sample=True)
    var, pvar = logvar.exp(), torch.tensor(-0.5).exp()
    kl = 0.5 * (pvar.log() - logvar + (var + (mu - 0.3) ** 2) / pvar - 1).sum()
    assert loss.mean().item() == pytest.approx(kl.item(), rel=0.03)
    assert gaussian_log_prob(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2)).item() == \
        pytest.approx(-np.log(2 * np.pi))


def _inputs(b: int = 2, n: int = 16, length: int = 24) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    speech = torch.softmax(torch.randn(b, n, TINY.speech_dim, generator=g) * 3, -1)
    style = torch.randn(b, length, TINY.n_expression, generator=g)
    style_speech = torch.softmax(torch.randn(b, length, TINY.speech_dim, generator=g) * 3, -1)
    pad = torch.zeros(b, length, dtype=torch.bool)
    pad[1, 18:] = True
    return speech, style, style_speech, pad, torch.randn(b, n, TINY.n_expression, generator=g)


@pytest.mark.parametrize("variant", [{}, {"flow_steps": 0}, {"enhancer": False}, {"loss": "mse"}])
def test_tiny_vast(variant: dict, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Vast(replace(TINY, **variant))
    speech, style, style_speech, pad, target = _inputs()
    z, variational = model.style(style, style_speech, pad, sample=True)
    out = model(speech, z, target)
    assert z.shape == (2, TINY.style_dim) and out.shape == (2, 16, 12) and torch.isfinite(out).all()
    assert variational.shape == (2,) and torch.isfinite(variational).all()
    def loss() -> torch.Tensor:
        z, variational = model.style(style, style_speech, pad, sample=True)
        rec = reconstruction_loss(model(speech, z, target), target, kind=model.config.loss, asymmetry=2.0)
        return rec + 0.01 * variational.mean()

    losses = optimise(model, loss, steps=15, lr=3e-3)
    assert losses[-1] < losses[0]
    model.eval()
    model.scale.fill_(0.5)
    model.save(tmp_path / "vast.pt")
    again = Vast.load(tmp_path / "vast.pt")
    assert again.config == model.config and torch.equal(again.scale, model.scale)
    z = model.style(style, style_speech, pad)[0]
    assert torch.equal(again.generate(speech, again.style(style, style_speech, pad)[0]), model.generate(speech, z))


def test_style_ignores_padding_and_posterior_samples_differ() -> None:
    torch.manual_seed(0)
    model = Vast(TINY).eval()
    speech, style, style_speech, pad, _ = _inputs()
    garbage = style.clone()
    garbage[1, 18:] = 50.0
    with torch.no_grad():
        z = model.style(style, style_speech, pad)[0]
        assert torch.allclose(model.style(garbage, style_speech, pad)[0], z, atol=1e-6)
        assert torch.allclose(model.style(style[1:, :18], style_speech[1:, :18])[0], z[1:], atol=1e-5)
        g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
        s1, s2 = model.style(style, style_speech, pad, sample=True, generator=g1)[0], \
            model.style(style, style_speech, pad, sample=True, generator=g2)[0]
    assert (s1 - s2).abs().max() > 1e-3 and not torch.allclose(s1, z)


def test_hybrid_decoder_groups_and_autoregression() -> None:
    torch.manual_seed(0)
    model = Vast(TINY).eval()
    speech, style, style_speech, pad, _ = _inputs()
    with torch.no_grad():
        z = model.style(style, style_speech, pad)[0]
        generated = model.generate(speech, z)
        # teacher-forcing the decoder with its own free-running output reproduces it: generate() is the
        # autoregressive unrolling of forward()
        assert torch.allclose(model(speech, z, generated), generated, atol=1e-5)
        model.nar.out.bias.add_(1.0)
        changed = (model.generate(speech, z) - generated).abs().amax((0, 1)) > 0.5
    assert changed.tolist() == [i in TINY.strong for i in range(TINY.n_expression)]


def test_input_dropout_acts_in_training_only() -> None:
    """``input_dropout`` drops speech features entering the speech encoder while training (two passes differ) and
    never at inference (two generations agree); it adds no weights, so checkpoints load either way."""
    speech, style, style_speech, pad, target = _inputs()
    torch.manual_seed(0)
    model = Vast(replace(TINY, input_dropout=0.3))
    assert model.state_dict().keys() == Vast(TINY).state_dict().keys()
    z = model.style(style, style_speech, pad)[0].detach()
    assert not torch.allclose(model(speech, z, target), model(speech, z, target))
    model.eval()
    assert torch.equal(model.generate(speech, z), model.generate(speech, z))
    with pytest.raises(ValueError, match="input_dropout must be in"):
        replace(TINY, input_dropout=1.0)


def test_split_by_mouth_vertex_offset() -> None:
    from talkinghead.face import indices as ix
    from talkinghead.face.model import FaceModel
    from talkinghead.motion.vast.split import mouth_offsets, strong_coefficients

    basis = np.zeros((3, 478, 3), np.float32)
    basis[0, ix.LIPS_ALL, 1] = 1.0  # moves the lips (of the 40 + 15 lip and jaw points, the 40 lips)
    basis[1, ix.BROWS, 1] = 1.0  # moves the brows only
    basis[2, ix.JAW, 0] = 1.0  # moves the jaw (15 points)
    std = np.array([0.1, 0.5, 0.01], np.float32)
    model = FaceModel(np.zeros((478, 3), np.float32), np.zeros((0, 478, 3), np.float32), basis, std,
                      np.array([True, False, True]), {})
    offsets = mouth_offsets(model)
    n_lips, n_jaw = len(ix.LIPS_ALL), len(ix.JAW)
    assert offsets == pytest.approx([0.1 * n_lips / (n_lips + n_jaw), 0.0, 0.01 * n_jaw / (n_lips + n_jaw)])
    assert strong_coefficients(model) == [0] and strong_coefficients(model, share=0.01) == [0, 2]


def test_vast_dataset_items(styled_dataset: Path) -> None:
    from talkinghead.train.datasets import VastDataset

    data = VastDataset(styled_dataset, "train", window=16, style_length=300, seed=0)
    assert data.classes == ["x", "y"]
    for i in (0, len(data) - 1):
        item = data[i]
        assert item["expression"].shape == (16, 64) and item["speech"].shape == (16, len(PHONES))
        assert torch.allclose(item["speech"].sum(1), torch.ones(16))
        valid = int((~item["style_padding"]).sum())
        assert item["style"].shape == (300, 64) and item["style_speech"].shape == (300, len(PHONES))
        assert torch.allclose(item["style_speech"][:valid].sum(1), torch.ones(valid))
        assert not item["style_speech"][valid:].any() and not item["style"][valid:].any()


@pytest.mark.train
def test_lightning_training(styled_dataset: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "vast.pt"
    metrics = train_vast([styled_dataset], ckpt, config=VAST_CONFIGS["tiny"], max_steps=2, batch=2, window=16,
                         style_length=32, quiet=True, accelerator="cpu", devices=1)
    assert all(np.isfinite(metrics[f"train_{k}"]) for k in ("loss", "rec", "kl"))
    assert metrics["train_rec"] < metrics["first_train_rec"], metrics  # the reconstruction loss fell
    model = Vast.load(ckpt)
    assert model.config.strong and model.config.weak and (model.scale != 1).all()


@pytest.mark.train
def test_a_snapshot_is_the_checkpoint_of_the_shorter_run(styled_dataset: Path, tmp_path: Path) -> None:
    """``save_every`` writes OUTPUT_stepN.pt after N steps (not after the last): the weights a run of N steps saves."""
    run = {"config": VAST_CONFIGS["tiny"], "batch": 2, "window": 16, "style_length": 32, "quiet": True,
           "accelerator": "cpu", "devices": 1}
    train_vast([styled_dataset], tmp_path / "long.pt", max_steps=3, save_every=2, **run)  # type: ignore[arg-type]
    train_vast([styled_dataset], tmp_path / "short.pt", max_steps=2, **run)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["long.pt", "long_step2.pt", "short.pt"]
    snapshot, short, long = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("long_step2", "short",
                                                                                          "long"))
    assert snapshot["steps"] == 2 and long["steps"] == 3
    assert all(torch.equal(v, short["state_dict"][k]) for k, v in snapshot["state_dict"].items())
    assert not all(torch.equal(v, long["state_dict"][k]) for k, v in snapshot["state_dict"].items())


def test_train_vast_reads_its_new_options() -> None:
    """``--hold-out FOLD/FOLDS``, ``--mouth-gain``, ``--input-dropout`` and ``--save-every`` on the command line; a
    malformed fold or a step count below 0 is a usage error."""
    import argparse

    from talkinghead.train.vast import COMMAND

    parser = argparse.ArgumentParser()
    COMMAND.arguments(parser)
    args = parser.parse_args(["data/train", "-o", "x.pt", "--hold-out", "1/4", "--mouth-gain", "1.5",
                              "--input-dropout", "0.3", "--save-every", "500"])
    assert args.hold_out == (1, 4) and args.mouth_gain == 1.5 and args.input_dropout == 0.3 and args.save_every == 500
    plain = parser.parse_args(["data/train", "-o", "x.pt"])
    assert plain.hold_out is None and plain.save_every == 0
    for bad in ("4/4", "one/4", "1"):
        with pytest.raises(SystemExit):
            parser.parse_args(["data/train", "-o", "x.pt", "--hold-out", bad])
    for bad in ("-1", "2.5"):
        with pytest.raises(SystemExit):
            parser.parse_args(["data/train", "-o", "x.pt", "--save-every", bad])


@pytest.mark.train
def test_a_held_out_fold_and_the_mouth_gain(styled_dataset: Path, tmp_path: Path) -> None:
    """``hold_out`` trains without one fold and lists its clips in the checkpoint; the config's mouth gain multiplies
    the lower-face coefficients ``vast_expression`` generates and leaves the others as they were."""
    from talkinghead.audio.features import analyse_audio
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.face.model import default_face_model
    from talkinghead.motion.vast.infer import vast_expression
    from talkinghead.nn.checkpoint import checkpoint_meta

    run = {"max_steps": 2, "batch": 2, "window": 16, "style_length": 32, "quiet": True, "accelerator": "cpu",
           "devices": 1}
    ckpt = tmp_path / "vast.pt"
    train_vast([styled_dataset], ckpt, config=replace(VAST_CONFIGS["tiny"], mouth_gain=1.7), hold_out=(1, 3),
               **run)  # type: ignore[arg-type]
    meta, model = checkpoint_meta(ckpt), Vast.load(ckpt)
    assert meta["held_out"] == [str(styled_dataset / "clips" / "b")] and meta["training"]["hold_out"] == "1/3"
    assert model.config.mouth_gain == 1.7
    plain = Vast(replace(model.config, mouth_gain=1.0))
    plain.load_state_dict(model.state_dict())
    clip = load_clip(clip_dir(styled_dataset, "a"))
    features = analyse_audio(clip.audio[:32000].astype(np.float32) / 32768, fps=25.0)
    z = torch.zeros(model.config.style_dim)
    gained, unit = vast_expression(model, features, z), vast_expression(plain.eval(), features, z)
    lower = default_face_model().lower_face[:64]
    assert np.allclose(gained[:, lower], 1.7 * unit[:, lower], atol=1e-6)
    assert np.array_equal(gained[:, ~lower], unit[:, ~lower]) and np.abs(unit[:, lower]).max() > 1e-4
    with pytest.raises(ValueError, match="mouth_gain must be positive"):
        replace(model.config, mouth_gain=0.0)


def test_tiny_renderer(tmp_path: Path) -> None:
    from talkinghead.nn.layers import masked_l1
    from talkinghead.render.vast.model import VastRenderer, composite
    from talkinghead.train.vast import RENDERER_CONFIGS

    torch.manual_seed(0)
    model = VastRenderer(RENDERER_CONFIGS["tiny"])
    g = torch.Generator().manual_seed(0)
    sketch, background = torch.rand(2, 3, 3, 64, 64, generator=g), torch.rand(2, 3, 3, 64, 64, generator=g)
    speech, target = torch.rand(2, 3, len(PHONES), generator=g), torch.rand(2, 3, 3, 64, 64, generator=g)
    out, state = model(sketch, background, speech)
    assert out.shape == (2, 3, 3, 64, 64) and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    model.eval()
    with torch.no_grad():  # frame by frame with the LSTM state carried over = the whole run at once
        steps, st = [], None
        for f in range(3):
            o, st = model(sketch[:, f:f + 1], background[:, f:f + 1], speech[:, f:f + 1], st)
            steps.append(o)
        assert torch.allclose(torch.cat(steps, 1), model(sketch, background, speech)[0], atol=1e-5)
    model.train()
    mask = torch.zeros(2, 3, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1.0
    assert torch.equal(composite(out, target, mask)[..., :16, :], target[..., :16, :])
    losses = optimise(model, lambda: masked_l1(composite(model(sketch, background, speech)[0], target, mask), target,
                                               mask), steps=8, lr=1e-3)
    assert losses[-1] < losses[0]
    model.eval().save(tmp_path / "r.pt")
    again = VastRenderer.load(tmp_path / "r.pt")
    with torch.no_grad():
        assert torch.equal(again(sketch, background, speech)[0], model(sketch, background, speech)[0])


def test_frame_inputs_black_out_the_face_region(one_clip_dataset: Path) -> None:
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.face import indices as ix
    from talkinghead.render.vast.renderer import frame_inputs

    clip = load_clip(clip_dir(one_clip_dataset, "a"))
    crop, mesh = clip.frames([0])[0], clip.meshes[0]
    opened = mesh.copy()
    opened[ix.JAW, 1] += 20  # the target's jaw drops below the template's: the region must cover both
    sketch, background, mask = frame_inputs(crop, opened, mesh)
    chin = np.round(opened[ix.JAW[len(ix.JAW) // 2], :2]).astype(int)
    nose = np.round(mesh[ix.POSE[1], :2]).astype(int)
    assert mask[chin[1], chin[0]] == 1.0 and mask[nose[1], nose[0]] == 1.0 and mask[2, 2] == 0.0
    assert not background[nose[1], nose[0]].any() and not background[chin[1], chin[0]].any()
    assert np.array_equal(background[2, 2], crop[2, 2])
    assert sketch.any() and not sketch[2, 2].any()


@pytest.mark.train
@pytest.mark.slow
def test_train_renderer_and_generate(styled_dataset: Path, media: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from talkinghead.io import read_video

    motion = tmp_path / "vast.pt"
    train_vast([styled_dataset], motion, config=VAST_CONFIGS["tiny"], max_steps=2, batch=2, window=16,
               style_length=32, quiet=True, accelerator="cpu", devices=1)
    template = media / "talking" / "videoretalking_face5.mp4"
    renderer = tmp_path / "renderer.pt"
    cli = [sys.executable, "-m", "talkinghead"]
    proc = subprocess.run([*cli, "train-vast-renderer", str(template), "-o", str(renderer), "--config", "tiny",
                           "--steps", "2", "-q"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and renderer.exists(), proc.stderr
    speech = media / "speech" / "videoretalking_1.wav"
    base = [*cli, "generate", "--video", str(template), "--audio", str(speech), "--method", "vast",
            "--checkpoint", f"vast={motion}", "--size", "256", "-q"]
    out = tmp_path / "vast.mp4"
    proc = subprocess.run([*base, "-o", str(out), "--checkpoint", f"vast_renderer={renderer}", "--style",
                           str(media / "talking" / "videoretalking_face4.mp4")], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    video = read_video(out)
    assert len(video.frames) == 126 and max(video.frames.shape[1:3]) == 256  # 5.02 s of speech at 25 fps
    bad = tmp_path / "bad.mp4"
    proc = subprocess.run([*base, "-o", str(bad), "--renderer", "vast"], capture_output=True, text=True)
    assert proc.returncode == 2 and "train-vast-renderer" in proc.stderr and not bad.exists()


def test_shipped_model_follows_the_phonemes_of_real_speech(one_clip_dataset: Path) -> None:
    """The shipped checkpoint, styled by the clip itself, on a real clip it never saw: the mouth is wider open
    on open vowels than on bilabial closures, and its opening follows the real one."""
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.motion.vast.infer import vast_style
    from talkinghead.train.datasets import clip_speech

    model, clip = Vast.default(), load_clip(clip_dir(one_clip_dataset, "a"))
    speech = clip_speech(clip, model.config.speech)
    n = model.config.max_style_frames
    z = vast_style(model, clip.expression[:n], speech[:n])
    with torch.no_grad():
        coefficients = model.generate(torch.from_numpy(speech)[None], z[None])[0].numpy()
    gap, corr = mouth_follows_phonemes(clip_dir(one_clip_dataset, "a"), coefficients)
    assert gap > 0.015 and corr > 0.3


@pytest.mark.slow
def test_example_renderer_redraws_held_out_frames_of_its_template(media: Path) -> None:
    """The shipped example renderer on the last tenth of its template (never trained on), each frame redrawn from
    its own mesh and speech: the face region is close to the real one, and far closer than the eroded input."""
    from talkinghead.render.vast.model import VastRenderer, composite
    from talkinghead.render.vast.renderer import EXAMPLE_RENDERER, frame_inputs, prepare_template, to_tensor

    model = VastRenderer.load(EXAMPLE_RENDERER)
    template = prepare_template(media / "talking" / "styletalk_KristiNoem.mp4", size=model.config.size,
                                speech=model.config.speech, quiet=True)
    held = range(int(len(template.crops) * 0.9), len(template.crops), 4)
    errors, blank = [], []
    with torch.no_grad():
        for t in held:
            sketch, background, mask = frame_inputs(template.crops[t], template.meshes[t], template.meshes[t])
            out, _ = model(to_tensor(sketch)[None, None], to_tensor(background)[None, None],
                           torch.from_numpy(template.speech[t:t + 1])[None])
            real, m = to_tensor(template.crops[t]), torch.from_numpy(mask)[None]
            face = composite(out[0, 0], real, m)
            errors.append(float(((face - real).abs() * m).sum() / (3 * m.sum())))
            blank.append(float(((to_tensor(background) - real).abs() * m).sum() / (3 * m.sum())))
    assert np.mean(errors) < 0.06 and np.mean(errors) < 0.2 * np.mean(blank)


def test_whisper_features_follow_the_speech(media: Path) -> None:
    """Whisper encoder features at 25 fps of 1 s of silence then 1 s of real speech: one row per frame, and
    the speech frames lie far from the silent ones."""
    from talkinghead.audio.posteriorgram import WHISPER_DIM, whisper_features
    from talkinghead.io import load_audio

    speech = load_audio(media / "speech" / "videoretalking_1.wav")[:16000]
    audio = np.concatenate([np.zeros(16000, np.float32), speech])
    feats = whisper_features(audio, fps=25.0, n_frames=50)
    assert feats.shape == (50, WHISPER_DIM) and np.isfinite(feats).all()
    quiet, loud = feats[2:23], feats[27:48]  # away from the boundary (the encoder's context blurs it)
    spread = np.linalg.norm(quiet - quiet.mean(0), axis=1).mean()
    assert np.linalg.norm(loud - quiet.mean(0), axis=1).mean() > 2 * spread


def test_generated_expressions_average_zero_over_the_output(media: Path) -> None:
    """VAST's and StyleTalk's coefficients are offsets from a clip's mean shape, zero on average over every
    training clip, so both remove the mean of what they generate (an untrained model's constant bias here) and
    keep its motion."""
    from talkinghead.audio.features import analyse_audio
    from talkinghead.io import load_audio
    from talkinghead.motion.styletalk.infer import style_code, styletalk_expression
    from talkinghead.motion.styletalk.model import StyleTalk
    from talkinghead.motion.vast.infer import vast_expression
    from talkinghead.train.styletalk import STYLETALK_CONFIGS

    features = analyse_audio(load_audio(media / "speech" / "videoretalking_1.wav")[:32000], fps=30.0)
    torch.manual_seed(0)
    vast = Vast(TINY).eval()
    styletalk = StyleTalk(replace(STYLETALK_CONFIGS["tiny"], n_expression=12, lower_face=[0, 2, 5])).eval()
    with torch.no_grad():
        raw = vast.generate(torch.from_numpy(np.eye(TINY.speech_dim, dtype=np.float32)[:50])[None],
                            torch.zeros(1, TINY.style_dim))[0].numpy()
    assert np.abs(raw.mean(0)).max() > 1e-3  # the untrained model's output is biased
    for out in (vast_expression(vast, features, torch.zeros(TINY.style_dim)),
                styletalk_expression(styletalk, features, style_code(styletalk, None))):
        assert out.shape[0] == features.n_frames == 60
        assert np.abs(out.mean(0)).max() < 1e-5 and out.std(0).max() > 1e-3
