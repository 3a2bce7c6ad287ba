"""Training VAST's motion model with PyTorch Lightning.

Loss (VAST Eq. 2): reconstruction_weight x the reconstruction loss of the expression coefficients (asymmetric
or MSE; in units of the coefficients' RMS standard deviation, so that, the basis being orthonormal, it weighs
coefficients by how far they move the mesh) + kl_weight x (KL(q || p) - sum log|det|) of the
variational style enhancer. The style clip is another clip of the item's style class (real data: its speaker),
else another part of the same clip; z is sampled from the posterior (reparameterised). The weakly related
coefficients are teacher-forced from the previous ground-truth frame (with input noise); validation decodes
them freely, as inference does.

The person-specific renderer (:mod:`talkinghead.render.vast`) trains on one template video: items are
``frames`` consecutive frames (the LSTM sees them in order), the loss is pix2pix's: ``l1_weight`` x L1 inside the
face region + an LSGAN PatchGAN conditioned on the sketch; the last tenth of the video is held out.

Configurations: ``tiny`` (CPU tests), ``small`` (the shipped checkpoint, trained on a CPU), ``paper``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from talkinghead.audio.posteriorgram import SPEECH_KINDS
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import FaceModel, default_face_model
from talkinghead.io.paths import require_file
from talkinghead.motion.vast.config import VastConfig
from talkinghead.motion.vast.model import Vast, reconstruction_loss
from talkinghead.motion.vast.split import strong_coefficients
from talkinghead.nn.discriminator import PatchDiscriminator, lsgan_loss
from talkinghead.nn.layers import masked_l1
from talkinghead.render.vast.model import VastRenderer, VastRendererConfig, composite
from talkinghead.render.vast.renderer import Template, frame_inputs, prepare_template, to_tensor
from talkinghead.spec import Command
from talkinghead.train.common import (
    fit,
    fold_name,
    hold_out_option,
    parse_devices,
    print_metrics,
    snapshot_path,
    style_training_options,
    training_options,
)
from talkinghead.train.datasets import VastDataset, held_out_clips, held_out_paths

VAST_CONFIGS = {
    "tiny": VastConfig(d_model=32, heads=2, style_conv_layers=1, style_dim=8, nar_layers=1, feedforward=64,
                       ar_hidden=32, ar_layers=1, max_style_frames=64),
    "small": VastConfig(d_model=128, heads=4, style_dim=64, nar_layers=2, feedforward=256, ar_hidden=128),
    "paper": VastConfig(),
}


RENDERER_CONFIGS = {
    "tiny": VastRendererConfig(size=64, channels=8, depth=3, speech_hidden=8),
    "small": VastRendererConfig(size=128, channels=16, depth=4, speech_hidden=32),
    "paper": VastRendererConfig(size=256, channels=64, depth=6, speech_hidden=128),
}


class VastModule(L.LightningModule):
    """VAST's motion model trained with Adam."""

    def __init__(self, config: VastConfig, *, scale: torch.Tensor, lr: float = 1e-4) -> None:
        super().__init__()
        self.model = Vast(config)
        self.model.scale.copy_(scale[:config.n_expression])
        self.lr = lr

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        c, real = self.model.config, batch["expression"]
        z, variational = self.model.style(batch["style"], batch["style_speech"], batch["style_padding"], sample=True)
        pred = self.model(batch["speech"], z, real, noise=c.ar_input_noise)
        unit = self.unit
        rec = reconstruction_loss(pred / unit, real / unit, kind=c.loss, asymmetry=c.asymmetry)
        return {"loss": c.reconstruction_weight * rec + c.kl_weight * variational.mean(), "rec": rec,
                "kl": variational.mean()}

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        parts = self.losses(batch)
        self.log_dict({f"train_{k}": v.detach() for k, v in parts.items()}, prog_bar=True,
                      batch_size=len(batch["expression"]))
        return parts["loss"]

    def validation_step(self, batch: dict, _: int) -> None:
        z, _ = self.model.style(batch["style"], batch["style_speech"], batch["style_padding"])
        pred = self.model.generate(batch["speech"], z)
        err = ((pred - batch["expression"]) / self.unit).pow(2)
        self.log_dict({"val_mse": err.mean(), "val_strong_mse": err[..., self.model.strong_index].mean()},
                      prog_bar=True, batch_size=len(err))

    @property
    def unit(self) -> torch.Tensor:
        """RMS standard deviation of the coefficients: the unit of the losses and validation errors."""
        return self.model.scale.pow(2).mean().sqrt()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


