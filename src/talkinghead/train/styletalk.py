"""Training StyleTalk with PyTorch Lightning.

Losses (StyleTalk §3.4, our stand-ins named): lambda_rec x L1 of the expression coefficients + L1 of
the mouth vertices they move; the triplet loss on style codes (the style clip's code against another
clip of its style class and a clip of another class); a lip-sync loss from our frozen contrastive
SyncNet on the generated mouth vertices (:func:`talkinghead.sync.model.sequence_sync_loss`; StyleTalk
pretrains its own lip-sync discriminator on mouth vertices); a style discriminator (a sequence
classifier over the training style classes, trained on real sequences, whose cross-entropy on the
generated sequence towards the style clip's class the generator minimises); a temporal PatchGAN on
coefficient sequences (LSGAN). Items are sequential windows of frames, decoded in one pass.

Configurations: ``tiny`` (CPU tests), ``small`` (the shipped checkpoint, trained on a CPU), ``paper``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from talkinghead.audio.speech import SPEECH_INPUTS
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import FaceModel, default_face_model
from talkinghead.motion.styletalk.config import StyleTalkConfig
from talkinghead.motion.styletalk.model import StyleTalk
from talkinghead.nn.discriminator import SequenceDiscriminator, lsgan_loss
from talkinghead.spec import Command
from talkinghead.sync.inputs import coefficient_mouth, mouth_basis
from talkinghead.sync.model import SyncNet, sequence_sync_loss
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
from talkinghead.train.datasets import StyleDataset, held_out_clips, held_out_paths

STYLETALK_CONFIGS = {
    "tiny": StyleTalkConfig(d_model=32, heads=2, content_layers=1, style_layers=1, decoder_layers=1, feedforward=64,
                            phone_embed=16, max_style_frames=64, style_head_motion=True),
    "small": StyleTalkConfig(d_model=128, heads=4, content_layers=2, style_layers=2, decoder_layers=2,
                             feedforward=256, phone_embed=64, style_head_motion=True),
    "paper": StyleTalkConfig(),
}
DISC_CHANNELS = {"tiny": 8, "small": 32, "paper": 64}
LOSS_NAMES = {"sync": "lip-sync (frozen SyncNet)", "style": "style discriminator", "temporal": "temporal PatchGAN"}
"""The auxiliary losses whose weights train-styletalk sets (``--sync-weight`` ...)."""


class StyleTalkModule(L.LightningModule):
    """Generator (StyleTalk) + style and temporal discriminators, trained alternately (Adam 1e-4)."""

    def __init__(self, config: StyleTalkConfig, *, face_model: FaceModel, syncnet: SyncNet, lr: float = 1e-4,
                 disc_channels: int = 64) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model = StyleTalk(config)
        c = config
        self.style_disc = SequenceDiscriminator(c.n_expression, disc_channels, 3, classes=max(c.n_styles, 1))
        self.temporal_disc = SequenceDiscriminator(c.n_expression, disc_channels, 3)
        self.syncnet = syncnet.eval().requires_grad_(False)
        self.register_buffer("mouth", mouth_basis(face_model.expression_basis[:c.n_expression]), persistent=False)
        self.lr = lr

    def _generator_losses(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        c, real = self.model.config, batch["expression"]
        pred, code = self.model(batch["speech"], batch["style"], batch["style_padding"])
        positive = self.model.encode_style(batch["positive"], batch["positive_padding"])
        negative = self.model.encode_style(batch["negative"], batch["negative_padding"])
        mouth_pred, mouth_real = coefficient_mouth(pred, self.mouth), coefficient_mouth(real, self.mouth)
        self.syncnet.eval()
        parts = {
            "rec": F.l1_loss(pred, real),
            "vertex": F.l1_loss(mouth_pred, mouth_real),
            "triplet": F.relu((code - positive).norm(dim=-1) - (code - negative).norm(dim=-1)
                              + c.triplet_margin).mean(),
            "sync": sequence_sync_loss(self.syncnet, mouth_pred, batch["mels"]),
            "style": F.cross_entropy(self.style_disc(pred), batch["label"]),
            "temporal": lsgan_loss([[self.temporal_disc(pred)]], True),
        }
        weights = {"rec": c.reconstruction_weight, "vertex": c.vertex_weight, "triplet": c.triplet_weight,
                   "sync": c.sync_weight, "style": c.style_weight, "temporal": c.temporal_weight}
        return sum(weights[k] * v for k, v in parts.items()), parts, pred  # type: ignore[return-value]

    def training_step(self, batch: dict, _: int) -> None:
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        loss, parts, pred = self._generator_losses(batch)
        opt_g.zero_grad()
        self.manual_backward(loss)
        opt_g.step()
        real, fake = batch["expression"], pred.detach()
        d_loss = F.cross_entropy(self.style_disc(real), batch["label"]) + 0.5 * (
            lsgan_loss([[self.temporal_disc(real)]], True) + lsgan_loss([[self.temporal_disc(fake)]], False))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.log_dict({"train_loss": loss.detach(), "train_disc": d_loss.detach(),
                       **{f"train_{k}": v.detach() for k, v in parts.items()}}, prog_bar=True, batch_size=len(real))

    def validation_step(self, batch: dict, _: int) -> None:
        pred, _ = self.model(batch["speech"], batch["style"], batch["style_padding"])
        self.log_dict({"val_rec": F.l1_loss(pred, batch["expression"]),
                       "val_vertex": F.l1_loss(coefficient_mouth(pred, self.mouth),
                                               coefficient_mouth(batch["expression"], self.mouth))}, prog_bar=True,
                      batch_size=len(pred))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        discs = list(self.style_disc.parameters()) + list(self.temporal_disc.parameters())
        return [torch.optim.Adam(self.model.parameters(), lr=self.lr),
                torch.optim.Adam(discs, lr=self.lr, betas=(0.5, 0.999))]


@torch.no_grad()
def neutral_style(model: StyleTalk, data: StyleDataset, *, batch: int = 32) -> torch.Tensor:
    """Mean style code of the dataset's style clips of the "neutral" class (of all clips when none is), computed in
    eval mode; the model is left in the mode it was in (a snapshot takes it in the middle of training)."""
    training = model.training
    model.eval()
    device = next(model.parameters()).device
    keep = [i for i, (k, _) in enumerate(data.index) if data.labels[k] == "neutral"] or list(range(len(data)))
    codes = []
    for s in range(0, len(keep), batch):
        items = [data[i] for i in keep[s:s + batch]]
        style = torch.stack([it["style"] for it in items])
        padding = torch.stack([it["style_padding"] for it in items])
        codes.append(model.encode_style(style.to(device), padding.to(device)))
    model.train(training)
    return torch.cat(codes).mean(0)


def train_styletalk(datasets: list[Path], output: Path, *, config: StyleTalkConfig, max_steps: int, batch: int = 16,
                    window: int = 32, style_length: int = 64, lr: float = 1e-4, disc_channels: int = 64,
                    face_model: FaceModel | None = None, syncnet: SyncNet | None = None,
                    hold_out: tuple[int, int] | None = None, save_every: int = 0, workers: int = 0, seed: int = 0,
                    accelerator: str = "auto", devices: int | str = "auto", nodes: int = 1,
                    quiet: bool = False) -> dict[str, float]:
    """Train on the datasets' train splits (validated on val) with ``window``-frame items and style clips of up
    to ``style_length`` frames; the config gets the face model's lower-face group and the training style
    classes. ``hold_out`` (fold, folds) leaves out that fold of the first dataset's speakers
    (:func:`~talkinghead.train.datasets.held_out_clips`; listed in the checkpoint as ``held_out``: speakers the model
    never saw, on which ``benchmarks/heldout.py styletalk`` compares training recipes). Saves ``output`` (with the
    classes and the neutral style code), and every ``save_every`` steps before the last a snapshot beside it
    (:func:`~talkinghead.train.common.snapshot_path`); returns the last metrics."""
    L.seed_everything(seed, workers=True, verbose=False)
    face_model = face_model or default_face_model()
    syncnet = syncnet or SyncNet.default()
    if syncnet.config.visual != "mesh":
        raise ValueError("StyleTalk's sync loss needs a SyncNet with the mesh visual stream")
    kw = {"window": window, "style_length": style_length, "phone_window": config.window, "speech": config.speech,
          "head_motion": config.style_head_motion}
    held_out = held_out_clips(datasets, hold_out)
    train = StyleDataset(datasets, "train", train=True, face_offsets=True, seed=seed, exclude=held_out, **kw)
    val = StyleDataset(datasets, "val", seed=seed + 1, **kw)
    lower = [int(i) for i in (face_model.lower_face[:config.n_expression]).nonzero()[0]]
    config = replace(config, lower_face=lower, n_styles=len(train.classes),
                     max_style_frames=max(config.max_style_frames, style_length))
    module = StyleTalkModule(config, face_model=face_model, syncnet=syncnet, lr=lr, disc_channels=disc_channels)
    seen = StyleDataset(datasets, "train", seed=seed, exclude=held_out, **kw)

    def save(path: Path, steps: int, metrics: dict[str, float]) -> None:
        module.model.neutral_style.copy_(neutral_style(module.model, seen))
        module.model.save(path, metrics=metrics, classes=train.classes, datasets=[str(d) for d in datasets],
                          steps=steps, face_model=face_model.card.get("name", ""), held_out=held_out_paths(held_out),
                          training={"batch": batch, "window": window, "style_length": style_length, "lr": lr,
                                    "seed": seed, "hold_out": fold_name(hold_out), "config": asdict(config)})

    metrics = fit(module, train, val, max_steps=2 * max_steps, batch=batch, workers=workers, accelerator=accelerator,
                  devices=devices, nodes=nodes, save_every=save_every,
                  save=lambda steps, m: save(snapshot_path(output, steps), steps, m), quiet=quiet)
    save(output, max_steps, metrics)
    return metrics


def _arguments(tt: argparse.ArgumentParser) -> None:
    training_options(tt)
    tt.add_argument("--config", choices=("tiny", "small", "paper"), default="small",
                    help="sizes: tiny (tests), small (the shipped CPU checkpoint), paper (StyleTalk's; GPUs)")
    tt.add_argument("--no-dynamic", dest="dynamic", action="store_false",
                    help="plain feed-forward layers in the decoders (the paper's ablation)")
    tt.add_argument("--speech", choices=SPEECH_INPUTS, default="phones",
                    help="the content tokens: phone labels (the paper), Whisper tiny.en encoder features (whisper: "
                         "the last layer; whisper3: the third block) or log-mel windows (default: phones)")
    for loss in ("sync", "style", "temporal"):
        tt.add_argument(f"--{loss}-weight", type=float, default=getattr(StyleTalkConfig, f"{loss}_weight"),
                        help=f"weight of the {LOSS_NAMES[loss]} loss (default: %(default)s)")
    tt.add_argument("--input-dropout", type=float, default=0.0, metavar="P",
                    help="dropout on the speech features entering the content encoder in training (Whisper or mel "
                         "only; default: 0)")
    hold_out_option(tt, "benchmarks/heldout.py styletalk")
    style_training_options(tt, window=32, style_length=64)


def config_from_args(args: argparse.Namespace) -> StyleTalkConfig:
    """The config train-styletalk's options ask for: a named size with its speech input, input dropout, loss weights
    and FFN kind (a one-line error for a dropout out of range or on phone labels)."""
    try:
        config = replace(STYLETALK_CONFIGS[args.config], speech=args.speech, input_dropout=args.input_dropout,
                         sync_weight=args.sync_weight, style_weight=args.style_weight,
                         temporal_weight=args.temporal_weight)
    except ValueError as e:
        raise TalkingHeadError(f"--input-dropout: {e}") from None
    return replace(config, dynamic_k=0) if not args.dynamic else config


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    return print_metrics(train_styletalk(
        args.datasets, args.output, config=config, max_steps=args.steps, batch=args.batch, window=args.window,
        style_length=args.style_length, lr=args.lr, disc_channels=DISC_CHANNELS[args.config], hold_out=args.hold_out,
        save_every=args.save_every, workers=args.workers, devices=parse_devices(args.devices), nodes=args.nodes,
        quiet=args.quiet))


COMMAND = Command(
    description="StyleTalk (style encoder + style-controllable dynamic decoders) with PyTorch Lightning on the "
                "datasets' train splits; style classes are the clips' style labels (synthetic corpus), else speaker "
                "+ emotion, else speaker.", arguments=_arguments, run=_run)
