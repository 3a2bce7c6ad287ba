"""The compact style-based generator and its pSp-style encoder: layers, tiny configs, inversion training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers import optimise
from talkinghead.nn.layers import warp
from talkinghead.render.stylegan.config import DiscriminatorConfig, EncoderConfig, GeneratorConfig
from talkinghead.render.stylegan.model import (
    Discriminator,
    Encoder,
    Generator,
    ModulatedConv2d,
    d_logistic_loss,
    minibatch_stddev,
    r1_penalty,
)

TINY = GeneratorConfig(size=16, w_dim=16, mapping_layers=2, channels=16, min_channels=8)


def test_modulated_conv_is_a_conv_scaled_per_input_channel() -> None:
    """Without demodulation the per-sample kernel is the equalised weight times the style of each input channel;
    with it, every output channel's kernel has unit norm."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 5, 3, 6, demodulate=False)
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 6)
    style = conv.affine(w)
    for b in range(2):
        kernel = conv.scale * conv.weight * style[b][None, :, None, None]
        assert torch.allclose(conv(x, w)[b:b + 1], F.conv2d(x[b:b + 1], kernel, padding=1), atol=1e-5)
    demod = ModulatedConv2d(4, 5, 3, 6)
    norms = demod.kernels(demod.affine(w)).pow(2).sum((2, 3, 4))
    assert torch.allclose(norms, torch.ones(2, 5), atol=1e-4)
    up = ModulatedConv2d(4, 5, 3, 6, upsample=True)
    assert up(x, w).shape == (2, 5, 16, 16)


def test_tiny_generator(tmp_path: Path) -> None:
    torch.manual_seed(0)
    gen = Generator(TINY)
    assert TINY.n_latents == 6
    w = gen.mapping(torch.randn(3, 16))
    image, feats = gen(w, features=8)
    assert image.shape == (3, 3, 16, 16) and feats is not None and feats.shape == (3, 16, 8, 8)
    assert torch.isfinite(image).all()
    w_plus = w[:, None].expand(-1, 6, -1).clone()
    assert torch.equal(gen(w_plus, noise="none")[0], gen(w, noise="none")[0])  # one w = W+ of copies
    moved = w_plus.clone()
    moved[:, -1] += 3.0  # the last style vector only modulates the last toRGB
    assert not torch.allclose(gen(moved, noise="none")[0], gen(w_plus, noise="none")[0])
    with pytest.raises(ValueError, match="6 style vectors"):
        gen(w_plus[:, :5])
    target = torch.rand(3, 3, 16, 16) * 2 - 1
    losses = optimise(gen, lambda: (gen(w_plus.detach(), noise="none")[0] - target).abs().mean(), steps=10, lr=1e-2)
    assert losses[-1] < losses[0]
    gen.track_w(w)
    gen.eval().save(tmp_path / "g.pt")
    again = Generator.load(tmp_path / "g.pt")
    assert again.config == TINY and torch.equal(again.w_avg, gen.w_avg)
    assert torch.equal(again(w_plus, noise="none")[0], gen(w_plus, noise="none")[0])


def test_tiny_encoder_inverts_generated_images(tmp_path: Path) -> None:
    """The encoder's W+ regenerates images of a frozen generator better after a few steps (pSp's L2 objective)."""
    torch.manual_seed(0)
    gen = Generator(TINY).eval().requires_grad_(False)
    config = EncoderConfig(size=16, w_dim=16, n_latents=TINY.n_latents, channels=8)
    enc = Encoder(config)
    images = gen(gen.mapping(torch.randn(4, 16)), noise="none")[0]
    w_plus = enc(images)
    assert w_plus.shape == (4, 6, 16) and torch.isfinite(w_plus).all()
    assert (enc.coarse_end, enc.medium_end) == (1, 2)
    losses = optimise(enc, lambda: F.mse_loss(gen(enc(images), noise="none")[0], images), steps=15, lr=1e-3)
    assert losses[-1] < losses[0]
    enc.w_avg.fill_(0.25)
    enc.eval().save(tmp_path / "e.pt")
    again = Encoder.load(tmp_path / "e.pt")
    assert torch.equal(again(images), enc(images))


def test_r1_is_the_squared_gradient_norm_of_a_linear_critic() -> None:
    weight = torch.randn(3, 4, 4)
    images = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (images * weight).flatten(1).sum(1) * 2.0
    assert torch.allclose(r1_penalty(logits, images), 4.0 * weight.pow(2).sum())


