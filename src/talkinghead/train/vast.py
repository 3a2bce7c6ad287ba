"""Training VAST's motion model with PyTorch Lightning.

Loss (VAST Eq. 2): reconstruction_weight x the reconstruction loss of the expression coefficients (asymmetric
or MSE; in units of the coefficients' RMS standard deviation, so that, the basis being orthonormal, it weighs
coefficients by how far they move the mesh) + kl_weight x (KL(q || p) - sum log|det|) of the
variational style enhancer. The style clip is another clip of the item's style class (real data: its speaker),
else another part of the same clip; z is sampled from the posterior (reparameterised). The weakly related
coefficients are teacher-forced from the previous ground-truth frame (with input noise); validation decodes
them freely, as inference does.

Configurations: ``tiny`` (CPU tests), ``small`` (the shipped checkpoint, trained on a CPU), ``paper``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import torch

from talkinghead.data.datasets import VastDataset
from talkinghead.face.model import FaceModel, default_face_model
from talkinghead.motion.vast.config import VastConfig
from talkinghead.motion.vast.model import Vast, reconstruction_loss
from talkinghead.motion.vast.split import strong_coefficients
from talkinghead.train.common import fit

VAST_CONFIGS = {
    "tiny": VastConfig(d_model=32, heads=2, style_conv_layers=1, style_dim=8, nar_layers=1, feedforward=64,
                       ar_hidden=32, ar_layers=1, max_style_frames=64),
    "small": VastConfig(d_model=128, heads=4, style_dim=64, nar_layers=2, feedforward=256, ar_hidden=128),
    "paper": VastConfig(),
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
               workers: int = 0, seed: int = 0, accelerator: str = "auto", devices: int | str = "auto",
               nodes: int = 1, quiet: bool = False) -> dict[str, float]:
    """Train on the datasets' train splits (validated on val) with ``window``-frame items and style clips of up to
    ``style_length`` frames; the config gets the face model's strong/weak split
    (:func:`~talkinghead.motion.vast.split.strong_coefficients`). Saves ``output``; returns the last metrics."""
    L.seed_everything(seed, workers=True, verbose=False)
    face_model = face_model or default_face_model()
    kw = {"speech": config.speech, "window": window, "style_length": style_length}
    train = VastDataset(datasets, "train", train=True, seed=seed, **kw)
    val = VastDataset(datasets, "val", seed=seed + 1, **kw)
    config = replace(config, strong=strong_coefficients(face_model, config.n_expression),
                     max_style_frames=max(config.max_style_frames, style_length))
    scale = torch.from_numpy(face_model.expression_std.astype("float32"))
    module = VastModule(config, scale=scale, lr=lr)
    metrics = fit(module, train, val, max_steps=max_steps, batch=batch, workers=workers, accelerator=accelerator,
                  devices=devices, nodes=nodes, quiet=quiet)
    module.model.save(output, metrics=metrics, classes=train.classes, datasets=[str(d) for d in datasets],
                      steps=max_steps, face_model=face_model.card.get("name", ""),
                      training={"batch": batch, "window": window, "style_length": style_length, "lr": lr,
                                "seed": seed, "config": asdict(config)})
    return metrics
