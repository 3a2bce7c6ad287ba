"""Training StyleTalker with PyTorch Lightning on a trained generator and encoder (``train-stylegan``).

Items are windows of consecutive face crops with their 0.2 s mel windows and one other frame of the same clip as
the reference. The frozen encoder gives every frame's W+ code w_t and the reference's w_ref; StyleTalker
reconstructs the codes through its posterior, the frozen generator draws them (on the feature path from the
reference's feature map, moved by the codes' offsets from the reference's), and the losses are (StyleTalker's,
our stand-ins named): reconstruction (L1 + the random-VGG perceptual stand-in for LPIPS) of the frames, and with
lambda = 0.1 each: identity (the dlib student, generated frame against the real one), KL (posterior against the
flow prior, per block and latent dimension, with free bits against posterior collapse), a video PatchGAN
(LSGAN, 3-D convolutions over the window) and lip sync (our contrastive image SyncNet on the generated mouths,
InfoNCE over shifted windows). Two additions:

- an L2 between the manipulated codes and the encoder's (weight 1), which makes minutes of training enough to
  follow the encoder;
- a mouth term (weight 1, :func:`cross_mouth_error`): the window's codes decoded from another window's motion
  latents must still hold this window's mouth, read out by a linear probe of the codes (:func:`fit_mouth_probe`).
  Without it the decoder took the mouth from the posterior's latents, which see the frames' codes, rather than
  from the audio, and prior samples (whose latents know nothing of the speech's mouth) and ``--motion-from`` lost
  it. It stands in for the paper's lip-sync loss through a pretrained SyncNet, which we lack.

With ``config.mouth_window`` the model also gets, after training, the speech's mouth map that inference moves the
mouth by (:func:`fit_speech_mouth`): no gradient step, a ridge regression fitted on the same clips. The direction it
moves the codes along is the mouth probe's, or with ``config.mouth_axis`` ``generator`` the one along which the
generator opens the mouth it draws (:func:`fit_generator_mouth`: central differences, no gradient step either).

Configurations: ``tiny`` (CPU tests), ``cpu`` (the shipped checkpoint, on the 64 px ``cpu`` generator), ``small``
(for the 128 px generator), ``paper`` (wider; GPUs).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from talkinghead.audio.speech import SPEECH_INPUTS
from talkinghead.audio.speechmap import WindowRidge, fit_window_ridge
from talkinghead.metrics.mouth import crop_openings, mouth_opening
from talkinghead.motion.styletalker.config import MOUTH_AXES, StyleTalkerConfig
from talkinghead.motion.styletalker.model import StyleTalker
from talkinghead.nn.discriminator import VideoPatchDiscriminator
from talkinghead.nn.identity import IdentityNet, identity_loss
from talkinghead.nn.perceptual import PerceptualLoss
from talkinghead.progress import bar
from talkinghead.render.stylegan.infer import crops_tensor, encode_crops, to_crops
from talkinghead.render.stylegan.model import Encoder, Generator, shipped_models
from talkinghead.spec import Command
from talkinghead.sync.inputs import mouth_crops
from talkinghead.sync.model import SyncNet, sequence_sync_loss
from talkinghead.train.common import fit, generator_training_inputs, parse_devices, print_metrics, training_options
from talkinghead.train.datasets import ClipStore, WindowDataset, clip_frame_vectors, clip_speech_inputs
from talkinghead.train.stylegan import psnr

STYLETALKER_CONFIGS = {
    "tiny": StyleTalkerConfig(audio_channels=4, audio_dim=16, z_dim=4, hidden=32, prior_hidden=32, flow_steps=2,
                              flow_hidden=16),
    "cpu": StyleTalkerConfig(audio_channels=16, audio_dim=64, z_dim=8, hidden=128, prior_hidden=128, flow_steps=3,
                             flow_hidden=64),
    "small": StyleTalkerConfig(),
    "paper": StyleTalkerConfig(audio_channels=64, audio_dim=256, z_dim=32, hidden=512, prior_hidden=512,
                               flow_steps=6, flow_hidden=256),
}
ENCODE_BATCH = 128
MOUTH_MAP_PENALTY = 1e5
"""The speech mouth map's ridge penalty (on standardised inputs, :func:`fit_speech_mouth`): the best of 1e3, 1e4,
1e5 and 3e5 on two folds of ``train/``'s clips (README, StyleTalker)."""
GENERATOR_MOUTH_REFERENCES = 24
"""How many training clips' first frames :func:`fit_generator_mouth` takes the generator's gradient at."""
GENERATOR_MOUTH_COMPONENTS = 24
"""The principal directions of the codes' motion :func:`fit_generator_mouth` steps along."""
GENERATOR_MOUTH_STEP = 2.0
"""Its step either way, in standard deviations of the codes along each direction (small steps move the mesh's
opening by less than its noise)."""
DISC_CHANNELS = {"tiny": 8, "cpu": 16, "small": 32, "paper": 64}