def test_minibatch_stddev_channel() -> None:
    x = torch.zeros(4, 2, 3, 3)
    x[1] = 2.0  # group of 4: values 0, 2, 0, 0 -> std sqrt(0.75)
    out = minibatch_stddev(x, 4)
    assert out.shape == (4, 3, 3, 3) and torch.allclose(out[:, 2], torch.full((4, 3, 3), 0.75 ** 0.5))


def test_tiny_discriminator(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = DiscriminatorConfig(size=16, channels=16, min_channels=8)
    disc = Discriminator(config)
    real = torch.rand(8, 3, 16, 16) * 0.2 + 0.5  # bright, smooth "faces"
    fake = torch.rand(8, 3, 16, 16) * 2 - 1  # noise
    assert disc(real).shape == (8,) and torch.isfinite(disc(real)).all()
    losses = optimise(disc, lambda: d_logistic_loss(disc(real), disc(fake)), steps=30, lr=2e-3)
    assert losses[-1] < 0.5 * losses[0]
    disc.save(tmp_path / "d.pt")
    again = Discriminator.load(tmp_path / "d.pt")
    assert again.config == config and torch.equal(again(real), disc(real))


def test_half_precision_checkpoint(tmp_path: Path) -> None:
    """``half=True`` stores float16 weights (half the file) that load back into a float32 model."""
    torch.manual_seed(0)
    gen = Generator(TINY).eval()
    gen.save(tmp_path / "full.pt")
    gen.save(tmp_path / "half.pt", half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    again = Generator.load(tmp_path / "half.pt")
    assert all(p.dtype == torch.float32 for p in again.parameters())
    w = gen.mapping(torch.randn(2, 16))
    assert torch.allclose(again(w, noise="none")[0], gen(w, noise="none")[0], atol=2e-2)


def test_identity_student_learns_and_round_trips(tmp_path: Path) -> None:
    from talkinghead.nn.identity import IdentityNet, IdentityNetConfig, identity_loss

    torch.manual_seed(0)
    net = IdentityNet(IdentityNetConfig(size=32, channels=4))
    images, targets = torch.rand(4, 3, 48, 48) * 2 - 1, torch.randn(4, 128) * 0.1
    assert net(images).shape == (4, 128)  # resized to its size
    losses = optimise(net, lambda: F.mse_loss(net(images), targets), steps=30, lr=3e-3)
    assert losses[-1] < 0.5 * losses[0]
    net.eval()
    assert identity_loss(net, images, images).item() == 0.0
    assert identity_loss(net, images, images.flip(0)).item() > 0.0
    net.save(tmp_path / "id.pt")
    assert torch.equal(IdentityNet.load(tmp_path / "id.pt")(images), net(images))


@pytest.mark.slow
def test_encoder_objective_step_lowers_the_loss() -> None:
    """pSp's objective (L2 + perceptual + identity + latent regulariser) on a frozen tiny generator."""
    from talkinghead.nn.identity import IdentityNet
    from talkinghead.train.stylegan import STYLEGAN_CONFIGS, EncoderModule

    torch.manual_seed(0)
    c = STYLEGAN_CONFIGS["tiny"]
    module = EncoderModule(c.encoder, Generator(c.generator), IdentityNet(c.identity))
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    loss, parts, recon = module.losses(images)
    assert set(parts) == {"l2", "perceptual", "w_reg", "identity"} and recon.shape == images.shape
    assert not any(p.requires_grad for p in module.generator.parameters())  # pSp: generator frozen
    losses = optimise(module.encoder, lambda: module.losses(images)[0], steps=20, lr=1e-3)
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.train
@pytest.mark.slow
def test_train_stylegan_tiny(one_clip_dataset: Path, tmp_path: Path) -> None:
    """The three stages run on real crops and write loadable checkpoints; a stage with 0 steps reuses its file."""
    from talkinghead.nn.checkpoint import checkpoint_meta
    from talkinghead.nn.identity import IdentityNet
    from talkinghead.train.stylegan import STYLEGAN_CONFIGS, train_stylegan

    c = STYLEGAN_CONFIGS["tiny"]
    metrics = train_stylegan([one_clip_dataset], tmp_path, configs=c, identity_steps=3, gan_steps=3,
                             encoder_steps=3, batch=4, generator_lr=1e-4, quiet=True)
    assert set(metrics) == {"identity", "gan", "encoder"}
    for stage, loss in (("identity", "train_id"), ("encoder", "train_loss")):  # fell (the GAN's players need not)
        assert metrics[stage][loss] < metrics[stage][f"first_{loss}"], metrics
    gen, enc = Generator.load(tmp_path / "generator.pt"), Encoder.load(tmp_path / "encoder.pt")
    IdentityNet.load(tmp_path / "identity.pt")
    Discriminator.load(tmp_path / "discriminator.pt")
    assert gen.w_avg.abs().sum() > 0 and torch.equal(enc.w_avg, gen.w_avg)  # tracked w, the encoder's start
    meta = checkpoint_meta(tmp_path / "generator.pt")
    assert meta["steps"] == 3 and meta["tuned_with_encoder"]["steps"] == 3
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert gen(enc(image), noise="none")[0].shape == (1, 3, 32, 32)
    again = train_stylegan([one_clip_dataset], tmp_path, configs=c, identity_steps=0, gan_steps=0,
                           encoder_steps=2, batch=4, quiet=True)
    assert set(again) == {"encoder"}
    with pytest.raises(ValueError, match="share size"):
        type(c)(c.generator, c.discriminator, EncoderConfig(size=32, w_dim=32, n_latents=6))


def test_inversion_refines_the_encoder_code() -> None:
    """Optimising the encoder's W+ lowers the reconstruction error of a photo; 0 steps is the encoder alone; the
    generator is left as it was."""
    from talkinghead.render.stylegan.invert import invert

    torch.manual_seed(0)
    gen = Generator(TINY).eval()
    enc = Encoder(EncoderConfig(size=16, w_dim=16, n_latents=TINY.n_latents, channels=8)).eval()
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(invert(gen, enc, images)[0], enc(images).detach()) and invert(gen, enc, images)[1] is None
    before = F.mse_loss(gen(enc(images), noise="none")[0], images).item()
    codes, _ = invert(gen, enc, images, steps=30, lr=0.05, perceptual_weight=0.0)  # 16 px: too small for it
    assert F.mse_loss(gen(codes, noise="none")[0], images).item() < 0.8 * before
    assert all(p.requires_grad for p in gen.parameters())


def test_generator_feature_warping() -> None:
    """StyleHEAT's warping of generator features: a zero flow gives the unwarped image; a flow of one pixel at
    8 px moves the 16 px image by two pixels (the layers after it are translation-equivariant inside)."""
    torch.manual_seed(0)
    gen = Generator(TINY).eval()
    w = gen.mapping(torch.randn(2, 16))
    plain, _ = gen(w, noise="none")
    zero, feats = gen(w, noise="none", flow=torch.zeros(2, 2, 8, 8), features=8)
    assert torch.allclose(zero, plain, atol=1e-5) and feats is not None
    shift = torch.zeros(2, 2, 8, 8)
    shift[:, 0] = 1.0  # output(x) = features(x + 1)
    moved, _ = gen(w, noise="none", flow=shift)
    assert (moved - plain).abs().mean() > 1e-3
    assert torch.allclose(moved[..., 3:-3, 3:-5], plain[..., 3:-3, 5:-3], atol=1e-4)
    with pytest.raises(ValueError, match="resolution of 8..16"):
        gen(w, flow=torch.zeros(2, 2, 4, 4))


def test_ganspace_directions_and_gradual_edits() -> None:
    """PCA of W: orthonormal components, descending spread that matches the samples' projections; an edit moves
    only the chosen style vectors, by strength x std along the component, per frame for a gradual edit."""
    from talkinghead.render.stylegan.edit import apply_edit, principal_directions

    torch.manual_seed(0)
    gen = Generator(TINY).eval()
    dirs = principal_directions(gen, samples=2000, k=4, batch=500)
    assert torch.allclose(dirs.components @ dirs.components.T, torch.eye(4), atol=1e-5)
    assert (dirs.stds[:-1] >= dirs.stds[1:]).all()
    ws = gen.mapping(torch.randn(2000, 16, generator=torch.Generator().manual_seed(1))).detach()
    spread = ((ws - dirs.mean) @ dirs.components.T).std(0)
    assert torch.allclose(spread, dirs.stds, rtol=0.15)
    w_plus = ws[:5, None].expand(-1, 6, -1)
    edited = apply_edit(w_plus, dirs, 1, torch.linspace(0, 2, 5), layers=slice(0, 3))
    moved = ((edited - w_plus) @ dirs.components[1])  # (5, 6) in units of the component
    assert torch.allclose(moved[:, :3], (torch.linspace(0, 2, 5) * dirs.stds[1])[:, None].expand(-1, 3), atol=1e-5)
    assert torch.equal(edited[:, 3:], w_plus[:, 3:])


FEATURE = GeneratorConfig(size=32, w_dim=16, channels=16, min_channels=8, input_resolution=8, flow_channels=8,
                          skip_channels=4)
FEATURE_ENCODER = EncoderConfig(size=32, w_dim=16, n_latents=FEATURE.n_latents, channels=8, feature_channels=16,
                                skip_channels=4)


def test_feature_path_starts_from_the_reference_map_moved_by_the_codes(tmp_path: Path) -> None:
    """The feature path: W+ keeps its length, the vectors below the input resolution drive the flow (3 of 8 at
    8 px of 32); the encoder gives the input map and skip maps at 16 and 32 px; an untrained flow is zero, so the
    map enters unwarped whatever the codes say; the motion codes move it once the flow head learns, the skip maps
    change the image, and the generator round-trips."""
    torch.manual_seed(0)
    assert (FEATURE.n_latents, FEATURE.motion_latents, FEATURE.channels_at(8)) == (8, 3, 16)
    gen, enc = Generator(FEATURE).eval(), Encoder(FEATURE_ENCODER).eval()
    assert not hasattr(gen, "const") and not hasattr(gen, "mapping_net")
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    codes, maps = enc.encode(images)
    assert codes.shape == (2, 8, 16) and maps is not None
    assert [m.shape for m in maps] == [(2, 16, 8, 8), (2, 4, 16, 16), (2, 4, 32, 32)]
    assert torch.equal(enc(images), codes)
    with pytest.raises(ValueError, match="reference"):
        gen(codes)
    with pytest.raises(ValueError, match="mapping network"):
        gen.mapping(torch.randn(1, 16))
    image, feats = gen(codes, noise="none", reference=(maps, codes), features=8)
    assert image.shape == (2, 3, 32, 32) and torch.isfinite(image).all()
    assert torch.allclose(feats, maps[0], atol=1e-5)  # zero flow at initialisation: the map enters as it is
    other = [maps[0], torch.randn_like(maps[1]), maps[2]]
    assert not torch.allclose(gen(codes, noise="none", reference=(other, codes))[0], image)
    moved = codes.clone()
    moved[:, :3] += 1.0
    assert torch.equal(gen.motion_flow(moved, (maps, codes)), torch.zeros(2, 2, 8, 8))
    torch.nn.init.normal_(gen.motion.head.weight, std=0.1)
    flow = gen.motion_flow(moved, (maps, codes))
    assert flow.abs().mean() > 0 and not torch.allclose(flow, gen.motion_flow(codes, (maps, codes)))
    one = gen(moved[:1], noise="none", reference=([m[:1] for m in maps], codes[:1]))[0]
    assert torch.allclose(one, gen(moved, noise="none", reference=(maps, codes))[0][:1], atol=1e-5)
    # an explicit flow at the input resolution (StyleHEAT's) moves the map after the codes' flow
    zero, shift = torch.zeros(2, 2, 8, 8), torch.zeros(2, 2, 8, 8)
    shift[:, 0] = 1.0
    assert torch.allclose(gen(codes, noise="none", reference=(maps, codes), flow=zero, features=8)[1],
                          warp(maps[0], gen.motion_flow(codes, (maps, codes))), atol=1e-5)
    composed = gen(moved, noise="none", reference=(maps, codes), flow=shift, features=8)[1]
    assert torch.allclose(composed[..., :-1], warp(warp(maps[0], flow), shift)[..., :-1], atol=1e-4)  # (border)
    gen.save(tmp_path / "g.pt")
    again = Generator.load(tmp_path / "g.pt")
    assert torch.equal(again(moved, noise="none", reference=(maps, codes))[0],
                       gen(moved, noise="none", reference=(maps, codes))[0])


def test_cross_frame_step_lowers_the_loss() -> None:
    """The feature path's stage: the target drawn from the source's map and the target's codes; a few steps on
    one pair lower L1."""
    from talkinghead.nn.identity import IdentityNet, IdentityNetConfig
    from talkinghead.train.stylegan import CrossFrameModule

    torch.manual_seed(0)
    module = CrossFrameModule(FEATURE, FEATURE_ENCODER, IdentityNet(IdentityNetConfig(size=32, channels=4)),
                              max_steps=10)
    source, target = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = optimise(module, lambda: F.l1_loss(module.reconstruct(source, target), target), steps=15, lr=2e-3)
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="feature-path"):
        CrossFrameModule(TINY, FEATURE_ENCODER, None, max_steps=1)


def test_lips_box_and_its_masked_l1() -> None:
    """The lips box of a mesh whose lips span a known rectangle, the mask of a box, and the L1 inside it."""
    import numpy as np

    from talkinghead.face import indices as ix
    from talkinghead.nn.layers import masked_l1
    from talkinghead.train.datasets import lips_box
    from talkinghead.train.stylegan import box_mask

    mesh = np.zeros((478, 3))
    mesh[:, :2] = 10.0  # not the lips: ignored
    mesh[ix.LIPS_ALL, :2] = (120.0, 160.0)
    mesh[ix.LIPS_ALL[0], :2] = (80.0, 150.0)
    mesh[ix.LIPS_ALL[1], :2] = (160.0, 170.0)  # lips 80 px wide: grown by 20 px on every side
    assert np.allclose(lips_box(mesh, 256), np.array([60, 130, 180, 190]) / 256)
    mask = box_mask(torch.tensor([[0.25, 0.5, 0.75, 1.0]]), 8)
    assert mask.shape == (1, 1, 8, 8) and mask.sum() == 4 * 4 and mask[0, 0, 4:, 2:6].all()
    a, b = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    b[..., 4:, 2:6] = 0.5
    b[..., :4, :] = 9.0  # outside the box: not counted
    assert masked_l1(a, b, mask).item() == pytest.approx(0.5)


def test_cross_frame_with_a_frozen_encoder_trains_the_generator_and_skip_heads_only() -> None:
    """Continuing from given models with the encoder frozen: a training step (with the mouth term) moves the
    generator's weights and the encoder's skip heads, and no other weight of the encoder (its codes and input map
    stay as they were), whose optimiser holds none of them."""
    from talkinghead.nn.layers import masked_l1
    from talkinghead.train.stylegan import CrossFrameLossWeights, CrossFrameModule, box_mask

    torch.manual_seed(0)
    gen, enc = Generator(FEATURE), Encoder(FEATURE_ENCODER)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    gen_before = [p.clone() for p in gen.parameters()]
    module = CrossFrameModule(FEATURE, FEATURE_ENCODER, None, max_steps=4, weights=CrossFrameLossWeights(mouth=5.0),
                              start=(gen, enc), freeze_encoder=True)
    assert module.generator is gen and module.encoder is enc
    opt_g, _ = module.configure_optimizers()
    params = {id(p) for group in opt_g.param_groups for p in group["params"]}
    assert params == {id(p) for p in [*gen.parameters(), *enc.skip_heads.parameters()]}
    module.train()
    source, target = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    box = torch.tensor([[0.3, 0.5, 0.7, 0.8]] * 2)
    fake = module.reconstruct(source, target)
    assert not enc.training  # kept in eval mode while the module trains
    loss = F.l1_loss(fake, target) + 5.0 * masked_l1(fake, target, box_mask(box, 32))
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items() if not k.startswith("skip_heads."))
    assert any(not torch.equal(before[k], v) for k, v in enc.state_dict().items() if k.startswith("skip_heads."))
    assert any(not torch.equal(a, b) for a, b in zip(gen_before, gen.parameters()))