def train_vast(datasets: list[Path], output: Path, *, config: VastConfig, max_steps: int, batch: int = 16,
               window: int = 64, style_length: int = 128, lr: float = 1e-4, face_model: FaceModel | None = None,
               hold_out: tuple[int, int] | None = None, save_every: int = 0, workers: int = 0, seed: int = 0,
               accelerator: str = "auto", devices: int | str = "auto", nodes: int = 1,
               quiet: bool = False) -> dict[str, float]:
    """Train on the datasets' train splits (validated on val) with ``window``-frame items and style clips of up to
    ``style_length`` frames; the config gets the face model's strong/weak split
    (:func:`~talkinghead.motion.vast.split.strong_coefficients`). ``hold_out`` (fold, folds) leaves out that fold of the
    first dataset's speakers (:func:`~talkinghead.train.datasets.held_out_clips`; listed in the checkpoint as
    ``held_out``: speakers the model never saw, on which ``benchmarks/heldout.py vast`` compares training recipes and
    ``benchmarks/vast_gain.py`` chooses the mouth gain). Saves ``output``, and every ``save_every`` steps before the
    last a snapshot beside it (:func:`~talkinghead.train.common.snapshot_path`); returns the last metrics."""
    L.seed_everything(seed, workers=True, verbose=False)
    face_model = face_model or default_face_model()
    held_out = held_out_clips(datasets, hold_out)
    kw = {"speech": config.speech, "window": window, "style_length": style_length}
    train = VastDataset(datasets, "train", train=True, seed=seed, exclude=held_out, **kw)
    val = VastDataset(datasets, "val", seed=seed + 1, **kw)
    config = replace(config, strong=strong_coefficients(face_model, config.n_expression),
                     max_style_frames=max(config.max_style_frames, style_length))
    scale = torch.from_numpy(face_model.expression_std.astype("float32"))
    module = VastModule(config, scale=scale, lr=lr)

    def save(path: Path, steps: int, metrics: dict[str, float]) -> None:
        module.model.save(path, metrics=metrics, classes=train.classes, datasets=[str(d) for d in datasets],
                          steps=steps, face_model=face_model.card.get("name", ""),
                          held_out=held_out_paths(held_out),
                          training={"batch": batch, "window": window, "style_length": style_length, "lr": lr,
                                    "seed": seed, "hold_out": fold_name(hold_out), "config": asdict(config)})

    metrics = fit(module, train, val, max_steps=max_steps, batch=batch, workers=workers, accelerator=accelerator,
                  devices=devices, nodes=nodes, save_every=save_every,
                  save=lambda steps, m: save(snapshot_path(output, steps), steps, m), quiet=quiet)
    save(output, max_steps, metrics)
    return metrics


class TemplateDataset(Dataset):
    """Runs of ``frames`` consecutive template frames (one per start in ``starts``). Keys (F = frames): sketch,
    background, target (F, 3, S, S) float in [0, 1], mask (F, 1, S, S), speech (F, D)."""

    def __init__(self, template: Template, starts: list[int], frames: int) -> None:
        self.template, self.starts, self.frames = template, starts, frames

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict:
        tp, s = self.template, self.starts[i]
        parts = [frame_inputs(tp.crops[t], tp.meshes[t], tp.meshes[t]) for t in range(s, s + self.frames)]
        return {"sketch": to_tensor(np.stack([p[0] for p in parts])),
                "background": to_tensor(np.stack([p[1] for p in parts])),
                "mask": torch.from_numpy(np.stack([p[2] for p in parts]))[:, None],
                "target": to_tensor(tp.crops[s:s + self.frames]),
                "speech": torch.from_numpy(tp.speech[s:s + self.frames])}


