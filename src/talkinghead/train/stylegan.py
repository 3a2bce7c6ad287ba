"""Training the compact style-based generator, its pSp-style encoder and the identity student (Lightning).

Stages, run in order by :func:`train_stylegan`, each its own Lightning run on face crops:

1. ``identity``: :class:`~talkinghead.nn.identity.IdentityNet` regresses each crop's clip dlib embedding (MSE;
   clips where dlib found no face are skipped), the differentiable stand-in for ArcFace in the losses below.

The feature path (the default; identity from the reference's own features, HFGI's idea) then has one stage:

2. ``crossframe``: the encoder and the feature-path generator trained together as a cross-frame autoencoder on
   pairs of frames of one clip (:class:`CrossFrameModule`): the source frame's feature map(s) and codes, the
   target frame's codes, rebuild the target; L1 + 0.8 x perceptual + 0.1 x identity + 0.02 x a PatchGAN.

The constant path (StyleGAN2 + pSp, identity from the GAN prior; GPU users) has two:

2. ``gan``: StyleGAN2 (Karras et al., 2020): the non-saturating logistic loss, lazy R1 on the reals (every
   ``r1_every`` discriminator steps, weighted by gamma / 2 x r1_every, with Adam's lr and betas corrected for the
   lazy schedule), style mixing (two w with a random crossover layer, probability ``mixing``), horizontal
   flips of the reals, an exponential moving average of the generator's weights (half-life ``ema_images``
   images; the average is what is saved) and the running mean ``w_avg``. Path-length regularisation is left
   out (it smooths W for interpolation, which nothing here needs).
3. ``encoder``: pSp's objective (Richardson et al., 2021): L2 + 0.8 x perceptual (the random-VGG stand-in for
   LPIPS, :mod:`talkinghead.nn.perceptual`) + 0.1 x identity (the student) + ``w_reg`` x ||W+ - w_avg||^2
   (pSp's latent regulariser), the generator frozen. With ``generator_lr > 0`` the generator is tuned with the
   same loss (jointly, as pivotal tuning does per image): a generator trained for minutes inverts poorly,
   and StyleTalker only needs encoder -> generator round trips of real faces.

Files written to the output folder: ``identity.pt``, ``generator.pt`` (the constant path: EMA weights),
``encoder.pt``, and on the constant path ``discriminator.pt``. A stage with 0 steps loads its file from the folder
instead (to resume or re-run one stage).
"""

from __future__ import annotations

import argparse
import copy
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from talkinghead.nn.checkpoint import checkpoint_meta
from talkinghead.nn.discriminator import MultiScaleDiscriminator, lsgan_loss
from talkinghead.nn.identity import IdentityNet, IdentityNetConfig, identity_loss
from talkinghead.nn.layers import masked_l1
from talkinghead.nn.perceptual import PerceptualLoss
from talkinghead.render.stylegan.config import DiscriminatorConfig, EncoderConfig, GeneratorConfig, check_feature_path
from talkinghead.render.stylegan.model import (
    Discriminator,
    Encoder,
    Generator,
    d_logistic_loss,
    g_nonsaturating_loss,
    r1_penalty,
)
from talkinghead.spec import Command
from talkinghead.train.common import fit, parse_devices, print_metrics, training_options
from talkinghead.train.datasets import CropDataset, crop_corpus