def test_grown_skip_maps_start_by_drawing_what_the_models_drew() -> None:
    """Models without skip maps grown into models with them hold the same weights; the new skip convolutions start
    at zero, so the grown pair draws exactly the same image, and they get gradients, so training moves them. Models
    that have skip maps already are refused."""
    from dataclasses import replace

    from talkinghead.train.stylegan import grow_skips

    torch.manual_seed(0)
    gen = Generator(replace(FEATURE, skip_channels=0))
    enc = Encoder(replace(FEATURE_ENCODER, skip_channels=0))
    grown_gen, grown_enc = grow_skips(gen, enc, 4)
    assert grown_gen.config.skip_channels == grown_enc.config.skip_channels == 4 and len(grown_gen.skips) == 2
    images = torch.rand(3, 3, 32, 32) * 2 - 1

    def draw(g: Generator, e: Encoder) -> torch.Tensor:
        codes, maps = e.encode(images)
        return g(codes[1:], noise="none", reference=([m[:1] for m in maps], codes[:1]))[0]

    with torch.no_grad():
        assert torch.equal(draw(gen, enc), draw(grown_gen, grown_enc))
        assert torch.equal(enc.encode(images)[0], grown_enc.encode(images)[0])
    draw(grown_gen, grown_enc).pow(2).mean().backward()
    assert all(conv.weight.grad.abs().sum() > 0 for conv in grown_gen.skips)
    with pytest.raises(ValueError, match="already have skip maps"):
        grow_skips(grown_gen, grown_enc, 4)


