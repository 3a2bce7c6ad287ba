"""The Lightning trainer every family uses: step-based runs, periodic validation, no logger files."""

from __future__ import annotations

from datetime import timedelta

import lightning as L
from torch.utils.data import DataLoader, Dataset


def fit(module: L.LightningModule, train: Dataset, val: Dataset | None, *, max_steps: int, batch: int,
        workers: int = 0, accelerator: str = "auto", devices: int | str = "auto", nodes: int = 1,
        val_every: int = 200, val_batches: int = 20, max_minutes: float | None = None,
        quiet: bool = False) -> dict[str, float]:
    """Train ``module`` for ``max_steps`` steps, or until ``max_minutes`` have passed (DDP when several devices or
    nodes); returns the last logged metrics."""
    if not len(train):  # type: ignore[arg-type]
        raise ValueError("no training windows (preprocess a corpus first)")
    trainer = L.Trainer(max_steps=max_steps, max_time=timedelta(minutes=max_minutes) if max_minutes else None,
                        accelerator=accelerator, devices=devices, num_nodes=nodes, logger=False,
                        enable_checkpointing=False, enable_progress_bar=not quiet, enable_model_summary=False,
                        val_check_interval=min(max_steps, val_every), check_val_every_n_epoch=None,
                        limit_val_batches=val_batches, num_sanity_val_steps=0, benchmark=True)
    loaders = [DataLoader(train, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                          persistent_workers=workers > 0)]
    if val is not None and len(val):  # type: ignore[arg-type]
        loaders.append(DataLoader(val, batch_size=batch, num_workers=workers))
    trainer.fit(module, *loaders)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}