@dataclass
class StyleGanConfigs:
    """The four architectures trained together (the encoder's W+ size follows the generator's)."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    identity: IdentityNetConfig = field(default_factory=IdentityNetConfig)

    def __post_init__(self) -> None:
        g, d, e = self.generator, self.discriminator, self.encoder
        if not (g.size == d.size == e.size) or g.w_dim != e.w_dim or g.n_latents != e.n_latents:
            raise ValueError("generator, discriminator and encoder must share size, w_dim and the W+ length")
        if g.feature_path:
            check_feature_path(g, e)


STYLEGAN_CONFIGS = {
    "tiny": StyleGanConfigs(GeneratorConfig(size=32, w_dim=32, mapping_layers=2, channels=32, min_channels=8),
                            DiscriminatorConfig(size=32, channels=32, min_channels=8),
                            EncoderConfig(size=32, w_dim=32, n_latents=8, channels=8, head_channels=16),
                            IdentityNetConfig(size=32, channels=8)),
    "cpu": StyleGanConfigs(GeneratorConfig(size=64, w_dim=128, mapping_layers=2, channels=128),
                           DiscriminatorConfig(size=64, channels=128),
                           EncoderConfig(size=64, w_dim=128, n_latents=10, channels=16, head_channels=32),
                           IdentityNetConfig(size=64, channels=16)),
    "small": StyleGanConfigs(GeneratorConfig(channels=192), DiscriminatorConfig(channels=192),
                             EncoderConfig(channels=24), IdentityNetConfig()),
    "paper": StyleGanConfigs(GeneratorConfig(size=1024, w_dim=512, mapping_layers=8, channels=512),
                             DiscriminatorConfig(size=1024, channels=512),
                             EncoderConfig(size=1024, w_dim=512, n_latents=18, channels=64, head_channels=512),
                             IdentityNetConfig(size=112, channels=64)),
    "feature-tiny": StyleGanConfigs(
        GeneratorConfig(size=32, w_dim=32, channels=32, min_channels=8, input_resolution=8, flow_channels=8,
                        skip_channels=4),
        DiscriminatorConfig(size=32, channels=32, min_channels=8),
        EncoderConfig(size=32, w_dim=32, n_latents=8, channels=8, head_channels=16, feature_channels=32,
                      skip_channels=4),
        IdentityNetConfig(size=32, channels=8)),
    "feature": StyleGanConfigs(
        GeneratorConfig(size=128, w_dim=256, channels=128, input_resolution=32, flow_channels=64),
        DiscriminatorConfig(size=128, channels=128),
        EncoderConfig(size=128, w_dim=256, n_latents=12, channels=16, head_channels=32, feature_channels=128),
        IdentityNetConfig(size=128, channels=16)),
    "feature-skip": StyleGanConfigs(
        GeneratorConfig(size=128, w_dim=256, channels=128, input_resolution=32, flow_channels=64,
                        skip_channels=16),
        DiscriminatorConfig(size=128, channels=128),
        EncoderConfig(size=128, w_dim=256, n_latents=12, channels=16, head_channels=32, feature_channels=128,
                      skip_channels=16),
        IdentityNetConfig(size=128, channels=16)),
}
"""Constant path (StyleGAN2 + pSp: identity from the GAN prior): ``tiny`` CPU tests (32 px), ``cpu`` 64 px,
``small`` 128 px (a GPU's hours), ``paper`` StyleGAN2 FFHQ's 1024 px generator with pSp's 18-vector W+ (GPU
users). Feature path (identity from the reference's own 32 x 32 feature map): ``feature-tiny`` (tests),
``feature``, 128 px, trained on the 2-core CPU in 80 minutes, and ``feature-skip``, the same with the reference's
64 and 128 px skip maps (LIA's warped encoder features). The shipped models are ``feature`` models grown into
``feature-skip`` ones (:func:`grow_skips`) and trained on from there."""


def _flip_half(image: torch.Tensor) -> torch.Tensor:
    """Mirror a random half of the batch (B, 3, H, W)."""
    return torch.where(torch.rand(len(image), 1, 1, 1, device=image.device) < 0.5, image.flip(-1), image)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean PSNR (dB) of image batches in [-1, 1]."""
    mse = ((a.clamp(-1, 1) - b) / 2).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()


class IdentityModule(L.LightningModule):
    """The identity student: MSE to the clip's dlib embedding, Adam."""

    def __init__(self, config: IdentityNetConfig, lr: float = 1e-3) -> None:
        super().__init__()
        self.net, self.lr = IdentityNet(config), lr

    def _loss(self, batch: dict) -> torch.Tensor:
        keep = ~batch["identity"].isnan().any(1)
        return F.mse_loss(self.net(batch["image"][keep]), batch["identity"][keep]) * batch["identity"].shape[1]

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss = self._loss({**batch, "image": _flip_half(batch["image"])})
        self.log("train_id", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, _: int) -> None:
        self.log("val_id", self._loss(batch), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class GanModule(L.LightningModule):
    """StyleGAN2 training (see the module docstring); one generator and one discriminator step per batch."""

    def __init__(self, generator: GeneratorConfig, discriminator: DiscriminatorConfig, *, lr: float = 0.002,
                 r1_gamma: float = 1.0, r1_every: int = 16, mixing: float = 0.9, ema_images: float = 10_000) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = Generator(generator)
        self.ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.discriminator = Discriminator(discriminator)
        self.lr, self.r1_gamma, self.r1_every, self.mixing, self.ema_images = lr, r1_gamma, r1_every, mixing, ema_images
        self.steps = 0

    def fake(self, batch: int) -> torch.Tensor:
        """Images of random z, two w mixed at a random layer with probability ``mixing``."""
        g = self.generator
        w = g.mapping(torch.randn(2 * batch, g.config.w_dim, device=self.device)).view(2, batch, -1)
        g.track_w(w[0].detach())
        n = g.config.n_latents
        cut = int(torch.randint(1, n, ())) if n > 1 and float(torch.rand(())) < self.mixing else n
        w_plus = torch.cat([w[0, :, None].expand(-1, cut, -1), w[1, :, None].expand(-1, n - cut, -1)], 1)
        return g(w_plus)[0]

    def training_step(self, batch: dict, _: int) -> None:
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        real = _flip_half(batch["image"])
        b = len(real)
        self.discriminator.requires_grad_(True)
        with torch.no_grad():
            fake = self.fake(b)
        d_loss = d_logistic_loss(self.discriminator(real), self.discriminator(fake))
        logs = {"train_d": d_loss.detach()}
        if self.steps % self.r1_every == 0:
            real = real.detach().requires_grad_(True)
            r1 = r1_penalty(self.discriminator(real), real)
            d_loss = d_loss + self.r1_gamma / 2 * r1 * self.r1_every
            logs["train_r1"] = r1.detach()
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()

        self.discriminator.requires_grad_(False)
        g_loss = g_nonsaturating_loss(self.discriminator(self.fake(b)))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self._update_ema(b)
        self.steps += 1
        self.log_dict({**logs, "train_g": g_loss.detach()}, prog_bar=True, batch_size=b)

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        keep = 0.5 ** (batch / self.ema_images)
        for e, p in zip(self.ema.parameters(), self.generator.parameters()):
            e.lerp_(p, 1 - keep)
        for e, p in zip(self.ema.buffers(), self.generator.buffers()):
            e.copy_(p)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        c = self.r1_every / (self.r1_every + 1)
        return [torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=(0.0, 0.99)),
                torch.optim.Adam(self.discriminator.parameters(), lr=self.lr * c, betas=(0.0, 0.99**c))]


@dataclass
class EncoderLossWeights:
    """pSp's weights for faces (L2 1, LPIPS 0.8, ID 0.1) and a small latent regulariser."""

    l2: float = 1.0
    perceptual: float = 0.8
    identity: float = 0.1
    w_reg: float = 0.005


class EncoderModule(L.LightningModule):
    """pSp's encoder objective on a trained generator (frozen unless ``generator_lr > 0``)."""

    def __init__(self, config: EncoderConfig, generator: Generator, identity: IdentityNet | None, *,
                 lr: float = 1e-4, generator_lr: float = 0.0, weights: EncoderLossWeights | None = None) -> None:
        super().__init__()
        self.encoder = Encoder(config)
        self.encoder.w_avg.copy_(generator.w_avg)
        self.generator = generator.train().requires_grad_(generator_lr > 0)
        self.identity = identity.eval().requires_grad_(False) if identity is not None else None
        self.perceptual = PerceptualLoss()
        self.lr, self.generator_lr, self.weights = lr, generator_lr, weights or EncoderLossWeights()

    def losses(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """(weighted loss, its parts, reconstruction) for real images (B, 3, S, S) in [-1, 1]."""
        w = self.encoder(image)
        recon, _ = self.generator(w, noise="none")
        parts = {"l2": F.mse_loss(recon, image),
                 "perceptual": self.perceptual((recon + 1) / 2, (image + 1) / 2),
                 "w_reg": (w - self.generator.w_avg).pow(2).sum(-1).mean()}
        if self.identity is not None:
            self.identity.eval()
            parts["identity"] = identity_loss(self.identity, recon, image)
        loss = sum(getattr(self.weights, k) * v for k, v in parts.items())
        return loss, parts, recon  # type: ignore[return-value]

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss, parts, _ = self.losses(_flip_half(batch["image"]))
        self.log_dict({"train_loss": loss, **{f"train_{k}": v for k, v in parts.items()}}, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, _: int) -> None:
        _, parts, recon = self.losses(batch["image"])
        self.log_dict({"val_l2": parts["l2"], "val_psnr": psnr(recon, batch["image"])}, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = [{"params": self.encoder.parameters(), "lr": self.lr}]
        if self.generator_lr > 0:
            groups.append({"params": self.generator.parameters(), "lr": self.generator_lr})
        return torch.optim.Adam(groups)


@dataclass
class CrossFrameLossWeights:
    """The feature path's reconstruction: L1, the perceptual stand-in, the identity student and a light
    adversarial term (PatchGAN, LSGAN), which joins the generator's loss after ``adversarial_from`` of the steps
    (the discriminator trains from the start)."""

    l1: float = 1.0
    perceptual: float = 0.8
    identity: float = 0.1
    adversarial: float = 0.02
    adversarial_from: float = 0.25
    mouth: float = 0.0
    """Extra L1 inside the target's mouth box (:func:`~talkinghead.train.datasets.lips_box`), the mean over the
    box: the lips are a few percent of the crop, so the plain L1 barely asks for the mouth to follow the codes."""


def box_mask(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 1, size, size) float 0/1 masks of (B, 4) boxes (x0, y0, x1, y1) in 0..1 (pixel centres inside)."""
    pos = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    inside_x = (pos[None] >= boxes[:, 0:1]) & (pos[None] <= boxes[:, 2:3])
    inside_y = (pos[None] >= boxes[:, 1:2]) & (pos[None] <= boxes[:, 3:4])
    return (inside_y[:, :, None] & inside_x[:, None, :]).to(boxes.dtype)[:, None]


class CrossFrameModule(L.LightningModule):
    """The feature path trained end to end as a cross-frame autoencoder: the encoder gives the source frame's
    feature map and codes and the target frame's codes (both frames of one clip); the generator warps the source's
    map to the target's codes and draws the target (see :class:`CrossFrameLossWeights`). Adam for the encoder and
    generator, and for the patch discriminator, trained alternately. ``start`` (a generator and an encoder) continues
    from those models instead of new ones; ``freeze_encoder`` trains the generator only, and the encoder's skip heads
    where it has them (neither touches the codes or the input map, so the codes, and caches of them, stay valid)."""

    def __init__(self, generator: GeneratorConfig, encoder: EncoderConfig, identity: IdentityNet | None, *,
                 max_steps: int, lr: float = 2e-4, disc_channels: int = 32,
                 weights: CrossFrameLossWeights | None = None, start: tuple[Generator, Encoder] | None = None,
                 freeze_encoder: bool = False) -> None:
        super().__init__()
        check_feature_path(generator, encoder)
        self.automatic_optimization = False
        self.generator, self.encoder = start if start is not None else (Generator(generator), Encoder(encoder))
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.eval().requires_grad_(False)
            self.encoder.skip_heads.requires_grad_(True)
        self.identity = identity.eval().requires_grad_(False) if identity is not None else None
        self.disc = MultiScaleDiscriminator(channels=disc_channels, layers=3, scales=1)
        self.perceptual = PerceptualLoss()
        self.lr, self.max_steps, self.weights = lr, max_steps, weights or CrossFrameLossWeights()
        self.steps = 0

    def reconstruct(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Targets (B, 3, S, S) redrawn from the sources' feature maps and the targets' codes."""
        if self.freeze_encoder:
            self.encoder.eval()
        codes, maps = self.encoder.encode(torch.cat([source, target]))
        b = len(source)
        return self.generator(codes[b:], noise="random" if self.training else "none",
                              reference=([m[:b] for m in maps], codes[:b]))[0]

    def training_step(self, batch: dict, _: int) -> None:
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        flip = torch.rand(len(batch["image"]), 1, 1, 1, device=self.device) < 0.5
        target = torch.where(flip, batch["image"].flip(-1), batch["image"])
        source = torch.where(flip, batch["source"].flip(-1), batch["source"])
        box = batch["mouth"]
        box = torch.where(flip[:, :, 0, 0], torch.stack([1 - box[:, 2], box[:, 1], 1 - box[:, 0], box[:, 3]], 1), box)
        fake = self.reconstruct(source, target)
        parts = {"l1": F.l1_loss(fake, target), "perceptual": self.perceptual((fake + 1) / 2, (target + 1) / 2)}
        if self.weights.mouth:
            parts["mouth"] = masked_l1(fake, target, box_mask(box, fake.shape[-1]))
        if self.identity is not None:
            self.identity.eval()
            parts["identity"] = identity_loss(self.identity, fake, target)
        if self.steps >= self.weights.adversarial_from * self.max_steps:
            self.disc.requires_grad_(False)
            parts["adversarial"] = lsgan_loss(self.disc(fake), True)
        loss = sum(getattr(self.weights, k) * v for k, v in parts.items())
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_g.step()
        self.disc.requires_grad_(True)
        d_loss = 0.5 * (lsgan_loss(self.disc(target), True) + lsgan_loss(self.disc(fake.detach()), False))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.steps += 1
        self.log_dict({"train_loss": loss.detach(), "train_disc": d_loss.detach(),
                       **{f"train_{k}": v.detach() for k, v in parts.items()}}, prog_bar=True, batch_size=len(target))

    def validation_step(self, batch: dict, _: int) -> None:
        fake, real = self.reconstruct(batch["source"], batch["image"]), batch["image"]
        mask = box_mask(batch["mouth"], real.shape[-1])
        self.log_dict({"val_l1": F.l1_loss(fake, real), "val_psnr": psnr(fake, real),
                       "val_copy_psnr": psnr(batch["source"], real),
                       "val_mouth_l1": masked_l1(fake, real, mask),
                       "val_copy_mouth_l1": masked_l1(batch["source"], real, mask)}, prog_bar=True,
                      batch_size=len(fake))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        encoder = self.encoder.skip_heads if self.freeze_encoder else self.encoder
        params = [*encoder.parameters(), *self.generator.parameters()]
        return [torch.optim.Adam(params, lr=self.lr, betas=(0.5, 0.99)),
                torch.optim.Adam(self.disc.parameters(), lr=self.lr, betas=(0.5, 0.99))]


def train_stylegan(datasets: list[Path], output: Path, *, configs: StyleGanConfigs, identity_steps: int,
                   gan_steps: int, encoder_steps: int, batch: int = 16, gan_lr: float = 0.002, r1_gamma: float = 1.0,
                   encoder_lr: float = 1e-4, generator_lr: float = 0.0, stage_minutes: float | None = None,
                   start: str | None = None, freeze_encoder: bool = False, mouth_weight: float = 0.0,
                   skip_channels: int = 0, workers: int = 0, seed: int = 0, accelerator: str = "auto",
                   devices: int | str = "auto", nodes: int = 1, quiet: bool = False) -> dict[str, dict[str, float]]:
    """Run the stages on the datasets' train splits (validated on val) into the folder ``output``; ``stage_minutes``
    caps each stage's time. The constant path runs identity, GAN and encoder; the feature path runs identity and the
    cross-frame stage (``encoder_steps``: the encoder and generator together, :class:`CrossFrameModule`) and has no
    GAN stage. The cross-frame stage can continue from trained models (``start``: "shipped" or a train-stylegan
    folder; their sizes replace ``configs``'), with the encoder frozen (``freeze_encoder``), an extra L1 in the
    mouth box (``mouth_weight``), and skip maps of ``skip_channels`` grown onto models without them
    (:func:`grow_skips`). Returns each run stage's last metrics."""
    feature = configs.generator.feature_path
    if feature and gan_steps:
        raise ValueError("the feature path has no GAN stage (its generator trains with the encoder)")
    if not feature and (start or freeze_encoder or mouth_weight or skip_channels):
        raise ValueError("start, freeze_encoder, mouth_weight and skip_channels are options of the feature path")
    if (freeze_encoder or skip_channels) and not start:
        raise ValueError("freeze_encoder and skip_channels need trained models to start from (start)")
    L.seed_everything(seed, workers=True, verbose=False)
    output.mkdir(parents=True, exist_ok=True)
    size = configs.generator.size
    train = CropDataset(datasets, "train", size=size, pairs=feature, seed=seed)
    val = CropDataset(datasets, "val", size=size, pairs=feature, seed=seed + 1)
    run = {"batch": batch, "workers": workers, "accelerator": accelerator, "devices": devices, "nodes": nodes,
           "quiet": quiet, "max_minutes": stage_minutes}
    card = {"datasets": [str(d) for d in datasets], "seed": seed}
    metrics: dict[str, dict[str, float]] = {}

    paths = {k: output / f"{k}.pt" for k in ("identity", "generator", "discriminator", "encoder")}
    if identity_steps:
        ident = IdentityModule(configs.identity)
        metrics["identity"] = fit(ident, train, val, max_steps=identity_steps, **run)
        ident.net.save(paths["identity"], metrics=metrics["identity"], steps=ident.global_step, **card)
    if gan_steps:
        gan = GanModule(configs.generator, configs.discriminator, lr=gan_lr, r1_gamma=r1_gamma)
        metrics["gan"] = fit(gan, train, None, max_steps=2 * gan_steps, **run)
        gan.ema.save(paths["generator"], metrics=metrics["gan"], steps=gan.steps, images=gan.steps * batch,
                     training={"lr": gan_lr, "r1_gamma": r1_gamma, "batch": batch}, **card)
        gan.discriminator.save(paths["discriminator"], steps=gan.steps, **card)
    if encoder_steps and feature:
        models = starting_models(start)
        if models is not None and skip_channels:
            models = (*grow_skips(models[0], models[1], skip_channels), models[2])
        identity = IdentityNet.load(paths["identity"]) if paths["identity"].exists() else \
            models[2] if models is not None else None
        cross = CrossFrameModule(models[0].config if models else configs.generator,
                                 models[1].config if models else configs.encoder, identity,
                                 max_steps=encoder_steps, lr=encoder_lr,
                                 weights=CrossFrameLossWeights(mouth=mouth_weight),
                                 start=models[:2] if models is not None else None, freeze_encoder=freeze_encoder)
        metrics["crossframe"] = fit(cross, train, val, max_steps=2 * encoder_steps, **run)
        training = {"lr": encoder_lr, "weights": asdict(cross.weights), "batch": batch, "start": start,
                    "freeze_encoder": freeze_encoder, "grown_skip_channels": skip_channels,
                    "identity_student": identity is not None}
        for name in ("generator", "encoder"):
            getattr(cross, name).save(paths[name], metrics=metrics["crossframe"], steps=cross.steps,
                                      training=training, **card)
        if identity is not None and not paths["identity"].exists():  # the folder continues with it (--start DIR)
            identity.save(paths["identity"], copied_from=start)
    elif encoder_steps:
        identity = IdentityNet.load(paths["identity"]) if paths["identity"].exists() else None
        enc = EncoderModule(configs.encoder, Generator.load(paths["generator"]), identity, lr=encoder_lr,
                            generator_lr=generator_lr)
        metrics["encoder"] = fit(enc, train, val, max_steps=encoder_steps, **run)
        training = {"lr": encoder_lr, "generator_lr": generator_lr, "weights": asdict(enc.weights), "batch": batch}
        enc.encoder.save(paths["encoder"], metrics=metrics["encoder"], steps=enc.global_step, training=training,
                         **card)
        if generator_lr > 0:
            gan_card = {k: v for k, v in checkpoint_meta(paths["generator"]).items() if k != "config"}
            enc.generator.save(paths["generator"], **{**gan_card, "tuned_with_encoder": {
                **training, "steps": enc.global_step, "metrics": metrics["encoder"]}})
    if not math.isfinite(sum(v for m in metrics.values() for v in m.values())):
        raise RuntimeError(f"training diverged: {metrics}")
    return metrics


def grow_skips(generator: Generator, encoder: Encoder, channels: int) -> tuple[Generator, Encoder]:
    """Feature-path models without skip maps grown into ones with skip maps of ``channels`` (see
    ``GeneratorConfig.skip_channels``): new models holding the given weights, the encoder's new skip heads at their
    initialisation and the generator's new skip convolutions at zero, so that the grown pair draws exactly what the
    given pair drew (as ControlNet's zero convolutions start) and training adds the skips' detail from there."""
    if generator.config.skip_channels or encoder.config.skip_channels:
        raise ValueError("these models already have skip maps")
    if channels <= 0:
        raise ValueError(f"skip channels must be positive, not {channels}")
    grown_gen = Generator(replace(generator.config, skip_channels=channels))
    grown_enc = Encoder(replace(encoder.config, skip_channels=channels))
    for old, new, prefix in ((generator, grown_gen, "skips."), (encoder, grown_enc, "skip_heads.")):
        missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
        if unexpected or any(not k.startswith(prefix) for k in missing):
            raise RuntimeError(f"growing skip maps: unexpected {unexpected}, missing {missing}")
    with torch.no_grad():
        for conv in grown_gen.skips:
            conv.weight.zero_()
            conv.bias.zero_()
    return grown_gen, grown_enc


def starting_models(start: str | None) -> tuple[Generator, Encoder, IdentityNet | None] | None:
    """The (generator, encoder, identity student or None) to continue from: "shipped", a train-stylegan folder, or
    None (new models)."""
    if start is None:
        return None
    if start == "shipped":  # fresh copies: the models default() caches must not be trained in place
        return Generator.load(Generator.default_checkpoint), Encoder.load(Encoder.default_checkpoint), \
            IdentityNet.load(IdentityNet.default_checkpoint)
    folder = Path(start)
    identity = folder / "identity.pt"
    return Generator.load(folder / "generator.pt"), Encoder.load(folder / "encoder.pt"), \
        IdentityNet.load(identity) if identity.exists() else None


def _arguments(tg: argparse.ArgumentParser) -> None:
    training_options(tg, output_help="folder to write the four checkpoints to")
    tg.add_argument("--config", choices=tuple(STYLEGAN_CONFIGS), default="feature",
                    help="feature (default: 128 px, identity from the reference's feature map, trains on a CPU), "
                         "feature-skip (the same with skip maps at 64 and 128 px), feature-tiny (tests); the constant "
                         "path (StyleGAN2 + pSp): tiny (tests, 32 px), cpu (64 px), "
                         "small (128 px), paper (1024 px; GPUs)")
    tg.add_argument("--identity-steps", type=int, default=2000)
    tg.add_argument("--gan-steps", type=int, default=None,
                    help="constant path only (default: 20000)")
    tg.add_argument("--encoder-steps", type=int, default=10000,
                    help="the encoder stage; on the feature path the cross-frame stage (encoder and generator)")
    tg.add_argument("--batch", type=int, default=16)
    tg.add_argument("--gan-lr", type=float, default=0.002, help="Adam learning rate of G and D (default: 0.002)")
    tg.add_argument("--r1-gamma", type=float, default=1.0, help="R1 weight (default: 1.0)")
    tg.add_argument("--encoder-lr", type=float, default=1e-4, help="encoder learning rate (default: 1e-4)")
    tg.add_argument("--generator-lr", type=float, default=0.0,
                    help="tune the generator with the encoder's loss at this rate (default: 0 = frozen, as pSp)")
    tg.add_argument("--stage-minutes", type=float, default=None, help="stop each stage after this many minutes")
    tg.add_argument("--start", default=None, metavar="shipped|DIR",
                    help="feature path: continue the cross-frame stage from these models (the shipped ones, or a "
                         "train-stylegan folder) instead of new ones")
    tg.add_argument("--freeze-encoder", action="store_true",
                    help="feature path: train the generator only, and the encoder's skip heads where it has them "
                         "(the encoder's codes, and caches of them such as train-styletalker --code-cache, stay "
                         "valid)")
    tg.add_argument("--mouth-weight", type=float, default=0.0,
                    help="feature path: extra L1 weight on the mouth box of each target (default: 0)")
    tg.add_argument("--skip-channels", type=int, default=0,
                    help="feature path, with --start: grow the models' skip maps (the reference's 64 and 128 px "
                         "encoder features, warped) of this many channels; they start at zero, so training "
                         "continues from what the models drew (default: 0 = keep the models as they are)")


def _run(args: argparse.Namespace) -> int:
    configs = STYLEGAN_CONFIGS[args.config]
    gan_steps = (0 if configs.generator.feature_path else 20000) if args.gan_steps is None else args.gan_steps
    return print_metrics(train_stylegan(
        args.datasets, args.output, configs=configs, identity_steps=args.identity_steps, gan_steps=gan_steps,
        encoder_steps=args.encoder_steps, batch=args.batch, gan_lr=args.gan_lr, r1_gamma=args.r1_gamma,
        encoder_lr=args.encoder_lr, generator_lr=args.generator_lr, stage_minutes=args.stage_minutes,
        start=args.start, freeze_encoder=args.freeze_encoder, mouth_weight=args.mouth_weight,
        skip_channels=args.skip_channels, workers=args.workers, devices=parse_devices(args.devices), nodes=args.nodes,
        quiet=args.quiet))


COMMAND = Command(
    description="Stages on face crops of the datasets' train splits (PyTorch Lightning): the identity student of "
                "dlib's embedding, then on the feature path (the default) the encoder and generator as a cross-frame "
                "autoencoder (identity.pt, generator.pt, encoder.pt), on the constant path the StyleGAN2-style "
                "generator against its discriminator, then the pSp-style encoder into W+ (identity.pt, "
                "generator.pt, discriminator.pt, encoder.pt). A stage with 0 steps reuses its file from the output "
                "folder.", arguments=_arguments, run=_run)


def _corpus_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", type=Path, help="preprocessed dataset folder (talkinghead preprocess)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder of the copy")
    p.add_argument("--every", type=int, default=1, help="keep every N-th frame of each clip (default: 1, all)")
    p.add_argument("--size", type=int, default=GeneratorConfig.size,
                   help=f"side of the crops (px; default: {GeneratorConfig.size}, the generator's)")
    p.add_argument("-q", "--quiet", action="store_true")


def _run_corpus(args: argparse.Namespace) -> int:
    frames = crop_corpus(args.src, args.output, every=args.every, size=args.size, quiet=args.quiet)
    print(f"{frames} frames -> {args.output}")
    return 0


CORPUS_COMMAND = Command(
    description="A small copy of a preprocessed dataset holding only what train-stylegan reads, to move to a "
                "training machine: every N-th frame, the face crops at the generator's size, the lip points, the "
                "identity embedding; clip ids and splits kept (a clip's other arrays are left empty).",
    arguments=_corpus_arguments, run=_run_corpus)
