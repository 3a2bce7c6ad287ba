"""The Lightning trainer every family uses (step-based runs, periodic validation, no logger files), and the
command-line options the families' train-* commands share."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader, Dataset


class _FirstLosses(L.Callback):
    """Keeps the training losses logged at the first step (``first_train_*`` in :func:`fit`'s metrics)."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if not self.first:
            self.first = {f"first_{k}": float(v) for k, v in trainer.callback_metrics.items()
                          if k.startswith("train_")}


class _Snapshots(L.Callback):
    """Calls ``save(batches, metrics)`` on the first process after every ``every`` training batches but the last
    (a module with two optimisers counts two of Lightning's steps per batch, one of ours)."""

    def __init__(self, every: int, save: Callable[[int, dict[str, float]], None]) -> None:
        self.every, self.save, self.batches = every, save, 0

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self.batches += 1
        if self.batches % self.every == 0 and trainer.global_step < trainer.max_steps and trainer.is_global_zero:
            self.save(self.batches, {k: float(v) for k, v in trainer.callback_metrics.items()})


def snapshot_path(output: Path, steps: int) -> Path:
    """Where ``--save-every`` writes the checkpoint taken after ``steps`` steps: ``OUTPUT_stepSTEPS.pt``."""
    return output.with_name(f"{output.stem}_step{steps}{output.suffix}")


def fit(module: L.LightningModule, train: Dataset, val: Dataset | None, *, max_steps: int, batch: int,
        workers: int = 0, accelerator: str = "auto", devices: int | str = "auto", nodes: int = 1,
        val_every: int = 200, val_batches: int = 20, max_minutes: float | None = None,
        save_every: int = 0, save: Callable[[int, dict[str, float]], None] | None = None,
        quiet: bool = False) -> dict[str, float]:
    """Train ``module`` for ``max_steps`` steps, or until ``max_minutes`` have passed (DDP when several devices or
    nodes); returns the last logged metrics and, as ``first_train_*``, the training losses of the first step.
    ``save_every`` > 0 calls ``save(steps, metrics)`` after every that many training batches before the last (the
    families' ``--save-every`` snapshots)."""
    if not len(train):  # type: ignore[arg-type]
        raise ValueError("no training windows (preprocess a corpus first)")
    callbacks: list[L.Callback] = [first := _FirstLosses()]
    if save_every > 0 and save is not None:
        callbacks.append(_Snapshots(save_every, save))
    trainer = L.Trainer(max_steps=max_steps, max_time=timedelta(minutes=max_minutes) if max_minutes else None,
                        accelerator=accelerator, devices=devices, num_nodes=nodes, logger=False,
                        enable_checkpointing=False, enable_progress_bar=not quiet, enable_model_summary=False,
                        val_check_interval=min(max_steps, val_every), check_val_every_n_epoch=None,
                        limit_val_batches=val_batches, num_sanity_val_steps=0, benchmark=True,
                        callbacks=callbacks)
    loaders = [DataLoader(train, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                          persistent_workers=workers > 0)]
    if val is not None and len(val):  # type: ignore[arg-type]
        loaders.append(DataLoader(val, batch_size=batch, num_workers=workers))
    trainer.fit(module, *loaders)
    return {**first.first, **{k: float(v) for k, v in trainer.callback_metrics.items()}}


def training_options(p: argparse.ArgumentParser, *, output_help: str = "checkpoint to write (.pt)",
                     datasets_help: str = "preprocessed dataset folders") -> None:
    """Options shared by the train-* commands of the learned families (Lightning: GPUs and DDP when present)."""
    p.add_argument("datasets", nargs="+", type=Path, help=datasets_help)
    p.add_argument("-o", "--output", type=Path, required=True, help=output_help)
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--devices", default="auto", help="Lightning devices per node (e.g. 8)")
    p.add_argument("--nodes", type=int, default=1, help="Lightning nodes (DDP)")
    p.add_argument("-q", "--quiet", action="store_true")


def generator_training_inputs(p: argparse.ArgumentParser, *, shipped: bool) -> None:
    """Inputs shared by train-styletalker and train-styleheat: the trained generator folder (optional when
    ``shipped``: the shipped feature-path generator, encoder and identity student) and the image SyncNet."""
    p.add_argument("--stylegan", type=Path, required=not shipped,
                   help="train-stylegan output folder" + (" (default: the shipped feature-path models)" if shipped
                                                          else ""))
    p.add_argument("--syncnet", type=Path, default=None,
                   help="image SyncNet for the sync loss (train-syncnet --visual image); without it no sync loss")


def _count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, not {text!r}")
    return int(text)


def style_training_options(p: argparse.ArgumentParser, *, window: int, style_length: int) -> None:
    """Run options shared by train-styletalk and train-vast (decoded window and style clip per item)."""
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--window", type=int, default=window, help=f"frames decoded per item (default: {window})")
    p.add_argument("--style-length", type=int, default=style_length,
                   help=f"style clip frames per item (default: {style_length})")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    p.add_argument("--save-every", type=_count, default=0, metavar="N",
                   help="also write OUTPUT_stepN.pt, OUTPUT_step2N.pt, ... every N steps (the learning rate is "
                        "constant, so one run gives the recipe at several lengths; default: only the last)")


def hold_out_option(p: argparse.ArgumentParser, scored_by: str) -> None:
    """``--hold-out FOLD/FOLDS`` (:func:`parse_fold`): train without one fold of the first dataset's training clips
    dealt by speaker (:func:`talkinghead.train.datasets.held_out_clips`), the clips that ``scored_by`` scores."""
    p.add_argument("--hold-out", type=parse_fold, default=None, metavar="FOLD/FOLDS",
                   help="leave out one fold of the first dataset's training clips, dealt by speaker (e.g. 0/4): the "
                        f"clips {scored_by} score")


def parse_fold(value: str) -> tuple[int, int]:
    """``FOLD/FOLDS`` -> (fold, folds)."""
    try:
        fold, folds = (int(part) for part in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FOLD/FOLDS (e.g. 0/4), not {value!r}") from None
    if not 0 <= fold < folds:
        raise argparse.ArgumentTypeError(f"the fold must be 0 to FOLDS - 1, not {value!r}")
    return fold, folds


def fold_name(hold_out: tuple[int, int] | None) -> str | None:
    """(fold, folds) -> "FOLD/FOLDS" as a checkpoint's training record stores it (None: trained on every clip)."""
    return None if hold_out is None else "/".join(map(str, hold_out))


def parse_devices(value: str) -> int | str:
    """``--devices``: a count, or a Lightning keyword such as "auto"."""
    return int(value) if str(value).isdigit() else value


def print_metrics(metrics: dict) -> int:
    """Print a training run's final metrics as JSON; the command's exit status (0)."""
    print(json.dumps(metrics, indent=1))
    return 0