class VastRendererModule(L.LightningModule):
    """The renderer + a PatchGAN on (sketch, face) pairs, trained alternately (Adam 2e-4, beta1 0.5: pix2pix)."""

    def __init__(self, config: VastRendererConfig, *, lr: float = 2e-4, disc_channels: int = 32) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model = VastRenderer(config)
        self.disc = PatchDiscriminator(6, disc_channels, 3)
        self.lr = lr

    def _render(self, batch: dict) -> torch.Tensor:
        out, _ = self.model(batch["sketch"], batch["background"], batch["speech"])
        return composite(out, batch["target"], batch["mask"]).flatten(0, 1)

    def training_step(self, batch: dict, _: int) -> None:
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        fake = self._render(batch)
        sketch, real, mask = (batch[k].flatten(0, 1) for k in ("sketch", "target", "mask"))
        l1 = masked_l1(fake, real, mask)
        adv = lsgan_loss([self.disc(torch.cat([sketch, fake], 1))[-1:]], True)
        opt_g.zero_grad()
        self.manual_backward(self.model.config.l1_weight * l1 + adv)
        opt_g.step()
        d_loss = 0.5 * (lsgan_loss([self.disc(torch.cat([sketch, real], 1))[-1:]], True)
                        + lsgan_loss([self.disc(torch.cat([sketch, fake.detach()], 1))[-1:]], False))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.log_dict({"train_l1": l1.detach(), "train_adv": adv.detach(), "train_disc": d_loss.detach()},
                      prog_bar=True, batch_size=len(real))

    def validation_step(self, batch: dict, _: int) -> None:
        fake, real = self._render(batch), batch["target"].flatten(0, 1)
        mse = (fake - real).pow(2).flatten(1).mean(1).clamp_min(1e-10)
        self.log_dict({"val_l1": masked_l1(fake, real, batch["mask"].flatten(0, 1)),
                       "val_psnr": (-10 * mse.log10()).mean()}, prog_bar=True, batch_size=len(real))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.model.parameters(), lr=self.lr, betas=(0.5, 0.999)),
                torch.optim.Adam(self.disc.parameters(), lr=self.lr, betas=(0.5, 0.999))]


def train_vast_renderer(video: Path, output: Path, *, config: VastRendererConfig, max_steps: int, batch: int = 2,
                        frames: int = 4, lr: float = 2e-4, disc_channels: int = 32, workers: int = 0, seed: int = 0,
                        accelerator: str = "auto", devices: int | str = "auto", quiet: bool = False
                        ) -> dict[str, float]:
    """Train the person-specific renderer on one template video (the last tenth held out for validation).
    Saves ``output`` (with the template's name and the validation metrics); returns the last metrics."""
    L.seed_everything(seed, workers=True, verbose=False)
    template = prepare_template(video, size=config.size, speech=config.speech, quiet=quiet)
    n = len(template.crops)
    cut_at = max(frames, int(n * 0.9))
    train = TemplateDataset(template, list(range(0, cut_at - frames + 1)), frames)
    val = TemplateDataset(template, list(range(cut_at, n - frames + 1, frames)), frames)
    module = VastRendererModule(config, lr=lr, disc_channels=disc_channels)
    metrics = fit(module, train, val, max_steps=2 * max_steps, batch=batch, workers=workers, accelerator=accelerator,
                  devices=devices, quiet=quiet)
    module.model.save(output, metrics=metrics, template=Path(video).name, steps=max_steps, frames=n,
                      training={"batch": batch, "frames": frames, "lr": lr, "seed": seed, "config": asdict(config)})
    return metrics


