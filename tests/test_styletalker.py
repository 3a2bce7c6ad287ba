"""StyleTalker: the volume-preserving sequence flow of its prior, the model, its training and its pipeline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_pasted_into_face, optimise
from talkinghead.motion.styletalker.config import StyleTalkerConfig
from talkinghead.motion.styletalker.model import StyleTalker, gaussian_smooth
from talkinghead.nn.flows import SequenceFlow

TINY = StyleTalkerConfig(w_dim=8, n_latents=6, manipulated=3, audio_channels=4, audio_dim=8, z_dim=2, hidden=16,
                         prior_hidden=16, flow_steps=2, flow_hidden=8)


def _random_flow(dim: int = 4, condition: int = 3) -> SequenceFlow:
    torch.manual_seed(0)
    flow = SequenceFlow(dim, condition, hidden=8, steps=3).double()
    with torch.no_grad():  # away from the identity it starts as
        for p in flow.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return flow


def test_sequence_flow_is_exactly_invertible() -> None:
    flow = _random_flow()
    x, c = torch.randn(2, 7, 4, dtype=torch.float64), torch.randn(2, 7, 3, dtype=torch.float64)
    y = flow(x, c)
    assert (y - x).abs().max() > 0.1  # it does something
    assert torch.allclose(flow.inverse(y, c), x, atol=1e-10)
    assert torch.allclose(flow(flow.inverse(x, c), c), x, atol=1e-10)


def test_sequence_flow_preserves_volume() -> None:
    flow = _random_flow()
    c = torch.randn(1, 3, 3, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: flow(v.view(1, 3, 4), c).reshape(-1),
                                             torch.randn(12, dtype=torch.float64))
    sign, logdet = torch.linalg.slogdet(jac)
    assert sign != 0 and abs(logdet.item()) < 1e-9


def test_sequence_flow_is_causal_and_learns() -> None:
    flow = _random_flow()
    x, c = torch.randn(1, 6, 4, dtype=torch.float64), torch.randn(1, 6, 3, dtype=torch.float64)
    changed = x.clone()
    changed[:, 4:] += 1.0
    assert torch.allclose(flow(x, c)[:, :4], flow(changed, c)[:, :4])  # frame t never sees later frames
    data = torch.randn(64, 5, 4, dtype=torch.float64) * torch.tensor([0.5, 2.0, 1.0, 1.0], dtype=torch.float64) + 3
    cond = torch.zeros(64, 5, 3, dtype=torch.float64)
    losses = optimise(flow, lambda: 0.5 * flow.inverse(data, cond).pow(2).mean(), steps=150, lr=0.02)
    assert losses[-1] < 0.3 * losses[0]  # the base-side negative log-likelihood (log-det is 0)


def _inputs(b: int = 2, t: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(b, t, 6, 8), torch.randn(b, 6, 8), torch.randn(b, t, 16, 80)


def test_gaussian_smoothing() -> None:
    x = torch.randn(2, 50, 3)
    assert torch.equal(gaussian_smooth(x, 0.0), x)
    assert torch.allclose(gaussian_smooth(torch.ones(1, 9, 2) * 3, 2.0), torch.full((1, 9, 2), 3.0))
    assert gaussian_smooth(x, 2.0).std() < 0.6 * x.std()


def test_styletalker_shapes_start_and_round_trip(tmp_path: Path) -> None:
    """Before training every frame is sigmoid(K3 bias) w_ref (K3 starts at a bias, K4 at zero); only the first
    ``manipulated`` style vectors ever move; the per-block KL, samples and posterior latents have their shapes;
    save/load keeps everything."""
    from talkinghead.motion.styletalker.model import K3_BIAS

    torch.manual_seed(0)
    model = StyleTalker(TINY)
    w, w_ref, mels = _inputs()
    w_hat, kl, prior_nll = model(w, w_ref, mels)
    assert w_hat.shape == w.shape and kl.shape == prior_nll.shape == (3,) and torch.isfinite(kl).all()
    start = torch.sigmoid(torch.tensor(K3_BIAS)) * w_ref[:, None, :3].expand(-1, 7, -1, -1)
    assert torch.allclose(w_hat[:, :, :3], start, atol=1e-6)
    assert torch.equal(w_hat[:, :, 3:], w_ref[:, None, 3:].expand(-1, 7, -1, -1))
    with torch.no_grad():
        for block in model.blocks:
            block.k4.weight.normal_()
    model.eval()
    w_hat, *_ = model(w, w_ref, mels)
    assert not torch.allclose(w_hat[:, :, :3], start)
    assert torch.equal(w_hat[:, :, 3:], w_ref[:, None, 3:].expand(-1, 7, -1, -1))
    gen = model.generate(w_ref, mels, generator=torch.Generator().manual_seed(3))
    z = model.motion_latents(w, mels)
    assert gen.shape == w.shape and z.shape == (2, 7, TINY.motion_dim) and torch.isfinite(gen).all()
    assert model.drive(z, w_ref, mels).shape == w.shape
    model.save(tmp_path / "st.pt")
    again = StyleTalker.load(tmp_path / "st.pt")
    assert again.config == TINY
    assert torch.equal(again.generate(w_ref, mels, generator=torch.Generator().manual_seed(3)), gen)


def test_two_way_manipulation_follows_eq_11() -> None:
    """Eq. 11: c'_t = sigmoid(K1(w_ref)) c_t + K2(w_ref); w^_t = sigmoid(K3(c'_t)) w_ref + K4(c'_t). With K3's
    gate open and K4 zero the block returns w_ref whatever the motion; with K1's gate closed c' = K2(w_ref), so the
    reference alone sets the output (the motion latents and audio no longer reach it); with K1 open they do."""
    torch.manual_seed(0)
    block = StyleTalker(TINY).blocks[0]
    z, audio, w_ref = torch.randn(2, 7, 2), torch.randn(2, 7, TINY.audio_features), torch.randn(2, 8)
    with torch.no_grad():
        for k in (block.k1, block.k2, block.k3, block.k4):
            k.weight.normal_()
            k.bias.normal_()
        block.k3.weight.zero_()
        block.k3.bias.fill_(50.0)
        block.k4.weight.zero_()
        block.k4.bias.zero_()
        assert torch.allclose(block(z, audio, w_ref), w_ref[:, None].expand(-1, 7, -1))
        block.k3.weight.normal_()
        block.k4.weight.normal_()
        block.k1.weight.zero_()
        block.k1.bias.fill_(-50.0)
        closed = block(z, audio, w_ref)
        assert torch.allclose(closed, block(torch.randn_like(z), torch.randn_like(audio), w_ref), atol=1e-6)
        assert torch.allclose(closed[:, :1].expand_as(closed), closed, atol=1e-6)
        block.k1.bias.fill_(50.0)
        assert not torch.allclose(block(z, audio, w_ref), block(torch.randn_like(z), audio, w_ref), atol=1e-3)


def test_free_bits_floor_each_blocks_kl() -> None:
    """A block whose KL is under the floor counts as the floor and its KL gets no gradient, but its prior still
    fits (through the prior's NLL, whose value cancels); one above counts as it is, its NLL unused."""
    from talkinghead.train.styletalker import free_bits_kl

    kl = torch.tensor([0.1, 0.5], requires_grad=True)
    nll = torch.tensor([3.0, 4.0], requires_grad=True)
    loss = free_bits_kl(kl, nll, 0.25)
    loss.backward()
    assert torch.isclose(loss, torch.tensor(0.375)) and kl.grad is not None and nll.grad is not None
    assert torch.equal(kl.grad, torch.tensor([0.0, 0.5])) and torch.equal(nll.grad, torch.tensor([0.5, 0.0]))


def test_code_windows_and_the_motion_variance() -> None:
    """Stage 1's items: a window of one clip's codes and speech and another frame's code of that clip; the motion
    variance is twice the codes' variance within clips over the manipulated vectors, weighted by frames."""
    from talkinghead.train.styletalker import CodeWindows, motion_variance

    codes = [np.arange(10, dtype=np.float16)[:, None, None].repeat(3, 1).repeat(2, 2),
             np.zeros((6, 3, 2), np.float16)]
    codes[0][:, 2] = 100  # not manipulated
    speech = [np.arange(10, dtype=np.float32)[:, None], np.arange(6, dtype=np.float32)[:, None]]
    data = CodeWindows(codes, speech, window=4, stride=2, seed=0)
    assert len(data) == 4 + 2
    for i in range(len(data)):
        item = data[i]
        k, start = data.index[i]
        assert torch.equal(item["codes"], torch.from_numpy(codes[k][start:start + 4].astype(np.float32)))
        assert torch.equal(item["speech"], torch.from_numpy(speech[k][start:start + 4]))
        if k == 0:  # frame r's codes are r (the unmanipulated vector 100)
            r = int(item["reference"][0, 0])
            assert not start <= r < start + 4
            assert torch.equal(item["reference"], torch.from_numpy(codes[0][r].astype(np.float32)))
    assert motion_variance(codes, 2) == pytest.approx(2 * np.var(np.arange(10)) * 10 / 16)


def test_stage_1_lowers_its_loss_and_caches_the_codes(tmp_path: Path) -> None:
    """Stage 1 fits StyleTalker in code space (a few steps of it lower the relative latent error) and validates the
    decoded codes, before any mouth gain; the encoder's codes of a clip store are written to the cache and read
    back, and recomputed for another encoder's name."""
    from talkinghead.train.styletalker import CodeWindows, StyleTalkerCodeModule, cached_codes

    class Store:
        keys = ((Path("root"), "clip"),)

        def __init__(self) -> None:
            self.reads = 0

        def lengths(self) -> list[int]:
            return [3]

        def __len__(self) -> int:
            return 1

        def clip(self, k: int) -> object:
            self.reads += 1
            return type("Clip", (), {"n_frames": 3, "frames": lambda _, idx: np.full((len(idx), 32, 32, 3), 128,
                                                                                      np.uint8)})()

    from talkinghead.render.stylegan.model import Encoder
    from talkinghead.train.stylegan import STYLEGAN_CONFIGS

    torch.manual_seed(0)
    encoder, store = Encoder(STYLEGAN_CONFIGS["feature-tiny"].encoder).eval(), Store()
    first = cached_codes(encoder, store, tmp_path / "codes.npz", "a", quiet=True)  # type: ignore[arg-type]
    again = cached_codes(encoder, store, tmp_path / "codes.npz", "a", quiet=True)  # type: ignore[arg-type]
    assert store.reads == 1 and first[0].shape == (3, encoder.config.n_latents, encoder.config.w_dim)
    assert np.array_equal(first[0], again[0]) and first[0].dtype == np.float16
    cached_codes(encoder, store, tmp_path / "codes.npz", "b", quiet=True)  # type: ignore[arg-type]
    assert store.reads == 2

    rng = np.random.default_rng(0)
    codes = [rng.normal(size=(12, 6, 8)).astype(np.float16) for _ in range(2)]
    speech = [rng.normal(size=(12, 5, 384)).astype(np.float32) for _ in range(2)]
    module = StyleTalkerCodeModule(StyleTalker(replace(TINY, speech="whisper")), 2.0, lr=3e-3)
    batch = torch.utils.data.default_collate([item for item in CodeWindows(codes, speech, window=6, stride=3,
                                                                            seed=0)])
    losses = optimise(module.model, lambda: module._losses(batch)[1]["latent"], steps=15, lr=3e-3)
    assert losses[-1] < losses[0]
    # validation scores the decoded codes: a mouth gain, which only inference applies, does not change them
    logged: list[dict] = []
    for gain in (1.0, 5.0):
        model = StyleTalker(replace(TINY, speech="whisper", mouth_gain=gain))
        model.load_state_dict(module.model.state_dict(), strict=False)
        if gain != 1.0:
            model.set_mouth_direction(torch.randn(TINY.manipulated * TINY.w_dim))
        scored = StyleTalkerCodeModule(model.eval(), 2.0, lr=3e-3)
        scored.log_dict = lambda scores, **_: logged.append(scores)  # type: ignore[method-assign]
        torch.manual_seed(0)
        scored.validation_step(batch, 0)
    assert torch.equal(logged[0]["val_prior_error"], logged[1]["val_prior_error"])


def test_mouth_probe_reads_the_opening_and_the_cross_term_trains_the_decoder_only() -> None:
    """The probe recovers an opening written linearly into the codes (over clips with their own offsets), its pair
    variance is twice the opening's variance within clips; the cross term is 0 for the real codes, and its
    gradient reaches the decoder but not the posterior (the rolled latents are detached); steps on it lower it."""
    from talkinghead.train.styletalker import cross_mouth_error, fit_mouth_probe, mouth_error

    rng = np.random.default_rng(0)
    openings = [rng.normal(size=40) * 0.1 + k for k in range(3)]
    codes = [rng.normal(size=(40, 6, 8)) * 0.01 + rng.normal(size=(1, 6, 8)) for _ in range(3)]
    for c, o in zip(codes, openings):
        c[:, 1, 2] += 5 * o
    weights, variance = fit_mouth_probe(codes, openings, 3, penalty=1e-6)
    for c, o in zip(codes, openings):
        x = c[:, :3].reshape(40, -1)
        assert np.corrcoef((x - x.mean(0)) @ weights, o)[0, 1] > 0.999
    assert variance == pytest.approx(2 * np.mean([o.var() for o in openings]), rel=1e-3)

    torch.manual_seed(0)
    model = StyleTalker(TINY)
    w, w_ref, mels = _inputs()
    probe = torch.from_numpy(weights)
    assert mouth_error(w, w, probe, variance) == 0
    audio = model.encode_audio(mels)
    _, _, _, z = model.reconstruct(w, w_ref, audio)
    cross_mouth_error(model, z, audio, w_ref, w, probe, variance).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.blocks[0].posterior_rnn.parameters())
    assert model.blocks[0].k4.weight.grad.abs().sum() > 0

    def loss() -> torch.Tensor:
        a = model.encode_audio(mels)
        return cross_mouth_error(model, model.reconstruct(w, w_ref, a)[3], a, w_ref, w, probe, variance)

    losses = optimise(model, loss, steps=20, lr=3e-3)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("speech", ["whisper", "phones"])
def test_styletalker_on_windows_of_frame_features(speech: str, tmp_path: Path) -> None:
    """The speech switch: a window of Whisper features or phone one-hots per frame through a small MLP in place of
    the mel SE-ResNet; a training step lowers the loss and the model round-trips with its kind."""
    from talkinghead.audio.speech import input_shape

    torch.manual_seed(0)
    config = replace(TINY, speech=speech)
    model = StyleTalker(config)
    w, w_ref, _ = _inputs()
    speech_inputs = torch.randn(2, 7, *input_shape(speech))
    w_hat, kl, _ = model(w, w_ref, speech_inputs)
    assert w_hat.shape == w.shape and torch.isfinite(kl).all() and model.encode_audio(speech_inputs).shape == (2, 7, 8)

    def loss() -> torch.Tensor:
        out, divergence, _ = model(w, w_ref, speech_inputs)
        return (out[:, :, :3] - w[:, :, :3]).pow(2).mean() + 0.1 * divergence.mean()

    losses = optimise(model, loss, steps=20, lr=3e-3)
    assert losses[-1] < losses[0]
    model.eval().save(tmp_path / "st.pt")
    again = StyleTalker.load(tmp_path / "st.pt")
    gen = torch.Generator().manual_seed(3)
    assert again.config.speech == speech
    assert torch.equal(again.generate(w_ref, speech_inputs, generator=gen),
                       model.generate(w_ref, speech_inputs, generator=torch.Generator().manual_seed(3)))


def test_speech_dropout_acts_in_training_only(tmp_path: Path) -> None:
    """``speech_dropout`` zeroes that share of the speech inputs in training mode, none in eval mode (what generation
    runs in); a checkpoint saved without the field (before it existed) loads with none."""
    from talkinghead.audio.speech import input_shape

    torch.manual_seed(0)
    model = StyleTalker(replace(TINY, speech="whisper", speech_dropout=0.5))
    seen: list[torch.Tensor] = []
    model.audio_encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    speech = torch.rand(2, 7, *input_shape("whisper")) + 1.0
    model.train().encode_audio(speech)
    dropped = (seen[-1] == 0).float().mean().item()
    assert 0.45 < dropped < 0.55 and torch.allclose(seen[-1][seen[-1] != 0], 2 * speech[seen[-1] != 0])
    model.eval().encode_audio(speech)
    assert torch.equal(seen[-1], speech)
    plain = StyleTalker(replace(TINY, speech="whisper"))
    plain.save(tmp_path / "old.pt")
    blob = torch.load(tmp_path / "old.pt", weights_only=False)
    del blob["config"]["speech_dropout"]
    torch.save(blob, tmp_path / "old.pt")
    assert StyleTalker.load(tmp_path / "old.pt").config.speech_dropout == 0.0


def test_mouth_gain_scales_the_offset_along_the_mouth_direction_at_inference(tmp_path: Path) -> None:
    """With ``mouth_gain`` g the codes generated (prior samples and driven latents) are the same model's codes at gain
    1 with the manipulated vectors' offset from the reference, along the stored unit mouth direction, times g; the
    rest of the offset and the other vectors are unchanged. The direction round-trips; gain 1 stores none (older
    checkpoints load as they are), and a zero probe is refused."""
    torch.manual_seed(0)
    plain = StyleTalker(TINY).eval()
    assert not hasattr(plain, "mouth_direction")
    model = StyleTalker(replace(TINY, mouth_gain=3.0)).eval()
    model.load_state_dict(plain.state_dict(), strict=False)
    probe = torch.randn(TINY.manipulated * TINY.w_dim)
    model.set_mouth_direction(probe)
    u = probe / probe.norm()
    assert torch.allclose(model.mouth_direction, u)
    _, w_ref, mels = _inputs()

    def gen(m: StyleTalker) -> torch.Tensor:
        return m.generate(w_ref, mels, generator=torch.Generator().manual_seed(1))

    base, out = gen(plain), gen(model)
    m = TINY.manipulated
    d0 = (base[:, :, :m] - w_ref[:, None, :m]).flatten(2)
    d1 = (out[:, :, :m] - w_ref[:, None, :m]).flatten(2)
    assert torch.allclose(d1 @ u, 3.0 * (d0 @ u), atol=1e-5) and (d0 @ u).abs().mean() > 0
    assert torch.allclose(d1 - (d1 @ u)[..., None] * u, d0 - (d0 @ u)[..., None] * u, atol=1e-5)
    assert torch.equal(out[:, :, m:], base[:, :, m:])
    z = torch.randn(2, 7, TINY.motion_dim)
    assert torch.allclose(model.exaggerate_mouth(plain.drive(z, w_ref, mels), w_ref), model.drive(z, w_ref, mels))
    model.save(tmp_path / "gain.pt")
    again = StyleTalker.load(tmp_path / "gain.pt")
    assert again.config.mouth_gain == 3.0 and torch.equal(again.mouth_direction, model.mouth_direction)
    with pytest.raises(ValueError, match="nonzero"):
        model.set_mouth_direction(torch.zeros_like(probe))
    with pytest.raises(ValueError, match="stores no mouth direction"):
        plain.set_mouth_direction(probe)


def test_speech_mouth_map_moves_only_the_mouth_component_by_the_speech(tmp_path: Path) -> None:
    """With a ``mouth_window`` the generated codes' offset along the mouth direction keeps the decoded codes' mean
    over the utterance and takes its changes from the speech map over the speech inputs' centre frames (less their
    mean; the edge frames repeated); the rest of the offset and the other vectors stay as decoded; then the gain
    multiplies it. The map round-trips; mel inputs and a wrong-shaped map are refused."""
    from talkinghead.audio.speech import input_shape

    torch.manual_seed(0)
    config = replace(TINY, speech="phones", mouth_window=2, mouth_gain=2.0)
    plain = StyleTalker(replace(config, mouth_window=0, mouth_gain=1.0)).eval()
    model = StyleTalker(config).eval()
    model.load_state_dict(plain.state_dict(), strict=False)
    probe = torch.randn(TINY.manipulated * TINY.w_dim)
    model.set_mouth_direction(probe)
    u = probe / probe.norm()
    kernel = torch.randn(5, input_shape("phones")[1])
    model.set_speech_mouth(kernel)
    _, w_ref, _ = _inputs()
    speech = torch.randn(2, 7, *input_shape("phones"))
    base = plain.generate(w_ref, speech, generator=torch.Generator().manual_seed(1))
    out = model.generate(w_ref, speech, generator=torch.Generator().manual_seed(1))
    rows = speech[:, :, 2] - speech[:, :, 2].mean(1, keepdim=True)
    said = torch.stack([sum(rows[b, min(max(t + j, 0), 6)] @ kernel[j + 2] for j in range(-2, 3)) for b in range(2)
                        for t in range(7)]).view(2, 7)
    m = TINY.manipulated
    d0, d1 = ((x[:, :, :m] - w_ref[:, None, :m]).flatten(2) for x in (base, out))
    along = (d0 @ u).mean(1, keepdim=True) + said - said.mean(1, keepdim=True)
    assert torch.allclose(d1 @ u, 2.0 * along, atol=1e-4) and said.std() > 0.1
    assert torch.allclose(model.speech_mouth_motion(speech), said - said.mean(1, keepdim=True), atol=1e-5)
    with pytest.raises(ValueError, match="no speech mouth map"):
        plain.speech_mouth_motion(speech)
    assert torch.allclose(d1 - (d1 @ u)[..., None] * u, d0 - (d0 @ u)[..., None] * u, atol=1e-5)
    assert torch.equal(out[:, :, m:], base[:, :, m:])
    z = torch.randn(2, 7, TINY.motion_dim)
    assert torch.allclose(model.drive(z, w_ref, speech, mouth_gain=1.0),
                          model.speak_mouth(plain.drive(z, w_ref, speech), w_ref, speech), atol=1e-6)
    model.save(tmp_path / "map.pt")
    assert torch.equal(StyleTalker.load(tmp_path / "map.pt").speech_mouth, kernel)
    with pytest.raises(ValueError, match="finite numbers"):
        model.set_speech_mouth(kernel[1:])
    with pytest.raises(ValueError, match="frame-level speech"):
        replace(TINY, mouth_window=2)


def test_speech_mouth_map_fit_recovers_a_planted_filter() -> None:
    """:func:`fit_speech_mouth` on openings that are a known filter of the speech frame vectors (plus a constant per
    clip) gives that filter per window frame, divided by the mouth direction's slope."""
    from talkinghead.train.styletalker import fit_speech_mouth

    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((5, 4))
    rows = [rng.standard_normal((300, 4)) + rng.standard_normal(4) for _ in range(6)]
    openings = [sum(np.pad(r, ((2, 2), (0, 0)), mode="edge")[j:j + len(r)] @ kernel[j] for j in range(5))
                + rng.standard_normal() for r in rows]
    fitted = fit_speech_mouth(rows, openings, 2, slope=2.0, penalty=1e-6)
    assert fitted.shape == (5, 4) and fitted.dtype == np.float32
    assert np.allclose(fitted, kernel / 2.0, atol=1e-3)


def test_prior_samples_differ_by_seed_and_match_its_density() -> None:
    """Different seeds give different motion (diversity > 0), the same seed the same; sampling at temperature 0
    follows every block prior's means, which score higher under its own log-density than random latents; the first
    frame's prior depends on the reference's code (Eq. 7's p(z_0 | w_0))."""
    torch.manual_seed(0)
    model = StyleTalker(TINY).eval()
    _, w_ref, mels = _inputs()
    audio = model.encode_audio(mels)
    a = model.sample_latents(w_ref, audio, generator=torch.Generator().manual_seed(1))
    b = model.sample_latents(w_ref, audio, generator=torch.Generator().manual_seed(2))
    assert a.shape == (2, 7, TINY.motion_dim) and (a - b).abs().mean() > 0.1
    assert torch.equal(a, model.sample_latents(w_ref, audio, generator=torch.Generator().manual_seed(1)))
    mode = model.sample_latents(w_ref, audio, temperature=0.0)
    with torch.no_grad():
        assert (model.log_prior(mode, audio, w_ref).sum(0) > model.log_prior(a, audio, w_ref).sum(0)).all()
        other = model.sample_latents(w_ref + 1.0, audio, temperature=0.0)
    assert not torch.allclose(other[:, 0], mode[:, 0])


@pytest.mark.slow
def test_styletalker_training_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = StyleTalker(TINY)
    w, w_ref, mels = _inputs()

    def loss() -> torch.Tensor:
        w_hat, kl, _ = model(w, w_ref, mels)
        return (w_hat[:, :, :3] - w[:, :, :3]).pow(2).mean() + 0.1 * kl.mean()

    losses = optimise(model, loss, steps=40, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0]


def test_video_patch_discriminator() -> None:
    from talkinghead.nn.discriminator import VideoPatchDiscriminator

    scores = VideoPatchDiscriminator(channels=4, layers=3)(torch.randn(2, 8, 3, 32, 32))
    assert scores.shape == (2, 2, 4, 4) and torch.isfinite(scores).all()


@pytest.mark.slow
def test_the_generators_mouth_direction_opens_the_drawn_mouth(one_clip_dataset: Path) -> None:
    """:func:`fit_generator_mouth` on the shipped generator and encoder and a real clip's first frame gives a
    direction along which the drawn mouth opens: stepped either way from the reference's codes, the drawn opening
    rises with the step (from the reference by about the direction's norm per unit), and by twice as much as it
    moves along the first principal direction of the codes' motion at the same steps; a wrong mouth_axis is
    refused."""
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.metrics.mouth import crop_openings
    from talkinghead.render.stylegan.infer import crops_tensor, encode_crops, to_crops
    from talkinghead.render.stylegan.model import Encoder, Generator
    from talkinghead.train.styletalker import fit_generator_mouth

    generator, encoder = Generator.default(), Encoder.default()
    m = generator.config.motion_latents
    clip = load_clip(clip_dir(one_clip_dataset, "a"))
    frames = clip.frames(range(0, clip.n_frames, 3))
    codes = encode_crops(encoder, frames).numpy()
    g = fit_generator_mouth(generator, encoder, [frames[0]], [codes], m, components=8, quiet=True)
    assert g.shape == (m * generator.config.w_dim,) and np.isfinite(g).all()
    offsets = codes[:, :m].reshape(len(codes), -1)
    first = np.linalg.svd(offsets - offsets.mean(0), full_matrices=False)[2][0]
    ref_codes, ref_map = encoder.encode(crops_tensor(frames[:1], generator.config.size))

    def opened(direction: np.ndarray, steps: np.ndarray) -> np.ndarray:
        drawn = ref_codes.expand(len(steps), -1, -1).clone()
        drawn[:, :m] += torch.from_numpy(steps[:, None] * direction).float().view(len(steps), m, -1)
        with torch.no_grad():
            return crop_openings(to_crops(generator(drawn, noise="none", reference=(ref_map, ref_codes))[0]))

    size = 2 * np.std(offsets @ first)
    steps = np.array([-size, -size / 2, 0, size / 2, size])
    along, across = opened(g / np.linalg.norm(g), steps), opened(first, steps)
    assert np.all(np.diff(along) > -1e-3) and along[-1] - along[0] > 0.03, along  # (a closed mouth stays closed)
    slope = (along[-1] - along[2]) / size  # opening from the reference (a closed mouth closes no further)
    assert 0.5 < slope / np.linalg.norm(g) < 2, (slope, np.linalg.norm(g))
    assert along[-1] - along[0] > 2 * (across.max() - across.min()), (along, across)
    with pytest.raises(ValueError, match="mouth_axis"):
        replace(TINY, mouth_axis="jaw")


@pytest.mark.train
@pytest.mark.slow
def test_train_styletalker_stores_the_generators_mouth_direction(one_clip_dataset: Path, tmp_path: Path) -> None:
    """With ``mouth_axis`` generator (no training steps, the shipped generator and encoder) the saved model's mouth
    direction is the generator's, not the probe's, and its speech map is the probe's same ridge over another slope."""
    from talkinghead.train.styletalker import STYLETALKER_CONFIGS, CodeStage, train_styletalker

    config = replace(STYLETALKER_CONFIGS["tiny"], speech="phones", mouth_gain=1.5, mouth_window=2)
    paths = {axis: tmp_path / f"{axis}.pt" for axis in ("probe", "generator")}
    for axis, path in paths.items():
        train_styletalker([one_clip_dataset], path, stylegan=None, syncnet=None, max_steps=0, quiet=True,
                          config=replace(config, mouth_axis=axis), code=CodeStage(steps=0, cache=tmp_path))
    probe, generator = (StyleTalker.load(path) for path in paths.values())
    assert generator.config.mouth_axis == "generator" and abs(generator.mouth_direction.norm().item() - 1) < 1e-3
    cosine = (probe.mouth_direction @ generator.mouth_direction).item()
    assert abs(cosine) < 0.9, cosine
    maps = [model.speech_mouth.flatten().double() for model in (probe, generator)]
    assert torch.isfinite(maps[1]).all() and not torch.allclose(maps[0], maps[1])
    assert torch.nn.functional.cosine_similarity(*maps, dim=0) > 0.999  # one ridge over two slopes


@pytest.fixture(scope="module")
def tiny_models(one_clip_dataset: Path, tiny_stylegan: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, Path]:
    """A tiny StyleTalker trained for a few steps on the tiny generator and encoder, with the untrained tiny
    image SyncNet (phone inputs, with a mouth gain and a speech mouth map, so the probe's direction and the map are
    stored)."""
    from talkinghead.train.styletalker import STYLETALKER_CONFIGS, CodeStage, train_styletalker

    path = tmp_path_factory.mktemp("styletalker") / "st.pt"
    metrics = train_styletalker([one_clip_dataset], path, stylegan=tiny_stylegan, syncnet=tiny_stylegan / "sync.pt",
                                config=replace(STYLETALKER_CONFIGS["tiny"], speech="phones", mouth_gain=2.0,
                                               mouth_window=2), max_steps=2, batch=2,
                                window=10, quiet=True, code=CodeStage(steps=3, batch=2, window=10))
    assert {"train_sync", "train_identity", "train_kl", "train_adversarial", "code_train_latent"} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    # the latent reconstruction fell (the image terms go through a 2-step generator and vary with the window)
    assert metrics["train_latent"] < metrics["first_train_latent"], metrics
    return {"styletalker": path, "generator": tiny_stylegan / "generator.pt", "encoder": tiny_stylegan / "encoder.pt"}


@pytest.mark.train
@pytest.mark.slow
def test_train_styletalker_tiny(tiny_models: dict[str, Path]) -> None:
    from talkinghead.nn.checkpoint import checkpoint_meta

    model = StyleTalker.load(tiny_models["styletalker"])
    assert (model.config.w_dim, model.config.n_latents, model.config.manipulated) == (32, 8, 4)  # the generator's
    meta = checkpoint_meta(tiny_models["styletalker"])
    assert (meta["code_steps"], meta["steps"]) == (3, 2) and meta["motion_variance"] > 0
    assert model.config.mouth_gain == 2.0 and abs(model.mouth_direction.norm().item() - 1) < 1e-5  # the probe's
    assert model.config.mouth_window == 2 and model.speech_mouth.abs().sum() > 0  # the speech's mouth map, fitted


@pytest.mark.slow
def test_generate_styletalker(media: Path, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """A photo and speech -> a full-frame video of the right length, sampled or driven by a motion video; only
    the face region changes; the method's errors."""
    from talkinghead.api import generate
    from talkinghead.errors import TalkingHeadError

    face, speech = media / "faces" / "liveportrait_s7.jpg", media / "talking" / "videoretalking_face1.mp4"
    out = tmp_path / "st.mp4"
    result = generate(image=face, audio=speech, output=out, method="styletalker", size=256,
                      checkpoints=tiny_models, quiet=True)
    assert result.method == "styletalker"
    assert assert_pasted_into_face(out, face, 256) == result.frames == round(result.duration * 25)
    driven = generate(image=face, audio=speech, output=tmp_path / "m.mp4", method="styletalker", size=256,
                      motion_from=media / "motion" / "liveportrait_d3.mp4", invert_steps=3, checkpoints=tiny_models,
                      quiet=True)
    assert driven.frames == result.frames
    with pytest.raises(TalkingHeadError, match="animates a photo"):
        generate(video=speech, audio=speech, output=tmp_path / "x.mp4", method="styletalker",
                 checkpoints=tiny_models)
    with pytest.raises(TalkingHeadError, match="--motion-from does not apply to --method viseme .*styletalker"):
        generate(image=face, audio=speech, output=tmp_path / "x.mp4", motion_from=speech)
    with pytest.raises(TalkingHeadError, match="--blink does not apply to --method styletalker"):
        generate(image=face, audio=speech, output=tmp_path / "x.mp4", method="styletalker", blink=False,
                 checkpoints=tiny_models)
    with pytest.raises(TalkingHeadError, match="pose-from"):
        generate(image=face, audio=speech, output=tmp_path / "x.mp4", method="styletalker", pose_from=speech,
                 checkpoints=tiny_models)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.train
@pytest.mark.slow
def test_expression_scale_multiplies_the_mouth_gain(tiny_models: dict[str, Path]) -> None:
    """``--expression-scale`` reaches StyleTalker as a factor on its mouth gain: the codes' mouth component along the
    stored direction scales by it, the rest stays; a model without a direction accepts only 1, with a one-line
    error otherwise."""
    from talkinghead.audio.speech import input_shape
    from talkinghead.errors import TalkingHeadError
    from talkinghead.motion.styletalker.infer import StyleTalkerModels, load_models, styletalker_codes

    models = load_models(tiny_models)
    c = models.model.config
    w_ref = torch.randn(c.n_latents, c.w_dim)
    speech = np.random.default_rng(0).standard_normal((9, *input_shape(c.speech))).astype(np.float32)
    one, two = (styletalker_codes(models, w_ref, speech, mouth_scale=k) for k in (1.0, 2.0))
    u, m = models.model.mouth_direction, c.manipulated
    d1, d2 = ((x[:, :m] - w_ref[None, :m]).flatten(1) for x in (one, two))
    assert torch.allclose(d2 @ u, 2 * (d1 @ u), atol=1e-5) and (d1 @ u).abs().mean() > 0
    assert torch.allclose(d2 - (d2 @ u)[:, None] * u, d1 - (d1 @ u)[:, None] * u, atol=1e-5)
    plain = StyleTalker(replace(c, mouth_gain=1.0, mouth_window=0))
    plain.load_state_dict({k: v for k, v in models.model.state_dict().items()
                           if k not in ("mouth_direction", "speech_mouth")})
    bare = StyleTalkerModels(plain, models.generator, models.encoder)
    assert styletalker_codes(bare, w_ref, speech).shape == one.shape
    with pytest.raises(TalkingHeadError, match="no mouth direction.*--expression-scale"):
        styletalker_codes(bare, w_ref, speech, mouth_scale=2.0)


def test_styletalker_draws_from_the_reference_maps_on_the_feature_path() -> None:
    """On a feature-path generator StyleTalker's frames are drawn from the reference's maps: its losses are finite
    and a step of its optimiser lowers the latent loss; other reference frames give other frames."""
    from talkinghead.render.stylegan.model import Encoder, Generator
    from talkinghead.train.stylegan import STYLEGAN_CONFIGS
    from talkinghead.train.styletalker import STYLETALKER_CONFIGS, StyleTalkerModule

    torch.manual_seed(0)
    c = STYLEGAN_CONFIGS["feature-tiny"]
    g = c.generator
    config = replace(STYLETALKER_CONFIGS["tiny"], w_dim=g.w_dim, n_latents=g.n_latents, manipulated=g.motion_latents)
    module = StyleTalkerModule(StyleTalker(config), 1.0, Generator(g), Encoder(c.encoder), None, None,
                               disc_channels=4)
    batch = {"frames": torch.rand(2, 4, 3, 32, 32), "references": torch.rand(2, 1, 3, 32, 32),
             "speech": torch.randn(2, 4, 16, 80)}
    loss, _, fake, real = module._generator_losses(batch)
    assert fake.shape == real.shape == (2, 4, 3, 32, 32) and torch.isfinite(loss)
    _, _, w, w_ref, maps = module._prepare(batch)
    assert maps is not None and len(maps) == 3
    other = module._render(w, w_ref, [torch.randn_like(m) for m in maps])
    assert not torch.allclose(other, module._render(w, w_ref, maps))
    losses = optimise(module.model, lambda: module._generator_losses(batch)[1]["latent"], steps=10, lr=3e-3)
    assert losses[-1] < losses[0]


def test_the_shipped_model_runs_on_the_shipped_generator() -> None:
    """With no checkpoints given, StyleTalker loads its shipped model on the shipped feature-path generator and
    encoder (their W+ shapes agree); it moves the motion latents only, a prior sample of a reference's codes stays
    near them before the mouth gain (its motion, not another face), and the speech's mouth map and the gain move
    them along the mouth direction only."""
    from talkinghead.audio.speech import input_shape
    from talkinghead.motion.styletalker.infer import load_models

    models = load_models({})
    c, g = models.model.config, models.generator.config
    assert (c.w_dim, c.n_latents, c.manipulated) == (g.w_dim, g.n_latents, g.motion_latents)
    torch.manual_seed(0)
    codes, _ = models.encoder.encode(torch.rand(1, 3, 128, 128) * 2 - 1)
    speech = torch.zeros(1, 25, *input_shape(c.speech))
    out = models.model.generate(codes, speech, generator=torch.Generator().manual_seed(0), mouth_gain=1.0)
    kept = out[:, :, c.manipulated:]
    assert out.shape == (1, 25, g.n_latents, g.w_dim) and torch.equal(kept, codes[:, None, c.manipulated:].expand_as(kept))
    assert (out[:, :, :c.manipulated] - codes[:, None, :c.manipulated]).abs().mean() < codes.abs().mean()
    # as shipped, the speech's mouth map and the mouth gain move the codes along the stored mouth direction only
    assert c.mouth_gain > 1.0 and c.mouth_window > 0 and models.model.speech_mouth.abs().max() > 0
    speech = torch.randn(1, 25, *input_shape(c.speech))
    audio = models.model.encode_audio(speech)
    decoded = models.model.decode(models.model.sample_latents(codes, audio, generator=torch.Generator().manual_seed(0)),
                                  audio, codes)
    shipped = models.model.generate(codes, speech, generator=torch.Generator().manual_seed(0))
    moved = (shipped - decoded)[:, :, :c.manipulated].flatten(2)
    u = models.model.mouth_direction / models.model.mouth_direction.norm()
    assert (moved @ u).std() > 0 and torch.allclose(moved, (moved @ u)[..., None] * u, atol=1e-4)