@pytest.mark.train
@pytest.mark.slow
def test_train_feature_path_tiny(one_clip_dataset: Path, tmp_path: Path) -> None:
    """identity + cross-frame stages on real crop pairs write a generator and encoder that draw a frame from
    another one's map; the feature path refuses a GAN stage."""
    from dataclasses import replace

    from talkinghead.nn.checkpoint import checkpoint_meta
    from talkinghead.train.stylegan import STYLEGAN_CONFIGS, train_stylegan

    c = STYLEGAN_CONFIGS["feature-tiny"]
    metrics = train_stylegan([one_clip_dataset], tmp_path, configs=c, identity_steps=2, gan_steps=0,
                             encoder_steps=4, batch=4, encoder_lr=1e-3, quiet=True)
    assert set(metrics) == {"identity", "crossframe"}
    assert 0 < metrics["crossframe"]["train_l1"] < 2 and metrics["crossframe"]["train_perceptual"] > 0, metrics
    gen, enc = Generator.load(tmp_path / "generator.pt"), Encoder.load(tmp_path / "encoder.pt")
    codes, maps = enc.encode(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert gen(codes[1:], noise="none", reference=([m[:1] for m in maps], codes[:1]))[0].shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="no GAN stage"):
        train_stylegan([one_clip_dataset], tmp_path, configs=c, identity_steps=0, gan_steps=2, encoder_steps=0)
    # continued from that folder with the encoder frozen and the mouth term: the same encoder (but its skip heads),
    # a new generator
    tuned = tmp_path / "tuned"
    metrics = train_stylegan([one_clip_dataset], tuned, configs=c, identity_steps=0, gan_steps=0, encoder_steps=2,
                             batch=4, start=str(tmp_path), freeze_encoder=True, mouth_weight=2.0, quiet=True)
    assert metrics["crossframe"]["train_mouth"] > 0 and metrics["crossframe"]["train_identity"] > 0
    # the identity student it trained with is in its folder, so a run continued from there has it too
    assert (tuned / "identity.pt").exists()
    again = train_stylegan([one_clip_dataset], tuned / "again", configs=c, identity_steps=0, gan_steps=0,
                           encoder_steps=1, batch=4, start=str(tuned), freeze_encoder=True, quiet=True)
    assert again["crossframe"]["train_identity"] > 0
    assert checkpoint_meta(tuned / "again" / "generator.pt")["training"]["identity_student"]
    tuned_enc = Encoder.load(tuned / "encoder.pt").state_dict()
    assert all(torch.equal(v, tuned_enc[k]) for k, v in enc.state_dict().items() if not k.startswith("skip_heads."))
    assert not all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(),
                                                      Generator.load(tuned / "generator.pt").state_dict().values()))
    with pytest.raises(ValueError, match="need trained models"):
        train_stylegan([one_clip_dataset], tuned, configs=c, identity_steps=0, gan_steps=0, encoder_steps=2,
                       freeze_encoder=True)
    with pytest.raises(ValueError, match="need trained models"):
        train_stylegan([one_clip_dataset], tuned, configs=c, identity_steps=0, gan_steps=0, encoder_steps=2,
                       skip_channels=4)
    # models without skip maps, continued with --skip-channels: the saved pair has them
    plain = tmp_path / "plain"
    plain.mkdir()
    Generator(replace(c.generator, skip_channels=0)).save(plain / "generator.pt")
    Encoder(replace(c.encoder, skip_channels=0)).save(plain / "encoder.pt")
    train_stylegan([one_clip_dataset], plain / "grown", configs=c, identity_steps=0, gan_steps=0, encoder_steps=2,
                   batch=4, start=str(plain), freeze_encoder=True, skip_channels=4, quiet=True)
    assert Generator.load(plain / "grown" / "generator.pt").config.skip_channels == 4
    assert not checkpoint_meta(plain / "grown" / "generator.pt")["training"]["identity_student"]
    assert not (plain / "grown" / "identity.pt").exists()
    assert Encoder.load(plain / "grown" / "encoder.pt").config.skip_channels == 4
    with pytest.raises(ValueError, match="options of the feature path"):
        train_stylegan([one_clip_dataset], tuned, configs=STYLEGAN_CONFIGS["tiny"], identity_steps=0, gan_steps=0,
                       encoder_steps=2, mouth_weight=1.0)


