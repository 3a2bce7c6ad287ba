"""StyleTalk: layers, tiny-config model, style dataset, sync loss on real data, Lightning run, generation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import mouth_follows_phonemes, optimise
from talkinghead.audio.phonemes import PHONE_INDEX, phone_windows
from talkinghead.audio.speech import frame_dim
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.styletalk.model import StyleTalk
from talkinghead.nn.transformer import AttentionPooling, DynamicLinear
from talkinghead.train.iplap import RENDERER_CONFIGS
from talkinghead.train.styletalk import STYLETALK_CONFIGS, train_styletalk

TINY = replace(STYLETALK_CONFIGS["tiny"], n_expression=12, lower_face=[0, 2, 5], dropout=0.0)


def test_dynamic_ffn_with_one_kernel_is_a_plain_linear_layer() -> None:
    torch.manual_seed(0)
    dyn, plain = DynamicLinear(6, 4, 5, k=1), torch.nn.Linear(6, 4)
    with torch.no_grad():
        plain.weight.copy_(dyn.weight[0])
        plain.bias.copy_(dyn.bias[0])
    x, c = torch.randn(3, 7, 6), torch.randn(3, 5)
    assert torch.allclose(dyn(x, c), plain(x), atol=1e-6)
    eight = DynamicLinear(6, 4, 5, k=8)
    pi = eight.mixture(c)
    assert pi.shape == (3, 8) and torch.allclose(pi.sum(-1), torch.ones(3))
    # each sample's output is its own mixture of the 8 kernels
    w = torch.einsum("k,koi->oi", pi[1], eight.weight)
    assert torch.allclose(eight(x, c)[1], x[1] @ w.T + pi[1] @ eight.bias, atol=1e-5)


def test_attention_pooling_ignores_padding() -> None:
    pool = AttentionPooling(8)
    x = torch.randn(2, 6, 8)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[:, 4:] = True
    y = x.clone()
    y[:, 4:] = 100.0
    assert torch.allclose(pool(x, pad), pool(y, pad)) and torch.allclose(pool(x[:, :4]), pool(x, pad), atol=1e-6)


def test_phone_windows_pad_with_silence() -> None:
    w = phone_windows(np.array([3, 4, 5]), 2)
    sil = PHONE_INDEX["SIL"]
    assert w.tolist() == [[sil, sil, 3, 4, 5], [sil, 3, 4, 5, sil], [3, 4, 5, sil, sil]]


def _inputs(b: int = 2, n: int = 10, length: int = 20) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    phones = torch.randint(0, TINY.n_phones, (b, n, 2 * TINY.window + 1), generator=g)
    style = torch.randn(b, length, TINY.style_width, generator=g)  # coefficients + head motion
    pad = torch.zeros(b, length, dtype=torch.bool)
    pad[1, 15:] = True
    return phones, style, pad, torch.randn(b, n, TINY.n_expression, generator=g) * 0.1


@pytest.mark.parametrize("k", [8, 0])
def test_tiny_styletalk(k: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = StyleTalk(replace(TINY, dynamic_k=k))
    phones, style, pad, target = _inputs()
    out, code = model(phones, style, pad)
    assert out.shape == (2, 10, 12) and code.shape == (2, TINY.d_model) and torch.isfinite(out).all()
    losses = optimise(model, lambda: (model(phones, style, pad)[0] - target).abs().mean(), steps=10, lr=1e-3)
    assert losses[-1] < losses[0]
    model.eval()
    model.neutral_style.fill_(0.5)
    model.save(tmp_path / "st.pt")
    again = StyleTalk.load(tmp_path / "st.pt")
    assert again.config == model.config and torch.equal(again.neutral_style, model.neutral_style)
    with torch.no_grad():
        assert torch.equal(again(phones, style, pad)[0], model(phones, style, pad)[0])


@pytest.mark.parametrize("speech", ["whisper", "mel"])
def test_tiny_styletalk_on_frame_rows(speech: str, tmp_path: Path) -> None:
    """The content tokens may be Whisper features or log-mel windows (a linear layer in place of the phone
    embedding): same outputs, training and round trip."""
    torch.manual_seed(0)
    config = replace(TINY, speech=speech)
    model = StyleTalk(config)
    _, style, pad, target = _inputs()
    speech_rows = torch.randn(2, 10, 2 * TINY.window + 1, frame_dim(speech))
    out, _ = model(speech_rows, style, pad)
    assert out.shape == (2, 10, 12) and torch.isfinite(out).all()
    losses = optimise(model, lambda: (model(speech_rows, style, pad)[0] - target).abs().mean(), steps=10, lr=1e-3)
    assert losses[-1] < losses[0]
    model.eval().save(tmp_path / "st.pt")
    again = StyleTalk.load(tmp_path / "st.pt")
    assert again.config.speech == speech
    with torch.no_grad():
        assert torch.equal(again(speech_rows, style, pad)[0], model(speech_rows, style, pad)[0])


def test_input_dropout_acts_in_training_only() -> None:
    """``input_dropout`` drops the frame rows entering the content encoder while training (two passes differ) and
    never at inference (two decodes agree); it adds no weights, so checkpoints load either way. Phone labels have no
    values to drop, and a rate of 1 would drop everything: both refused."""
    torch.manual_seed(0)
    config = replace(TINY, speech="whisper3", input_dropout=0.3)
    model = StyleTalk(config)
    assert model.state_dict().keys() == StyleTalk(replace(config, input_dropout=0.0)).state_dict().keys()
    _, style, pad, _ = _inputs()
    rows = torch.randn(2, 10, 2 * TINY.window + 1, frame_dim("whisper3"))
    assert not torch.allclose(model(rows, style, pad)[0], model(rows, style, pad)[0])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(rows, style, pad)[0], model(rows, style, pad)[0])
    with pytest.raises(ValueError, match="input_dropout must be in"):
        replace(config, input_dropout=1.0)
    with pytest.raises(ValueError, match="not phone labels"):
        replace(TINY, input_dropout=0.3)


def test_lower_and_upper_decoders_own_their_coefficients() -> None:
    model = StyleTalk(TINY).eval()
    phones, style, pad, _ = _inputs()
    with torch.no_grad():
        before = model(phones, style, pad)[0]
        model.upper.tail[-1].bias.add_(1.0)
        after = model(phones, style, pad)[0]
    changed = (after - before).abs().amax((0, 1)) > 0.5
    assert changed.tolist() == [i not in TINY.lower_face for i in range(TINY.n_expression)]


def test_style_intensity_interpolates_towards_neutral() -> None:
    model = StyleTalk(TINY).eval()
    model.neutral_style.copy_(torch.linspace(-1, 1, TINY.d_model))
    code = torch.randn(TINY.d_model)
    assert torch.allclose(model.scaled_style(code, 0.0), model.neutral_style)
    assert torch.allclose(model.scaled_style(code, 1.0), code)
    assert torch.allclose(model.scaled_style(code, 0.5), (code + model.neutral_style) / 2)


def test_style_dataset_draws_style_clips_by_class(styled_dataset: Path) -> None:
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.train.datasets import StyleDataset

    data = StyleDataset(styled_dataset, "train", window=16, style_length=300, seed=0)
    assert data.classes == ["x", "y"] and data.labels == ["x", "x", "y"]
    clip_frames = load_clip(clip_dir(styled_dataset, "a")).n_frames
    assert clip_frames < 300
    for i in range(len(data)):
        item = data[i]
        assert item["expression"].shape == (16, 64) and item["speech"].shape == (16, 11)
        assert item["mels"].shape == (16, 16, 80) and item["style"].shape == (300, 64)
        assert int((~item["style_padding"]).sum()) == clip_frames and not item["style"][clip_frames:].any()
        k = data.index[i][0]
        assert item["label"] == data.classes.index(data.labels[k])
    # the triplet's negative comes from the other class: for clip c (class y) every other clip is class x,
    # which is also c's only choice for the style clip (none of its class): c's own other frames
    c_items = [i for i, (k, _) in enumerate(data.index) if k == 2]
    assert c_items and all(data[i]["label"] == 1 for i in c_items)
    # with Whisper tokens each frame's window holds the stored features of the frames around it
    whisper = StyleDataset(styled_dataset, "train", window=16, style_length=300, speech="whisper", seed=0)
    features = load_clip(clip_dir(styled_dataset, "a")).whisper.astype(np.float32)
    k, start = whisper.index[1]
    rows = whisper[1]["speech"].numpy()
    assert rows.shape == (16, 11, 384) and k == 0 and start == 16
    assert np.array_equal(rows[:, 5], features[16:32]) and np.array_equal(rows[3, 0], features[14])


def _speaker_dataset(one_clip_dataset: Path, root: Path, clips: dict[str, tuple[str, str]],
                     expression: dict[str, float] | None = None) -> Path:
    """The real clip copied as clips of the given (style, speaker); ``expression``: clip -> a constant that
    replaces its expression coefficients."""
    (root / "splits").mkdir(parents=True)
    for cid, (style, speaker) in clips.items():
        shutil.copytree(one_clip_dataset / "clips" / "a", root / "clips" / cid)
        meta_path = root / "clips" / cid / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta.update(clip_id=cid, speaker=speaker, labels={"style": style})
        meta_path.write_text(json.dumps(meta))
        if expression is not None:
            with np.load(root / "clips" / cid / "data.npz") as z:
                arrays = dict(z)
            arrays["expression"] = np.full_like(arrays["expression"], expression[cid])
            np.savez(root / "clips" / cid / "data.npz", **arrays)
    (root / "splits" / "train.txt").write_text("\n".join(clips) + "\n")
    return root


def test_triplets_cross_speakers_for_positives_and_stay_within_for_negatives(one_clip_dataset: Path,
                                                                             tmp_path: Path) -> None:
    from talkinghead.train.datasets import StyleDataset

    clips = {"a": ("x", "p"), "b": ("x", "p"), "c": ("x", "q"), "d": ("y", "p"), "e": ("y", "q"), "f": ("z", "r")}
    _speaker_dataset(one_clip_dataset, tmp_path, clips)
    data = StyleDataset(tmp_path, "train", window=16, seed=0)
    ids = [data.store.clip(k).clip_id for k in range(len(clips))]
    rng = np.random.default_rng(0)

    def draws(anchor: str) -> set[tuple[str, str]]:
        return {tuple(ids[j] for j in data.triplet_clips(ids.index(anchor), rng)) for _ in range(60)}

    assert draws("a") == {("c", "d")}  # same style, other speaker; other style, same speaker
    assert draws("c") == {("a", "e"), ("b", "e")}
    assert {n for _, n in draws("d")} == {"a", "b"} and {p for p, _ in draws("d")} == {"e"}
    assert {p for p, _ in draws("f")} == {"f"}  # alone in its class: itself; no other clip of its speaker:
    assert {n for _, n in draws("f")} == {"a", "b", "c", "d", "e"}  # any clip of another class


def test_style_clips_swap_face_offsets(one_clip_dataset: Path, tmp_path: Path) -> None:
    """Speakers seen in several styles (p, q) have offsets (their mean minus the mean over them); a style clip of
    theirs carries a random one of those offsets instead of its own; r (one style) and padding are untouched."""
    from talkinghead.face.pose import with_head_motion
    from talkinghead.train.datasets import StyleDataset

    clips = {"a": ("x", "p"), "b": ("y", "p"), "c": ("x", "q"), "d": ("y", "q"), "e": ("z", "r")}
    _speaker_dataset(one_clip_dataset, tmp_path, clips, {"a": 3.0, "b": 1.0, "c": -1.0, "d": -3.0, "e": 5.0})
    other = _speaker_dataset(one_clip_dataset, tmp_path / "other", {"f": ("w", "p")}, {"f": 100.0})
    data = StyleDataset([tmp_path, other], "train", window=16, style_length=300, face_offsets=True, seed=0)
    p, q = f"{tmp_path}/p", f"{tmp_path}/q"  # other/p is another speaker, seen in one style
    assert sorted(data.offsets) == [p, q]
    assert np.allclose(data.offsets[p], 2.0) and np.allclose(data.offsets[q], -2.0)
    ids = [data.store.clip(k).clip_id for k in range(len(clips))]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        rows, padding = data._segment(ids.index("a"), rng)
        valid = rows[~padding]
        assert torch.allclose(valid, valid[0, 0].expand_as(valid)) and not rows[padding].any()
        seen.add(round(float(valid[0, 0]), 4))  # 3 - 2 + (+2 or -2)
    assert seen == {3.0, -1.0}
    rows, padding = data._segment(ids.index("e"), rng)
    assert torch.allclose(rows[~padding], torch.tensor(5.0))
    assert not StyleDataset(tmp_path, "train", window=16, seed=0).offsets  # off by default
    # with the head motion: 3 more values a frame, the segment's own head motion, untouched by the offsets
    data = StyleDataset(tmp_path, "train", window=16, style_length=300, face_offsets=True, head_motion=True, seed=0)
    clip = data.store.clip(ids.index("a"))
    rows, padding = data._segment(ids.index("a"), rng)
    k, n = clip.expression.shape[1], int((~padding).sum())
    assert rows.shape == (300, k + 3) and n == clip.n_frames and not rows[padding].any()  # all of it: from 0
    assert float(rows[0, 0]) in (3.0, -1.0)
    own = with_head_motion(clip.expression[:n], clip.rotation[:n])[:, k:]
    assert torch.allclose(rows[:n, k:], torch.from_numpy(own), atol=1e-6)


def test_sequence_sync_loss_prefers_real_sync(one_clip_dataset: Path) -> None:
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.sync.inputs import clip_mels, mesh_mouth
    from talkinghead.sync.model import SyncNet, sequence_sync_loss

    clip = load_clip(clip_dir(one_clip_dataset, "a"))
    mouth = torch.from_numpy(mesh_mouth(clip.canonical))[None]
    mels = torch.from_numpy(clip_mels(clip))[None]
    net = SyncNet.default()
    with torch.no_grad():
        own = sequence_sync_loss(net, mouth, mels)
        reversed_audio = sequence_sync_loss(net, mouth, mels.flip(1))
        shifted = sequence_sync_loss(net, mouth, mels.roll(10, 1))
    assert own < shifted and own < reversed_audio


@pytest.mark.train
@pytest.mark.slow
def test_lightning_training_and_generation(styled_dataset: Path, media: Path, tmp_path: Path) -> None:
    from talkinghead.render.iplap.model import IPLAPRenderer

    renderer_checkpoint = tmp_path / "renderer.pt"
    IPLAPRenderer(replace(RENDERER_CONFIGS["tiny"], size=64)).eval().save(renderer_checkpoint)
    ckpt = tmp_path / "st.pt"
    metrics = train_styletalk([styled_dataset], ckpt, config=STYLETALK_CONFIGS["tiny"], max_steps=2, batch=2,
                              window=16, style_length=32, disc_channels=8, quiet=True, accelerator="cpu",
                              devices=1)
    assert all(np.isfinite(metrics[f"train_{k}"]) for k in ("rec", "vertex", "triplet", "sync", "style",
                                                            "temporal"))
    assert metrics["train_rec"] < metrics["first_train_rec"], metrics  # the reconstruction loss fell
    saved = torch.load(ckpt, weights_only=True)
    assert saved["classes"] == ["x", "y"] and saved["config"]["n_styles"] == 2
    model = StyleTalk.load(ckpt)
    assert model.config.lower_face and model.neutral_style.abs().sum() > 0

    face, speech = media / "faces" / "liveportrait_s5.jpg", media / "speech" / "videoretalking_1.wav"
    out = tmp_path / "styled.mp4"
    base = [sys.executable, "-m", "talkinghead", "generate", "--image", str(face), "--audio", str(speech),
            "--method", "styletalk", "--checkpoint", f"styletalk={ckpt}", "--size", "256", "-q"]
    proc = subprocess.run([*base, "-o", str(out), "--style", str(media / "talking" / "videoretalking_face5.mp4"),
                           "--style-intensity", "1.2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and out.stat().st_size > 0, proc.stderr
    with_iplap = tmp_path / "styled_iplap.mp4"  # StyleTalk's lips and jaw drawn by IP_LAP's renderer
    proc = subprocess.run([*base, "-o", str(with_iplap), "--renderer", "iplap", "--checkpoint",
                           f"renderer={renderer_checkpoint}"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and with_iplap.stat().st_size > 0, proc.stderr
    bad = tmp_path / "bad.mp4"
    proc = subprocess.run([*base, "-o", str(bad), "--style", str(tmp_path / "missing.mp4")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "missing.mp4" in proc.stderr and not bad.exists()


@pytest.mark.train
def test_styletalk_trained_without_a_fold(styled_dataset: Path, tmp_path: Path) -> None:
    """``hold_out`` leaves one fold of speakers out (clip b; a and c still span both style classes) and lists its clips
    in the checkpoint."""
    from talkinghead.nn.checkpoint import checkpoint_meta

    ckpt = tmp_path / "st.pt"
    train_styletalk([styled_dataset], ckpt, config=STYLETALK_CONFIGS["tiny"], max_steps=1, batch=2, window=16,
                    style_length=32, disc_channels=8, hold_out=(1, 3), quiet=True, accelerator="cpu", devices=1)
    meta = checkpoint_meta(ckpt)
    assert meta["held_out"] == [str(styled_dataset / "clips" / "b")] and meta["training"]["hold_out"] == "1/3"
    assert meta["classes"] == ["x", "y"]


def test_train_styletalk_reads_its_options() -> None:
    """The auxiliary loss weights, ``--input-dropout``, ``--no-dynamic`` and ``--save-every`` reach the config and
    the run; unset, the weights are the config's; a dropout of 1, or on phone labels, is a one-line error."""
    import argparse

    from talkinghead.train.styletalk import COMMAND, config_from_args

    parser = argparse.ArgumentParser()
    COMMAND.arguments(parser)
    args = parser.parse_args(["data/train", "-o", "x.pt", "--sync-weight", "0.2", "--temporal-weight", "0.5",
                              "--no-dynamic", "--save-every", "750", "--speech", "whisper3", "--input-dropout", "0.3"])
    config = config_from_args(args)
    assert (config.sync_weight, config.style_weight, config.temporal_weight) == (0.2, 1.0, 0.5)
    assert config.dynamic_k == 0 and config.speech == "whisper3" and args.save_every == 750
    assert config.input_dropout == 0.3
    plain = config_from_args(parser.parse_args(["data/train", "-o", "x.pt"]))
    assert plain == STYLETALK_CONFIGS["small"] and plain.dynamic_k == 8 and plain.input_dropout == 0.0
    for bad, message in (("1", "must be in"), ("0.3", "not phone labels")):
        extra = [] if bad == "0.3" else ["--speech", "whisper3"]
        with pytest.raises(TalkingHeadError, match=f"--input-dropout: .*{message}"):
            config_from_args(parser.parse_args(["data/train", "-o", "x.pt", "--input-dropout", bad, *extra]))