def _arguments(tv: argparse.ArgumentParser) -> None:
    training_options(tv)
    tv.add_argument("--config", choices=("tiny", "small", "paper"), default="small",
                    help="sizes: tiny (tests), small (the shipped CPU checkpoint), paper (VAST's layout; GPUs)")
    tv.add_argument("--speech", choices=SPEECH_KINDS, default="ppg",
                    help="speech features: ppg (phone posteriorgram, default), whisper (Whisper tiny.en's encoder, "
                         "its last layer) or whisper3 (its third block)")
    tv.add_argument("--no-enhancer", dest="enhancer", action="store_false",
                    help="no variational style enhancer (the paper's ablation)")
    tv.add_argument("--flow-steps", type=int, default=None,
                    help="Householder reflections (default: 4; 0 = plain Gaussian posterior, the paper's ablation)")
    tv.add_argument("--loss", choices=("asymmetric", "mse"), default="asymmetric", help="reconstruction loss")
    tv.add_argument("--mouth-gain", type=float, default=1.0,
                    help="factor on the generated lower-face coefficients (default: 1, as predicted, which the shipped "
                         "model keeps; choose one with --hold-out and benchmarks/vast_gain.py)")
    hold_out_option(tv, "benchmarks/heldout.py vast and benchmarks/vast_gain.py")
    tv.add_argument("--input-dropout", type=float, default=0.0, metavar="P",
                    help="dropout on the speech features entering the speech encoder in training (default: 0)")
    style_training_options(tv, window=64, style_length=128)


def _run(args: argparse.Namespace) -> int:
    config = VAST_CONFIGS[args.config]
    if args.mouth_gain <= 0:
        raise TalkingHeadError("--mouth-gain must be positive")
    if not 0 <= args.input_dropout < 1:
        raise TalkingHeadError("--input-dropout must be in [0, 1)")
    config = replace(config, speech=args.speech, enhancer=args.enhancer, loss=args.loss, mouth_gain=args.mouth_gain,
                     input_dropout=args.input_dropout,
                     flow_steps=config.flow_steps if args.flow_steps is None else args.flow_steps)
    if config.flow_steps < 0:
        raise TalkingHeadError("--flow-steps must be 0 or more")
    return print_metrics(train_vast(args.datasets, args.output, config=config, max_steps=args.steps, batch=args.batch,
                                    window=args.window, style_length=args.style_length, lr=args.lr,
                                    hold_out=args.hold_out, save_every=args.save_every, workers=args.workers,
                                    devices=parse_devices(args.devices), nodes=args.nodes,
                                    quiet=args.quiet))


COMMAND = Command(
    description="VAST (conv + GRU style encoder, variational style enhancer with a Householder flow, hybrid AR/NAR "
                "expression decoder) with PyTorch Lightning on the datasets' train splits.",
    arguments=_arguments, run=_run)


def _renderer_arguments(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("video", type=Path, help="template video of the target person speaking")
    tr.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write (.pt)")
    tr.add_argument("--config", choices=("tiny", "small", "paper"), default="small",
                    help="sizes: tiny (tests), small (128 px, minutes on a CPU), paper (256 px; GPUs)")
    tr.add_argument("--speech", choices=SPEECH_KINDS, default="ppg", help="speech features (default: ppg)")
    tr.add_argument("--steps", type=int, default=600)
    tr.add_argument("--batch", type=int, default=2, help="runs of --frames consecutive frames per step (default: 2)")
    tr.add_argument("--frames", type=int, default=4, help="consecutive frames per run (default: 4)")
    tr.add_argument("--lr", type=float, default=2e-4)
    tr.add_argument("--devices", default="auto", help="Lightning devices (e.g. 4 for four GPUs)")
    tr.add_argument("-q", "--quiet", action="store_true")


def _renderer_run(args: argparse.Namespace) -> int:
    require_file(args.video)
    if args.steps < 1 or args.batch < 1 or args.frames < 1:
        raise TalkingHeadError("--steps, --batch and --frames must be at least 1")
    config = replace(RENDERER_CONFIGS[args.config], speech=args.speech)
    return print_metrics(train_vast_renderer(args.video, args.output, config=config, max_steps=args.steps,
                                             batch=args.batch, frames=args.frames, lr=args.lr,
                                             devices=parse_devices(args.devices), quiet=args.quiet))


RENDERER_COMMAND = Command(
    description="U-Net + LSTM cGAN (mesh sketch + eroded background in, speech features at the bottleneck) trained "
                "on one video of the target person with speech; the last tenth is held out. Use it with generate "
                "--method vast --video TEMPLATE --checkpoint vast_renderer=OUTPUT.",
    arguments=_renderer_arguments, run=_renderer_run)