@pytest.mark.slow
def test_shipped_feature_path_models_redraw_a_held_out_frame(one_clip_dataset: Path) -> None:
    """The shipped generator, encoder and identity student load (float16 files into float32 models); a frame of a
    held-out clip (talking/'s face5) drawn from the clip's first frame comes closer to the real frame than that
    first frame copied, and than the same codes drawn from a displaced copy of its maps (mirrored, shifted)."""
    import numpy as np

    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.nn.identity import IdentityNet
    from talkinghead.render.stylegan.infer import crops_tensor
    from talkinghead.train.stylegan import psnr

    gen, enc, ident = Generator.default(), Encoder.default(), IdentityNet.default()
    assert gen.config.feature_path and gen.config.size == 128 and ident.config.size == 128
    assert all(p.dtype == torch.float32 for p in gen.parameters())
    clip = load_clip(clip_dir(one_clip_dataset, "a"))
    frames = crops_tensor(clip.frames(np.arange(0, clip.n_frames, 10)), 128)
    with torch.no_grad():
        codes, maps = enc.encode(frames)
        drawn = gen(codes[1:], noise="none", reference=([m[:1] for m in maps], codes[:1]))[0]
        swapped = gen(codes[1:], noise="none", reference=([m[:1].flip(-1).roll(9, -2) for m in maps], codes[:1]))[0]
    real = frames[1:]
    assert psnr(drawn, real) > psnr(frames[:1].expand_as(real), real) + 0.5
    assert psnr(drawn, real) > psnr(swapped, real) + 1.0