@dataclass
class StyleTalkerLossWeights:
    reconstruction: float = 1.0
    latent: float = 1.0
    identity: float = 0.1
    kl: float = 0.1
    adversarial: float = 0.1
    sync: float = 0.1
    mouth: float = 1.0
    free_bits: float = 0.25
    """Free bits (Kingma et al., 2016) against posterior collapse: each block's KL per latent dimension counts at
    least this many nats, so the optimiser gains nothing by pushing it lower (a CPU run without them collapsed
    the posterior onto the prior, leaving the motion latents unused)."""


def free_bits_kl(kl: torch.Tensor, prior_nll: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL loss of per-block KLs (M,) per latent dimension: their mean, each floored at ``free_bits``. A block
    under the floor still trains its prior: it counts as the floor plus its prior's negative log-likelihood of the
    detached posterior sample (``prior_nll`` (M,), its value cancelled), so the prior keeps fitting the posterior
    while the posterior is left free."""
    return torch.where(kl > free_bits, kl, free_bits + prior_nll - prior_nll.detach()).mean()


def fit_mouth_probe(codes: list[np.ndarray], openings: list[np.ndarray], manipulated: int,
                    penalty: float = 100.0) -> tuple[np.ndarray, float]:
    """A linear read-out of the mouth from the codes: ridge weights (manipulated * w_dim,) float32 from a frame's
    first ``manipulated`` style vectors to its mouth opening (:func:`talkinghead.metrics.mouth.mouth_opening`), both
    centred within each clip, fitted on clips' codes (N, L, w_dim) and openings (N,); and the read-outs' pair
    variance E (p_t - p_r)^2 over two frames t, r of one clip (twice their variance within clips), what a model
    that keeps the reference's mouth misses."""
    xs, ys = [], []
    for c, o in zip(codes, openings):
        n = min(len(c), len(o))
        x = c[:n, :manipulated].reshape(n, -1).astype(np.float64)
        xs.append(x - x.mean(0))
        ys.append(o[:n] - o[:n].mean())
    a, b = np.concatenate(xs), np.concatenate(ys)
    weights = np.linalg.solve(a.T @ a + penalty * np.eye(a.shape[1]), a.T @ b)
    return weights.astype(np.float32), float(2 * np.mean((a @ weights) ** 2))


def speech_mouth_ridge(rows: list[np.ndarray], openings: list[np.ndarray], window: int,
                       penalty: float = MOUTH_MAP_PENALTY) -> WindowRidge:
    """Ridge regression (:func:`~talkinghead.audio.speechmap.fit_window_ridge`, each utterance's features less
    their mean, no PCA) from +-``window`` frames of the clips' speech frame vectors ``rows`` (T_i, D) to their mouth
    openings (T_i,), centred per clip."""
    n = [min(len(r), len(o)) for r, o in zip(rows, openings)]
    return fit_window_ridge([r[:k] for r, k in zip(rows, n)],
                            [(o[:k] - o[:k].mean())[:, None] for o, k in zip(openings, n)],
                            window=window, alpha=penalty, centre=True)


def fit_speech_mouth(rows: list[np.ndarray], openings: list[np.ndarray], window: int, slope: float,
                     penalty: float = MOUTH_MAP_PENALTY) -> np.ndarray:
    """The speech mouth map of :meth:`StyleTalker.set_speech_mouth`, (2 window + 1, D) float32:
    :func:`speech_mouth_ridge` folded into one weight per window frame and feature (its constant dropped: the map's
    output is centred over each utterance), divided by the mouth direction's ``slope``, the mouth opening per unit
    of code offset along it (the mouth probe's norm: its read-out; the generator direction's: the drawn mouth's)."""
    ridge = speech_mouth_ridge(rows, openings, window, penalty)
    per_frame = (ridge.weights[:-1, 0] / ridge.scale).reshape(2 * window + 1, -1)
    return (per_frame @ ridge.components.T / slope).astype(np.float32)


def first_frames(store: ClipStore, n: int) -> list[np.ndarray]:
    """The first frame's crop of ``n`` clips spread evenly over ``store`` (all of them when it holds fewer)."""
    picks = np.unique(np.linspace(0, len(store) - 1, min(n, len(store))).round().astype(int))
    return [store.clip(int(k)).frames([0])[0] for k in picks]


@torch.no_grad()
def fit_generator_mouth(generator: Generator, encoder: Encoder, references: list[np.ndarray],
                        codes: list[np.ndarray], manipulated: int, components: int = GENERATOR_MOUTH_COMPONENTS,
                        step: float = GENERATOR_MOUTH_STEP, quiet: bool = False) -> np.ndarray:
    """The direction (manipulated * w_dim,) of the manipulated codes along which ``generator`` opens the mouth it
    draws, its norm the drawn opening's change per unit of offset: the gradient of the mesh's mouth opening of the
    drawn crops (:func:`~talkinghead.metrics.mouth.crop_openings`), by central differences along the top
    ``components`` principal directions of the clips' ``codes`` (N_i, L, w_dim) about their means, each stepped
    +-``step`` of its standard deviation from a reference crop's (S, S, 3) own codes and drawn from its map;
    averaged over the ``references``. (The mouth probe's read-out direction is the one the codes carry the mouth
    along; the generator opens the mouth far more along this one.)"""
    flat = (c[:, :manipulated].reshape(len(c), -1).astype(np.float32) for c in codes)
    offsets = np.concatenate([(f - f.mean(0))[::4] for f in flat])  # every 4th frame about its clip's mean
    _, singular, axes = np.linalg.svd(offsets - offsets.mean(0), full_matrices=False)
    axes = torch.from_numpy(axes[:components])
    steps = torch.from_numpy(step * singular[:components] / np.sqrt(len(offsets))).float()
    moves = torch.cat([steps[:, None] * axes, -steps[:, None] * axes])  # (2K, m * w_dim): +step, then -step
    gradients = []
    with bar(len(references), "the generator's mouth direction", quiet=quiet, unit="face") as pb:
        for reference in references:
            ref_codes, ref_map = encoder.encode(crops_tensor(reference[None], generator.config.size))
            drawn = ref_codes.expand(len(moves), -1, -1).clone()
            drawn[:, :manipulated] += moves.view(len(moves), manipulated, -1)
            crops = np.concatenate([to_crops(generator(drawn[b:b + 16], noise="none",
                                                       reference=(ref_map, ref_codes))[0])
                                    for b in range(0, len(drawn), 16)])
            opened = crop_openings(crops)
            slopes = (opened[:components] - opened[components:]) / (2 * steps.numpy())
            gradients.append(slopes @ axes.numpy())
            pb.update()
    return np.mean(gradients, 0).astype(np.float32)


def mouth_error(w_hat: torch.Tensor, w: torch.Tensor, probe: torch.Tensor, variance: float) -> torch.Tensor:
    """Squared error of the mouth read-outs (``probe``: :func:`fit_mouth_probe`'s weights) of codes w_hat against
    the real codes w (B, T, L, w_dim), over the read-outs' pair variance (1: no better than the reference's
    mouth)."""
    m = probe.numel() // w.shape[-1]
    return ((w_hat[:, :, :m] - w[:, :, :m]).flatten(2) @ probe).pow(2).mean() / variance


def cross_mouth_error(model: StyleTalker, z: torch.Tensor, audio: torch.Tensor, w_ref: torch.Tensor,
                      w: torch.Tensor, probe: torch.Tensor, variance: float) -> torch.Tensor:
    """:func:`mouth_error` of each window's codes decoded from the next window's motion latents (the batch's
    posterior samples z rolled by one, detached) with its own audio and reference: the mouth must come from the
    audio, whatever the motion latents."""
    return mouth_error(model.decode(z.roll(1, 0).detach(), audio, w_ref), w, probe, variance)


def clip_codes(encoder: Encoder, store: ClipStore, *, quiet: bool = False) -> list[np.ndarray]:
    """W+ codes (N, L, w_dim) float16 of every frame of every clip of ``store``, by the frozen encoder."""
    out = []
    with bar(sum(store.lengths()), "encode frames", quiet=quiet) as pb:
        for k in range(len(store)):
            clip, codes = store.clip(k), []
            for s in range(0, clip.n_frames, ENCODE_BATCH):
                crops = clip.frames(range(s, min(s + ENCODE_BATCH, clip.n_frames)))
                codes.append(encode_crops(encoder, crops).half().numpy())
                pb.update(len(crops))
            out.append(np.concatenate(codes))
    return out


def cached_codes(encoder: Encoder, store: ClipStore, cache: Path | None, encoder_name: str, *,
                 quiet: bool = False) -> list[np.ndarray]:
    """:func:`clip_codes`, read from ``cache`` (.npz) when it holds those of the same encoder and clips, else
    computed (and written there when given)."""
    keys = np.array([f"{root}/{cid}" for root, cid in store.keys])
    if cache is not None and cache.exists():
        with np.load(cache) as f:
            if str(f["encoder"]) == encoder_name and np.array_equal(f["keys"], keys):
                return [f[f"c{k}"] for k in range(len(keys))]
    codes = clip_codes(encoder, store, quiet=quiet)
    if cache is not None:
        np.savez(cache, encoder=np.array(encoder_name), keys=keys, **{f"c{k}": c for k, c in enumerate(codes)})
    return codes


def motion_variance(codes: list[np.ndarray], manipulated: int) -> float:
    """E (w_t - w_r)^2 over the first ``manipulated`` vectors of two frames t, r of one clip (twice the codes'
    variance within clips, weighted by frames): what a model that keeps the reference's code misses."""
    first = [c[:, :manipulated].astype(np.float64) for c in codes]
    return float(2 * sum(c.var(0).mean() * len(c) for c in first) / sum(len(c) for c in first))


class CodeWindows(Dataset):
    """Stage 1's items: windows of ``window`` frames of one clip's W+ codes (:func:`clip_codes`) and speech inputs,
    with the code of another frame of the clip as the reference. Keys: codes (T, L, w_dim), reference (L, w_dim),
    speech (T, ...)."""

    def __init__(self, codes: list[np.ndarray], speech: list[np.ndarray], *, window: int, stride: int,
                 seed: int) -> None:
        self.codes, self.speech, self.window, self.seed = codes, speech, window, seed
        self.index = [(k, s) for k, c in enumerate(codes) for s in range(0, len(c) - window + 1, stride)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        k, s = self.index[i]
        n, window = len(self.codes[k]), slice(s, s + self.window)
        outside = np.setdiff1d(np.arange(n), np.arange(s, s + self.window))
        r = np.random.default_rng([self.seed, i]).choice(outside if len(outside) else np.arange(n))
        return {"codes": torch.from_numpy(self.codes[k][window].astype(np.float32)),
                "reference": torch.from_numpy(self.codes[k][r].astype(np.float32)),
                "speech": torch.from_numpy(self.speech[k][window])}


def relative_latent_error(w_hat: torch.Tensor, w: torch.Tensor, manipulated: int, variance: float) -> torch.Tensor:
    """Squared error of the manipulated codes over :func:`motion_variance` (1: no better than the reference's)."""
    return F.mse_loss(w_hat[:, :, :manipulated], w[:, :, :manipulated]) / variance


class StyleTalkerCodeModule(L.LightningModule):
    """Stage 1 (our addition, for CPUs): StyleTalker fitted in code space on :class:`CodeWindows`, the frozen
    encoder's codes of every frame: :func:`relative_latent_error` + the KL with free bits (+ the mouth term,
    :func:`cross_mouth_error`, with ``probe``). No image is drawn, so a step takes a fraction of a second, not
    seconds; stage 2 (:class:`StyleTalkerModule`) adds the paper's image losses. Validation also scores codes drawn
    from the prior's mode (temperature 0), which only the audio can bring nearer the real ones than the reference's
    code (``val_prior_error`` < 1), and with ``probe`` their mouth (``val_prior_mouth``)."""

    def __init__(self, model: StyleTalker, variance: float, *, probe: tuple[np.ndarray, float] | None = None,
                 lr: float = 1e-4, weights: StyleTalkerLossWeights | None = None) -> None:
        super().__init__()
        self.model, self.variance, self.lr = model, variance, lr
        self.weights = weights or StyleTalkerLossWeights()
        _set_probe(self, probe)

    def _losses(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w, w_ref = batch["codes"], batch["reference"]
        audio = self.model.encode_audio(batch["speech"])
        w_hat, kl, prior_nll, z = self.model.reconstruct(w, w_ref, audio)
        parts = {"latent": relative_latent_error(w_hat, w, self.model.config.manipulated, self.variance),
                 "kl": free_bits_kl(kl, prior_nll, self.weights.free_bits)}
        if self.probe is not None:
            parts["mouth"] = cross_mouth_error(self.model, z, audio, w_ref, w, self.probe, self.mouth_variance)
        loss = sum(getattr(self.weights, k) * v for k, v in parts.items())
        return loss, {**parts, "kl_raw": kl.mean().detach()}  # type: ignore[return-value]

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss, parts = self._losses(batch)
        self.log_dict({"train_loss": loss.detach(), **{f"train_{k}": v.detach() for k, v in parts.items()}},
                      prog_bar=True, batch_size=len(batch["codes"]))
        return loss

    def validation_step(self, batch: dict, _: int) -> None:
        _, parts = self._losses(batch)
        # the decoded codes, before the mouth gain, which only inference applies
        prior = self.model.generate(batch["reference"], batch["speech"], temperature=0.0, mouth_gain=1.0)
        scores = {"val_latent": parts["latent"], "val_kl": parts["kl_raw"],
                  "val_prior_error": relative_latent_error(prior, batch["codes"], self.model.config.manipulated,
                                                           self.variance)}
        if self.probe is not None:
            scores["val_prior_mouth"] = mouth_error(prior, batch["codes"], self.probe, self.mouth_variance)
        self.log_dict(scores, prog_bar=True, batch_size=len(batch["codes"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


def _set_probe(module: L.LightningModule, probe: tuple[np.ndarray, float] | None) -> None:
    """Keep :func:`fit_mouth_probe`'s weights as a buffer (``module.probe``, None without a probe) and its pair
    variance (``module.mouth_variance``)."""
    module.register_buffer("probe", None if probe is None else torch.from_numpy(probe[0]), persistent=False)
    module.mouth_variance = 1.0 if probe is None else probe[1]


class StyleTalkerModule(L.LightningModule):
    """Stage 2: StyleTalker + the video discriminator, trained alternately (Adam 1e-4) with the paper's image
    losses and our mouth term; generator, encoder, identity student and SyncNet frozen (the last two optional: their
    loss terms are left out without them, as the mouth term is without ``probe``). ``variance``:
    :func:`motion_variance` of the training codes."""

    def __init__(self, model: StyleTalker, variance: float, generator: Generator, encoder: Encoder,
                 identity: IdentityNet | None, syncnet: SyncNet | None, *,
                 probe: tuple[np.ndarray, float] | None = None, lr: float = 1e-4, disc_channels: int = 32,
                 weights: StyleTalkerLossWeights | None = None) -> None:
        super().__init__()
        _set_probe(self, probe)
        self.automatic_optimization = False
        if syncnet is not None and syncnet.config.visual != "image":
            raise ValueError("StyleTalker's sync loss needs a SyncNet with the image visual stream")
        self.model, self.variance = model, variance
        self.generator = generator.eval().requires_grad_(False)
        self.encoder = encoder.eval().requires_grad_(False)
        self.identity = identity.eval().requires_grad_(False) if identity is not None else None
        self.syncnet = syncnet.eval().requires_grad_(False) if syncnet is not None else None
        self.disc = VideoPatchDiscriminator(disc_channels)
        self.perceptual = PerceptualLoss()
        self.lr, self.weights = lr, weights or StyleTalkerLossWeights()

    def _prepare(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                             list[torch.Tensor] | None]:
        """(real frames (B, T, 3, S, S) in [-1, 1], reference (B, 3, S, S), their codes w (B, T, L, D), w_ref, the
        reference's maps for a feature-path generator or None)."""
        s = self.generator.config.size
        b, t = batch["frames"].shape[:2]
        frames = torch.cat([batch["frames"].flatten(0, 1), batch["references"][:, 0]])
        if frames.shape[-1] != s:
            frames = F.interpolate(frames, size=(s, s), mode="area")
        frames = frames * 2 - 1
        self.encoder.eval()
        with torch.no_grad():
            codes, maps = self.encoder.encode(frames)
        real, ref = frames[:b * t].view(b, t, 3, s, s), frames[b * t:]
        return (real, ref, codes[:b * t].view(b, t, *codes.shape[1:]), codes[b * t:],
                None if maps is None else [m[b * t:] for m in maps])

    def _render(self, w_plus: torch.Tensor, w_ref: torch.Tensor, maps: list[torch.Tensor] | None) -> torch.Tensor:
        """Frames (B, T, 3, S, S) of codes (B, T, L, D); on the feature path drawn from the reference's maps."""
        b, t = w_plus.shape[:2]
        reference = None if maps is None else ([m.repeat_interleave(t, 0) for m in maps],
                                               w_ref.repeat_interleave(t, 0))
        images, _ = self.generator(w_plus.flatten(0, 1), noise="none", reference=reference)
        return images.view(b, t, *images.shape[1:])

    def _generator_losses(self, batch: dict
                          ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        real, _, w, w_ref, maps = self._prepare(batch)
        audio = self.model.encode_audio(batch["speech"])
        w_hat, kl, prior_nll, z = self.model.reconstruct(w, w_ref, audio)
        fake = self._render(w_hat, w_ref, maps)
        score = self.disc(fake)
        parts = {"reconstruction": F.l1_loss(fake, real) + self.perceptual((fake.flatten(0, 1) + 1) / 2,
                                                                           (real.flatten(0, 1) + 1) / 2),
                 "latent": relative_latent_error(w_hat, w, self.model.config.manipulated, self.variance),
                 "kl": free_bits_kl(kl, prior_nll, self.weights.free_bits),
                 "adversarial": F.mse_loss(score, torch.ones_like(score))}
        if self.probe is not None:
            parts["mouth"] = cross_mouth_error(self.model, z, audio, w_ref, w, self.probe, self.mouth_variance)
        if self.identity is not None:
            self.identity.eval()
            parts["identity"] = identity_loss(self.identity, fake.flatten(0, 1), real.flatten(0, 1))
        if self.syncnet is not None:
            self.syncnet.eval()
            size = (self.syncnet.config.height, self.syncnet.config.width)
            parts["sync"] = sequence_sync_loss(self.syncnet, mouth_crops(fake, size), batch["mel_iplap"])
        loss = sum(getattr(self.weights, k) * v for k, v in parts.items())
        return loss, {**parts, "kl_raw": kl.mean().detach()}, fake, real  # type: ignore[return-value]

    def training_step(self, batch: dict, _: int) -> None:
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        self.disc.requires_grad_(False)
        loss, parts, fake, real = self._generator_losses(batch)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_g.step()
        self.disc.requires_grad_(True)
        d_real, d_fake = self.disc(real), self.disc(fake.detach())
        d_loss = 0.5 * (F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.log_dict({"train_loss": loss.detach(), "train_disc": d_loss.detach(),
                       **{f"train_{k}": v.detach() for k, v in parts.items()}}, prog_bar=True, batch_size=len(real))

    def validation_step(self, batch: dict, _: int) -> None:
        real, _, w, w_ref, maps = self._prepare(batch)
        w_hat, kl, _ = self.model(w, w_ref, batch["speech"])
        fake = self._render(w_hat, w_ref, maps)
        self.log_dict({"val_l1": F.l1_loss(fake, real), "val_psnr": psnr(fake.flatten(0, 1), real.flatten(0, 1)),
                       "val_kl": kl.mean()}, prog_bar=True, batch_size=len(real))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.model.parameters(), lr=self.lr),
                torch.optim.Adam(self.disc.parameters(), lr=self.lr, betas=(0.5, 0.999))]


@dataclass
class CodeStage:
    """Stage 1's run (:class:`StyleTalkerCodeModule`): ``steps`` (0 skips it), items of ``window`` frames,
    ``batch`` items a step, Adam at ``lr``, at most ``minutes``; ``cache``: a folder for the encoder's codes of
    the datasets (``codes_train.npz``, ``codes_val.npz``), reused by later runs with the same encoder."""

    steps: int = 3000
    batch: int = 32
    window: int = 50
    lr: float = 1e-3
    minutes: float | None = None
    cache: Path | None = None


def manipulated_latents(generator: Generator) -> int:
    """The style vectors StyleTalker moves: the paper's first half of W+; on the feature path the motion latents
    (the vectors that drive its flow: pose and mouth shape there; the rest only texture the reference's map)."""
    g = generator.config
    return g.motion_latents if g.feature_path else g.n_latents // 2


def train_styletalker(datasets: list[Path], output: Path, *, stylegan: Path | None, syncnet: Path | None,
                      config: StyleTalkerConfig, max_steps: int, code: CodeStage | None = None, batch: int = 8,
                      window: int = 16, lr: float = 1e-4, disc_channels: int = 32, max_minutes: float | None = None,
                      mouth_weight: float = StyleTalkerLossWeights.mouth, workers: int = 0, seed: int = 0,
                      accelerator: str = "auto", devices: int | str = "auto", nodes: int = 1,
                      quiet: bool = False) -> dict[str, float]:
    """Train on the datasets' train splits (validated on val) with the generator, encoder and identity student of
    the ``train-stylegan`` folder ``stylegan`` (None: the shipped feature-path ones) and an image SyncNet
    (``syncnet``, optional): stage 1 in code space (``code``), then ``max_steps`` of stage 2 with the image losses
    (0 skips it). Both stages add the mouth term at ``mouth_weight`` (0 leaves it out), its probe fitted on the
    train split's codes and mesh openings; with ``config.mouth_gain`` or ``mouth_window`` the model stores a mouth
    direction (``config.mouth_axis``: the probe's, or the generator's, :func:`fit_generator_mouth`). The
    config takes the generator's W+ shape and :func:`manipulated_latents`. Saves ``output``."""
    L.seed_everything(seed, workers=True, verbose=False)
    code = code or CodeStage()
    if stylegan is None:
        generator, encoder, identity = Generator.default(), Encoder.default(), IdentityNet.default()
    else:
        generator, encoder = Generator.load(stylegan / "generator.pt"), Encoder.load(stylegan / "encoder.pt")
        identity = IdentityNet.load(stylegan / "identity.pt") if (stylegan / "identity.pt").exists() else None
    sync = SyncNet.load(syncnet) if syncnet is not None else None
    g = generator.config
    if config.mouth_axis == "generator" and config.stores_mouth_direction and not g.feature_path:
        raise ValueError("mouth_axis 'generator' needs a feature-path generator (it draws from a reference's map)")
    config = replace(config, w_dim=g.w_dim, n_latents=g.n_latents, manipulated=manipulated_latents(generator),
                     mel_frames=sync.config.mel_frames if sync else config.mel_frames)
    model = StyleTalker(config)
    encoder_name = str(stylegan / "encoder.pt") if stylegan else f"shipped {Encoder.default_checkpoint.name}"

    def split_codes(split: str) -> tuple[ClipStore, list[np.ndarray]]:
        store = ClipStore(datasets, split, cache=2)
        path = code.cache / f"codes_{split}.npz" if code.cache else None
        return store, cached_codes(encoder, store, path, encoder_name, quiet=quiet)

    def speech_of(store: ClipStore) -> list[np.ndarray]:
        return [clip_speech_inputs(config.speech, store.clip(k)) for k in range(len(store))]

    train_store, train_codes = split_codes("train")  # stage 2 needs their variance too
    variance = motion_variance(train_codes, config.manipulated)
    weights = replace(StyleTalkerLossWeights(), mouth=mouth_weight)
    probe = None
    if mouth_weight or config.stores_mouth_direction:  # (a mouth_window stores a direction)
        openings = [mouth_opening(train_store.clip(k).meshes) for k in range(len(train_store))]
        probe = fit_mouth_probe(train_codes, openings, config.manipulated)
        if config.stores_mouth_direction:
            direction = probe[0] if config.mouth_axis == "probe" else fit_generator_mouth(
                generator, encoder, first_frames(train_store, GENERATOR_MOUTH_REFERENCES), train_codes,
                config.manipulated, quiet=quiet)
            model.set_mouth_direction(torch.from_numpy(direction))
        if config.mouth_window:
            rows = [clip_frame_vectors(config.speech, train_store.clip(k)) for k in range(len(train_store))]
            model.set_speech_mouth(torch.from_numpy(fit_speech_mouth(rows, openings, config.mouth_window,
                                                                     float(np.linalg.norm(direction)))))
    term_probe = probe if mouth_weight else None
    metrics: dict[str, float] = {}
    if code.steps:
        val_store, val_codes = split_codes("val")
        stage1 = StyleTalkerCodeModule(model, variance, probe=term_probe, lr=code.lr, weights=weights)
        train1 = CodeWindows(train_codes, speech_of(train_store), window=code.window,
                             stride=max(code.window // 4, 1), seed=seed)
        val1 = CodeWindows(val_codes, speech_of(val_store), window=code.window, stride=code.window, seed=seed + 1)
        metrics = {f"code_{k}": v for k, v in fit(stage1, train1, val1, max_steps=code.steps, batch=code.batch,
                                                  workers=workers, accelerator=accelerator, devices=devices,
                                                  nodes=nodes, max_minutes=code.minutes, quiet=quiet).items()}
        code_steps = stage1.global_step
    else:
        code_steps = 0
    module = StyleTalkerModule(model, variance, generator, encoder, identity, sync, probe=term_probe, lr=lr,
                               disc_channels=disc_channels, weights=weights)
    if max_steps:
        kw = {"window": window, "references": 1, "speech": config.speech}
        train = WindowDataset(datasets, "train", stride=max(window // 4, 1), seed=seed, **kw)
        val = WindowDataset(datasets, "val", seed=seed + 1, **kw)
        metrics.update(fit(module, train, val, max_steps=2 * max_steps, batch=batch, workers=workers,
                           accelerator=accelerator, devices=devices, nodes=nodes, max_minutes=max_minutes,
                           quiet=quiet))
    model.save(output, metrics=metrics, datasets=[str(d) for d in datasets], code_steps=code_steps,
               steps=module.global_step // 2, stylegan=str(stylegan) if stylegan else shipped_models(),
               syncnet=str(syncnet) if syncnet else None, motion_variance=variance,
               mouth_variance=term_probe[1] if term_probe else None,
               training={"batch": batch, "window": window, "lr": lr, "seed": seed, "config": asdict(config),
                         "code_stage": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(code).items()},
                         "weights": asdict(module.weights)})
    return metrics


def _arguments(tk: argparse.ArgumentParser) -> None:
    training_options(tk)
    generator_training_inputs(tk, shipped=True)
    tk.add_argument("--config", choices=("tiny", "cpu", "small", "paper"), default="small",
                    help="sizes: tiny (tests), cpu, small (the shipped checkpoint), paper (wider; GPUs)")
    tk.add_argument("--speech", choices=SPEECH_INPUTS, default="mel",
                    help="the audio encoder's input: mel windows (the paper), phone one-hots or Whisper tiny.en "
                         "encoder features (whisper: the last layer; whisper3: the third block) (default: mel)")
    tk.add_argument("--speech-dropout", type=float, default=StyleTalkerConfig.speech_dropout,
                    help="dropout on the speech inputs while training (default: %(default)s)")
    stage1 = CodeStage()
    tk.add_argument("--code-steps", type=int, default=stage1.steps,
                    help=f"stage 1, in code space (no image drawn; default: {stage1.steps}; 0 skips it)")
    tk.add_argument("--code-batch", type=int, default=stage1.batch, help=f"stage 1 (default: {stage1.batch})")
    tk.add_argument("--code-window", type=int, default=stage1.window,
                    help=f"stage 1 frames per item (default: {stage1.window})")
    tk.add_argument("--code-lr", type=float, default=stage1.lr, help=f"stage 1 (default: {stage1.lr})")
    tk.add_argument("--code-minutes", type=float, default=None, help="stop stage 1 after this many minutes")
    tk.add_argument("--code-cache", type=Path, default=None,
                    help="folder to keep the encoder's codes of the datasets in, for later runs")
    tk.add_argument("--steps", type=int, default=500, help="stage 2, with the image losses (default: 500)")
    tk.add_argument("--batch", type=int, default=8)
    tk.add_argument("--window", type=int, default=16, help="frames per item (default: 16; at least 10 for sync)")
    tk.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    tk.add_argument("--minutes", type=float, default=None, help="stop stage 2 after this many minutes")
    tk.add_argument("--mouth-weight", type=float, default=StyleTalkerLossWeights.mouth,
                    help="weight of the mouth term, both stages (default: %(default)s; 0 leaves it out)")
    tk.add_argument("--mouth-window", type=int, default=StyleTalkerConfig.mouth_window,
                    help="at inference, move the mouth by a ridge regression over this many speech frames either "
                         "side (fitted after training; the shipped model: 6; default: %(default)s = the decoder's "
                         "mouth; not with --speech mel)")
    tk.add_argument("--mouth-gain", type=float, default=StyleTalkerConfig.mouth_gain,
                    help="at inference, multiply the codes' offset from the reference along the mouth direction "
                         "by this (the shipped model: 1.5, for the shipped generator's weak mouth; "
                         "default: %(default)s = off)")
    tk.add_argument("--mouth-axis", choices=MOUTH_AXES, default=StyleTalkerConfig.mouth_axis,
                    help="the mouth direction of --mouth-gain and --mouth-window: the mouth probe's read-out "
                         "direction, or the one along which the generator opens the mouth it draws (the shipped "
                         "model; default: %(default)s)")


def _run(args: argparse.Namespace) -> int:
    if args.code_cache is not None:
        args.code_cache.mkdir(parents=True, exist_ok=True)
    code = CodeStage(args.code_steps, args.code_batch, args.code_window, args.code_lr, args.code_minutes,
                     args.code_cache)
    return print_metrics(train_styletalker(
        args.datasets, args.output, stylegan=args.stylegan, syncnet=args.syncnet,
        config=replace(STYLETALKER_CONFIGS[args.config], speech=args.speech, speech_dropout=args.speech_dropout,
                       mouth_gain=args.mouth_gain, mouth_window=args.mouth_window,
                       mouth_axis=args.mouth_axis),
        max_steps=args.steps, code=code, batch=args.batch, window=args.window, lr=args.lr,
        disc_channels=DISC_CHANNELS[args.config], max_minutes=args.minutes, mouth_weight=args.mouth_weight,
        workers=args.workers, devices=parse_devices(args.devices), nodes=args.nodes, quiet=args.quiet))


COMMAND = Command(
    description="StyleTalker (audio encoder, per-layer posterior blocks with smoothing and two-way manipulation, "
                "autoregressive flow prior) with PyTorch Lightning on windows of the datasets' train splits, with "
                "the generator, encoder and identity student of a train-stylegan folder and an image SyncNet for "
                "the sync loss.", arguments=_arguments, run=_run)
