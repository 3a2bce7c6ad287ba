"""Training IP_LAP's two stages with PyTorch Lightning: the audio-to-landmark generator, then the renderer.

Configurations: ``tiny`` (CPU tests), ``small`` (the checkpoints shipped with the package, trained on
a CPU) and ``paper`` (IP_LAP's sizes, for LRS2 on GPUs with DDP: ``--devices 8 --nodes N``).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import torch

from talkinghead.audio.speech import SPEECH_INPUTS
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.iplap.config import LandmarkConfig
from talkinghead.motion.iplap.model import LandmarkGenerator
from talkinghead.nn.discriminator import MultiScaleDiscriminator, feature_matching_loss, lsgan_loss
from talkinghead.nn.perceptual import PerceptualLoss
from talkinghead.render.iplap.config import RendererConfig
from talkinghead.render.iplap.model import IPLAPRenderer
from talkinghead.spec import Command
from talkinghead.train.common import fit, fold_name, hold_out_option, parse_devices, print_metrics, training_options
from talkinghead.train.datasets import held_out_clips, held_out_paths
from talkinghead.train.iplap_data import LandmarkDataset, RendererDataset

LANDMARK_CONFIGS = {
    "tiny": LandmarkConfig(references=3, d_model=32, layers=1, heads=2, feedforward=64, width=0.125),
    "small": LandmarkConfig(d_model=128, layers=2, heads=4, feedforward=256, width=0.25),
    "paper": LandmarkConfig(),
}
RENDERER_CONFIGS = {
    "tiny": RendererConfig(size=32, full_channels=4, half_channels=16, hidden=8, audio_dim=16, audio_width=0.125,
                           disc_channels=8, disc_layers=2, perceptual_width_divisor=16),
    "small": RendererConfig(full_channels=16, half_channels=32, hidden=16, audio_dim=128, audio_width=0.25,
                            disc_channels=32, perceptual_width_divisor=8, blend_warped=True, l1_weight=20.0),
    "paper": RendererConfig(),
}


class LandmarkModule(L.LightningModule):
    """Stage 1: L1 + continuity loss, Adam."""

    def __init__(self, config: dict, lr: float = 1e-4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = LandmarkGenerator(LandmarkConfig(**config))
        self.lr = lr

    def _step(self, batch: dict, prefix: str) -> torch.Tensor:
        pred = self.model(batch["speech"], batch["pose"], batch["references"])
        loss, parts = self.model.loss(pred, batch["content"])
        self.log_dict({f"{prefix}_loss": loss, f"{prefix}_l1": parts["l1"]}, prog_bar=True)
        return loss

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, _: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class RendererModule(L.LightningModule):
    """Stage 2 (IP_LAP's schedule): the warping loss (+ pixel L1 when the config weights it) alone for
    ``warmup`` steps, then warping + perceptual/style + LSGAN + feature matching with the config's
    weights; the multi-scale PatchGAN is trained alongside (Adam, betas 0.5/0.999). ``iterations``
    counts generator updates (Lightning's global step counts the discriminator's too)."""

    def __init__(self, config: dict, lr: float = 1e-4, warmup: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        c = RendererConfig(**config)
        self.model = IPLAPRenderer(c)
        self.disc = MultiScaleDiscriminator(3, c.disc_channels, c.disc_layers, c.disc_scales)
        self.perceptual = PerceptualLoss(width_divisor=c.perceptual_width_divisor)
        self.lr, self.warmup = lr, warmup
        self.iterations = 0

    def _generator_losses(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        c, real = self.model.config, batch["target"]
        fake, warped = self.model(real, batch["sketches"], batch["refs"], batch["ref_sketches"], batch["mel"])
        parts = {"warp": self.perceptual(warped, real), "l1": (fake - real).abs().mean()}
        loss = c.warp_weight * parts["warp"] + c.l1_weight * parts["l1"]
        if self.iterations >= self.warmup:
            parts["perceptual"] = self.perceptual(fake, real, style_weight=c.style_weight)
            d_fake, d_real = self.disc(fake), self.disc(real)
            parts["gan"] = lsgan_loss(d_fake, True)
            parts["feature_matching"] = feature_matching_loss(d_fake, d_real)
            loss = loss + c.perceptual_weight * parts["perceptual"] + c.gan_weight * parts["gan"] \
                + c.feature_matching_weight * parts["feature_matching"]
        return loss, parts, fake

    def training_step(self, batch: dict, _: int) -> None:
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        loss, parts, fake = self._generator_losses(batch)
        opt_g.zero_grad()
        self.manual_backward(loss)
        opt_g.step()
        if self.iterations >= self.warmup:
            d_loss = 0.5 * (lsgan_loss(self.disc(fake.detach()), False) + lsgan_loss(self.disc(batch["target"]), True))
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
            parts["disc"] = d_loss.detach()
        self.iterations += 1
        self.log_dict({"train_loss": loss.detach(), **{f"train_{k}": v.detach() for k, v in parts.items()}},
                      prog_bar=True)

    def validation_step(self, batch: dict, _: int) -> None:
        loss, parts, _ = self._generator_losses(batch)
        self.log_dict({"val_loss": loss, **{f"val_{k}": v for k, v in parts.items()}}, prog_bar=True)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.model.parameters(), lr=self.lr),
                torch.optim.Adam(self.disc.parameters(), lr=self.lr, betas=(0.5, 0.999))]


def train_landmarks(datasets: list[Path], output: Path, *, config: LandmarkConfig, max_steps: int, batch: int = 32,
                    lr: float = 1e-4, augment: bool = False, hold_out: tuple[int, int] | None = None,
                    workers: int = 0, seed: int = 0, accelerator: str = "auto", devices: int | str = "auto",
                    nodes: int = 1, quiet: bool = False) -> dict[str, float]:
    """Stage 1 on the datasets' train splits (validated on val), with ``augment``ed items if asked. ``hold_out``
    (fold, folds) leaves out that fold of the first dataset's speakers
    (:func:`~talkinghead.train.datasets.held_out_clips`; listed in the checkpoint as ``held_out``: speakers the model
    never saw, on which ``benchmarks/heldout.py iplap`` compares training recipes). Saves ``output``; returns the
    last metrics."""
    L.seed_everything(seed, workers=True, verbose=False)
    held_out = held_out_clips(datasets, hold_out)
    kw = {"frames": config.frames, "references": config.references, "speech": config.speech}
    train = LandmarkDataset(datasets, "train", train=True, augment=augment, seed=seed, exclude=held_out, **kw)
    val = LandmarkDataset(datasets, "val", seed=seed + 1, **kw)
    module = LandmarkModule(asdict(config), lr=lr)
    metrics = fit(module, train, val, max_steps=max_steps, batch=batch, workers=workers, accelerator=accelerator,
                  devices=devices, nodes=nodes, quiet=quiet)
    module.model.save(output, metrics=metrics, datasets=[str(d) for d in datasets], steps=max_steps,
                      held_out=held_out_paths(held_out),
                      training={"batch": batch, "lr": lr, "augment": augment, "seed": seed,
                                "hold_out": fold_name(hold_out)})
    return metrics


def train_renderer(datasets: list[Path], output: Path, *, config: RendererConfig, max_steps: int, batch: int = 8,
                   references: int = 3, warmup: int | None = None, lr: float = 1e-4, workers: int = 0, seed: int = 0,
                   accelerator: str = "auto", devices: int | str = "auto", nodes: int = 1,
                   quiet: bool = False) -> dict[str, float]:
    """Stage 2 on the datasets' train splits for ``max_steps`` generator updates with ``references``
    reference frames per item (IP_LAP: 3), the first ``warmup`` (default: a quarter) warping-only.
    Saves ``output``; returns the last metrics."""
    L.seed_everything(seed, workers=True, verbose=False)
    warmup = max_steps // 4 if warmup is None else warmup
    kw = {"size": config.size, "frames": config.frames, "references": references}
    train = RendererDataset(datasets, "train", train=True, seed=seed, **kw)
    val = RendererDataset(datasets, "val", seed=seed + 1, **kw)
    module = RendererModule(asdict(config), lr=lr, warmup=warmup)
    metrics = fit(module, train, val, max_steps=warmup + 2 * (max_steps - warmup), batch=batch, workers=workers,
                  accelerator=accelerator, devices=devices, nodes=nodes, val_batches=10, quiet=quiet)
    module.model.save(output, metrics=metrics, datasets=[str(d) for d in datasets], steps=max_steps,
                      training={"batch": batch, "references": references, "warmup": warmup, "lr": lr, "seed": seed})
    return metrics


def _arguments(ti: argparse.ArgumentParser) -> None:
    training_options(ti)
    ti.add_argument("--stage", choices=("landmarks", "renderer"), required=True)
    ti.add_argument("--config", choices=("tiny", "small", "paper"), default="small",
                    help="sizes: tiny (tests), small (the shipped CPU checkpoints), paper (IP_LAP's; GPUs)")
    ti.add_argument("--sequence", choices=("transformer", "bilstm"), default="transformer",
                    help="landmarks: token mixer (bilstm = the paper's ablation)")
    ti.add_argument("--speech", choices=SPEECH_INPUTS, default="mel",
                    help="landmarks: the audio tokens' input: mel windows (the paper), phone one-hots or Whisper "
                         "tiny.en encoder features (whisper: the last layer; whisper3: the third block) (default: mel)")
    ti.add_argument("--augment", action="store_true",
                    help="landmarks: random similarity transform of each item's landmarks and mel level shift")
    ti.add_argument("--input-dropout", type=float, default=0.0, metavar="P",
                    help="landmarks: dropout on the speech input before its encoder, in training (default: 0)")
    hold_out_option(ti, "benchmarks/heldout.py iplap (landmarks)")
    ti.add_argument("--no-warp", dest="warp", action="store_false", help="renderer: the ablation without warping")
    ti.add_argument("--size", type=int, default=None, help="renderer: face crop side in pixels (default: 128)")
    ti.add_argument("--references", type=int, default=3, help="renderer: reference frames per item (default: 3)")
    ti.add_argument("--warmup", type=int, default=None,
                    help="renderer: warping-loss-only steps (default: a quarter of --steps)")
    ti.add_argument("--steps", type=int, default=3000)
    ti.add_argument("--batch", type=int, default=None, help="batch size (default: 32 landmarks, 8 renderer)")
    ti.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4, IP_LAP's)")


def _run(args: argparse.Namespace) -> int:
    common = {"max_steps": args.steps, "lr": args.lr, "workers": args.workers, "devices": parse_devices(args.devices),
              "nodes": args.nodes, "quiet": args.quiet}
    if args.stage == "landmarks":
        if not 0 <= args.input_dropout < 1:
            raise TalkingHeadError("--input-dropout must be in [0, 1)")
        config = replace(LANDMARK_CONFIGS[args.config], sequence=args.sequence, speech=args.speech,
                         input_dropout=args.input_dropout)
        return print_metrics(train_landmarks(args.datasets, args.output, config=config, batch=args.batch or 32,
                                             augment=args.augment, hold_out=args.hold_out, **common))
    if args.hold_out is not None or args.input_dropout:
        raise TalkingHeadError("--hold-out and --input-dropout are options of --stage landmarks")
    base = RENDERER_CONFIGS[args.config]
    rconfig = replace(base, warp=args.warp, size=args.size or base.size)
    return print_metrics(train_renderer(args.datasets, args.output, config=rconfig, batch=args.batch or 8,
                                        references=args.references, warmup=args.warmup, **common))


COMMAND = Command(
    description="Stage 1 (--stage landmarks: audio -> lip/jaw landmarks) or stage 2 (--stage renderer: landmark "
                "sketches + references -> face), PyTorch Lightning on the datasets' train splits (GPUs, DDP across "
                "devices and nodes when present).", arguments=_arguments, run=_run)
