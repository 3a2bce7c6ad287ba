"""Training SyncNet with PyTorch Lightning on preprocessed datasets (CPU here, GPUs/DDP elsewhere)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch

from talkinghead.sync.model import SyncNet, SyncNetConfig
from talkinghead.train.common import fit
from talkinghead.train.datasets import SyncDataset

TINY = SyncNetConfig(height=32, width=64, embed=32, channels=8)
"""A configuration small enough for CPU tests."""
MESH = SyncNetConfig(visual="mesh", embed=64, channels=16)
"""The mesh-stream SyncNet shipped with the package (trains in minutes on a CPU)."""


class SyncNetModule(L.LightningModule):
    """Lightning wrapper: the loss and accuracy of :meth:`SyncNet.loss`, Adam."""

    def __init__(self, config: dict, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = SyncNet(SyncNetConfig(**config))
        self.lr = lr

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss, acc = self.model.loss(batch["visual"], batch["mels"])
        self.log_dict({"train_loss": loss, "train_acc": acc}, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, _: int) -> None:
        loss, acc = self.model.loss(batch["visual"], batch["mels"])
        self.log_dict({"val_loss": loss, "val_acc": acc}, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def train_syncnet(datasets: list[Path], output: Path, *, config: SyncNetConfig, max_steps: int, batch: int = 32,
                  negatives: int = 4, augment: bool = False, workers: int = 0, lr: float = 1e-3, seed: int = 0,
                  minutes: float | None = None, accelerator: str = "auto", devices: int | str = "auto",
                  quiet: bool = False) -> dict:
    """Train on the train splits (for ``max_steps`` steps, or ``minutes`` when that comes first), validate on the
    val splits, save ``output``; returns the last metrics."""
    L.seed_everything(seed, workers=True, verbose=False)
    train = SyncDataset(datasets, "train", config=config, negatives=negatives, train=True, augment=augment,
                        seed=seed)
    val = SyncDataset(datasets, "val", config=config, negatives=negatives, seed=seed + 1)
    module = SyncNetModule(asdict(config), lr=lr)
    metrics = fit(module, train, val, max_steps=max_steps, batch=batch, workers=workers, accelerator=accelerator,
                  devices=devices, max_minutes=minutes, quiet=quiet)
    module.model.save(output, metrics=metrics, datasets=[str(d) for d in datasets], steps=module.global_step,
                      training={"batch": batch, "negatives": negatives, "augment": augment, "lr": lr, "seed": seed})
    return metrics