def test_a_crop_corpus_gives_crop_dataset_every_nth_frame_of_the_full_dataset(one_clip_dataset: Path,
                                                                              tmp_path: Path) -> None:
    """crop-corpus keeps what CropDataset reads: every 3rd frame of the real clip, the same crop (up to the JPEG it is
    encoded in again), the same lips box (up to float16) and identity; its folder is a fraction of the dataset's.
    The same folder or a folder that is no dataset is refused."""
    from talkinghead.errors import InputError, TalkingHeadError
    from talkinghead.train.datasets import CropDataset, crop_corpus

    frames = crop_corpus(one_clip_dataset, tmp_path / "c", every=3, size=64, quiet=True)
    full, small = CropDataset(one_clip_dataset, "train", size=64), CropDataset(tmp_path / "c", "train", size=64)
    assert frames == len(small) == -(-len(full) // 3)
    for i in range(0, len(small), 5):
        a, b = small[i], full[3 * i]
        near = range(max(0, 3 * i - 3), min(len(full), 3 * i + 4))
        errors = {j: (a["image"] - full[j]["image"]).abs().mean().item() for j in near}
        assert a["image"].shape == (3, 64, 64)
        assert min(errors, key=errors.get) == 3 * i and errors[3 * i] < 0.03  # 2.5 % is the JPEG's, 3-6 % a neighbour's
        assert torch.allclose(a["mouth"], b["mouth"], atol=2e-3)
        assert torch.equal(a["identity"].nan_to_num(), b["identity"].nan_to_num())
    size = {d: sum(f.stat().st_size for f in (d / "clips").rglob("*") if f.is_file())
            for d in (one_clip_dataset, tmp_path / "c")}
    assert size[tmp_path / "c"] < size[one_clip_dataset] / 10
    with pytest.raises(InputError, match="another folder"):
        crop_corpus(one_clip_dataset, one_clip_dataset)
    with pytest.raises(InputError, match="not a preprocessed dataset"):
        crop_corpus(tmp_path / "nothing", tmp_path / "d")
    with pytest.raises(TalkingHeadError, match="every must be at least 1"):
        crop_corpus(one_clip_dataset, tmp_path / "d", every=0)
    assert not (tmp_path / "d").exists()