@pytest.mark.train
def test_snapshots_leave_the_training_as_it_was(styled_dataset: Path, tmp_path: Path) -> None:
    """A snapshot (``save_every``) computes the neutral style code in eval mode halfway; the run goes on in training
    mode (dropout on) exactly as without it, and the snapshot holds the earlier weights and its own style code."""
    run = {"config": STYLETALK_CONFIGS["tiny"], "max_steps": 2, "batch": 2, "window": 16, "style_length": 32,
           "disc_channels": 8, "quiet": True, "accelerator": "cpu", "devices": 1}
    train_styletalk([styled_dataset], tmp_path / "a.pt", save_every=1, **run)  # type: ignore[arg-type]
    train_styletalk([styled_dataset], tmp_path / "b.pt", **run)  # type: ignore[arg-type]
    a, b, snapshot = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("a", "b", "a_step1"))
    assert snapshot["steps"] == 1 and a["steps"] == 2
    assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items())
    assert not torch.equal(snapshot["state_dict"]["neutral_style"], a["state_dict"]["neutral_style"])


def test_shipped_model_follows_the_phonemes_of_real_speech(one_clip_dataset: Path) -> None:
    """The shipped checkpoint, styled by the clip itself, on a real clip it never saw: the mouth is wider
    open on open vowels than on bilabial closures, and its opening follows the real one."""
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.motion.styletalk.infer import style_code, style_frames

    from talkinghead.motion.styletalk.model import content_inputs
    from talkinghead.train.datasets import clip_frame_vectors

    model, clip = StyleTalk.default(), load_clip(clip_dir(one_clip_dataset, "a"))
    code = style_code(model, style_frames(model, clip.expression, clip.rotation))
    rows = None if model.config.speech == "phones" else clip_frame_vectors(model.config.speech, clip)
    with torch.no_grad():
        coefficients = model.decode(torch.from_numpy(content_inputs(model.config, clip.phone_ids, rows))[None],
                                    code[None])[0].numpy()
    gap, corr = mouth_follows_phonemes(clip_dir(one_clip_dataset, "a"), coefficients)
    assert gap > 0.02 and corr > 0.3
