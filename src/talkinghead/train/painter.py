"""Training the learned mouth painter (:mod:`talkinghead.render.warp.painter`) on real talking clips.

``talkinghead mouth-corpus VIDEOS... -o DIR`` meshes every frame of every video once and keeps, per clip, the
mouth squares (:func:`~talkinghead.render.warp.painter.mouth_frame`) with their lip points (one ``.npz`` a clip,
written atomically, skipped on a re-run). ``talkinghead train-painter DIR -o painter.pt`` then trains: each item is
a frame of a clip (the region to paint is its own inner mouth), its lip sketch, and a reference frame of the same
clip (half the time the widest-open of 8 random frames, as a dubbed video's reference is, otherwise any frame, as
a photo is). Losses on the composite (the painted region in the real crop): L1, the perceptual stand-in
(:class:`~talkinghead.nn.perceptual.PerceptualLoss`) and a patch LSGAN (its discriminator sees the mask).
"""

from __future__ import annotations

import argparse
import os
import zlib
from dataclasses import asdict
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from talkinghead.data.layouts import VIDEO_SUFFIXES
from talkinghead.errors import InputError
from talkinghead.nn.discriminator import PatchDiscriminator, lsgan_loss
from talkinghead.nn.perceptual import PerceptualLoss
from talkinghead.progress import bar
from talkinghead.render.warp.painter import (
    LIP_POINTS,
    MouthPainter,
    PainterConfig,
    composite,
    inner_gap,
    mouth_frame,
    painter_inputs,
    to_square,
)
from talkinghead.spec import Command
from talkinghead.train.common import fit, parse_devices, print_metrics, training_options

WORK_SIDE = 720
"""Videos are decoded at most this large (longer side) before meshing."""
OPEN_GAP = 1.5
"""A frame whose inner lips are this far apart (pixels of a 64 px square) counts as open."""
OPEN_SHARE = 0.75
"""Share of training items whose frame is open (the painter matters there; the rest teach the closed seam)."""
VAL_SHARE = 0.06
"""Share of clips (by a hash of the name) kept for validation."""


def clip_mouths(video: Path, size: int) -> dict[str, np.ndarray]:
    """Every frame's mouth square of one video: ``crops`` (N, S, S, 3) uint8 and ``lips`` (N, 40, 2) float32."""
    import cv2

    from talkinghead.face.mesh import track_faces
    from talkinghead.io import read_video

    clip = read_video(video, max_side=WORK_SIDE)
    track = track_faces(clip.frames, source=str(video))
    crops, lips = [], []
    for frame, mesh in zip(clip.frames, track.meshes):
        m = mouth_frame(mesh, size)
        crops.append(cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE))
        lips.append(to_square(mesh[LIP_POINTS], m))
    return {"crops": np.stack(crops), "lips": np.stack(lips).astype(np.float32)}


def _corpus_job(job: tuple[str, str, int]) -> str:
    video, out, size = job
    try:
        data = clip_mouths(Path(video), size)
    except InputError as exc:
        return f"skipped {video}: {exc}"
    tmp = Path(out).with_suffix(f".partial-{os.getpid()}.npz")
    np.savez(tmp, **data)
    tmp.replace(out)
    return f"done {video}: {len(data['crops'])} frames"


def mouth_corpus(sources: list[Path], dst: Path, *, size: int = PainterConfig.size, workers: int = 1,
                 quiet: bool = False) -> list[str]:
    """Mouth squares of every video under ``sources`` (files or folders) into ``dst`` (one ``.npz`` a video;
    present ones are kept). Returns a line per video."""
    from talkinghead.data.preprocess import run_jobs

    videos = []
    for s in sources:
        if not s.exists():
            raise InputError(s, "not found")
        videos += [s] if s.is_file() else sorted(p for p in s.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    dst.mkdir(parents=True, exist_ok=True)
    jobs, lines = [], []
    for v in videos:
        name = "__".join(v.resolve().parts[-2:]).rsplit(".", 1)[0] + ".npz"
        if (dst / name).exists():
            lines.append(f"exists {v}")
        else:
            jobs.append((str(v), str(dst / name), size))
    with bar(len(jobs), "mouth corpus", quiet=quiet, unit="clip") as pb:
        lines += run_jobs(_corpus_job, jobs, workers=workers, done=pb.update)
    return lines


def _is_val(name: str) -> bool:
    return zlib.crc32(name.encode()) % 1000 < VAL_SHARE * 1000


class MouthDataset(Dataset):
    """Painter items from a mouth corpus folder: ``x`` (C, S, S) float32 (:func:`painter_inputs`) and ``target``
    (3, S, S) float32 in -1..1. Deterministic given ``seed`` and the index; ``train`` flips half the items and
    jitters their brightness. ``pairs``: each item also holds the next frame of the clip (the previous one at its
    end), painted from the same reference, as ``x_next`` and ``target_next``."""

    def __init__(self, root: Path, split: str, *, length: int, seed: int = 0, train: bool = False,
                 pairs: bool = False) -> None:
        files = sorted(root.glob("*.npz"))
        if not files:
            raise InputError(root, "no mouth corpus here (run talkinghead mouth-corpus first)")
        files = [f for f in files if _is_val(f.stem) == (split == "val")]
        if not files:
            raise InputError(root, f"no {split} clips in this mouth corpus (clips are split by name, "
                                   f"{VAL_SHARE:.0%} of them for validation: it needs more videos)")
        self.clips = [dict(np.load(f)) for f in files]
        self.names = [f.stem for f in files]
        sizes = sorted({int(c["crops"].shape[1]) for c in self.clips})
        if len(sizes) > 1:
            raise InputError(root, f"mouth squares of several sizes here ({', '.join(map(str, sizes))} px): "
                                   "one corpus folder per size")
        self.size = sizes[0]
        self.gaps = [inner_gap(c["lips"], self.size) for c in self.clips]
        self.length, self.seed, self.train, self.pairs = length, seed, train, pairs

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, i])
        k = int(rng.integers(len(self.clips)))
        crops, lips, gaps = self.clips[k]["crops"], self.clips[k]["lips"], self.gaps[k]
        n = len(crops)
        open_frames = np.flatnonzero(gaps > OPEN_GAP)
        t = int(rng.choice(open_frames)) if len(open_frames) and rng.random() < OPEN_SHARE else int(rng.integers(n))
        far = np.flatnonzero(np.abs(np.arange(n) - t) > 12)
        pool = far if len(far) else np.arange(n)
        candidates = rng.choice(pool, size=min(8, len(pool)), replace=False)
        r = int(candidates[np.argmax(gaps[candidates])]) if rng.random() < 0.5 else int(candidates[0])
        frames = [t, t + 1 if t + 1 < n else t - 1] if self.pairs and n > 1 else [t]
        gain = rng.uniform(0.8, 1.2, size=3).astype(np.float32) if self.train else np.ones(3, np.float32)
        ref = np.clip(crops[r] * gain, 0, 255).astype(np.uint8)
        flip = self.train and rng.random() < 0.5
        item = {}
        for key, f in zip(("", "_next"), frames):
            crop = np.clip(crops[f] * gain, 0, 255).astype(np.uint8)
            x, _ = painter_inputs(crop, lips[f], ref, lips[r])
            target = crop.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
            if flip:
                x, target = x[..., ::-1], target[..., ::-1]
            item[f"x{key}"], item[f"target{key}"] = torch.from_numpy(x.copy()), torch.from_numpy(target.copy())
        return item


class PainterModule(L.LightningModule):
    """L1 + perceptual + patch LSGAN on the composite; the discriminator sees RGB + the mask. With ``temporal`` and
    batches of frame pairs (``MouthDataset(pairs=True)``), also the L1 between the change of the painted region from
    one frame to the next and the real change (in either frame's region): a painting that flickers where the real
    mouth holds still costs."""

    def __init__(self, config: dict, lr: float = 2e-4, l1: float = 1.0, perceptual: float = 0.5,
                 gan: float = 0.2, temporal: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.model = MouthPainter(PainterConfig(**config))
        self.disc = PatchDiscriminator(4, 32, 3)
        self.perceptual = PerceptualLoss(width_divisor=4)
        self.lr, self.weights = lr, {"l1": l1, "perceptual": perceptual, "gan": gan, "temporal": temporal}

    def _losses(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        x, real = batch["x"], batch["target"]
        fake = composite(x, self.model(x))
        mask = x[:, 3:4]
        parts = {"l1": ((fake - real).abs() * mask).sum() / (3 * mask.sum() + 1.0),
                 "perceptual": self.perceptual(fake, real)}
        if self.weights["gan"]:
            parts["gan"] = lsgan_loss([self.disc(torch.cat([fake, mask], 1))], True)
        if self.weights["temporal"] and "x_next" in batch:
            x2 = batch["x_next"]
            both = torch.maximum(mask, x2[:, 3:4])
            change = composite(x2, self.model(x2)) - fake - (batch["target_next"] - real)
            parts["temporal"] = (change.abs() * both).sum() / (3 * both.sum() + 1.0)
        loss = sum(self.weights[k] * v for k, v in parts.items())
        return loss, parts, fake

    def training_step(self, batch: dict, _: int) -> None:
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        loss, parts, fake = self._losses(batch)
        opt_g.zero_grad()
        self.manual_backward(loss)
        opt_g.step()
        if self.weights["gan"]:
            mask = batch["x"][:, 3:4]
            d_loss = 0.5 * (lsgan_loss([self.disc(torch.cat([fake.detach(), mask], 1))], False)
                            + lsgan_loss([self.disc(torch.cat([batch["target"], mask], 1))], True))
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
            parts["disc"] = d_loss.detach()
        self.log_dict({"train_loss": loss.detach(), **{f"train_{k}": v.detach() for k, v in parts.items()}},
                      prog_bar=True)

    def validation_step(self, batch: dict, _: int) -> None:
        loss, parts, _ = self._losses(batch)
        self.log_dict({"val_loss": loss, **{f"val_{k}": v for k, v in parts.items()}}, prog_bar=True)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.model.parameters(), lr=self.lr, betas=(0.5, 0.999)),
                torch.optim.Adam(self.disc.parameters(), lr=self.lr, betas=(0.5, 0.999))]


def train_painter(corpus: Path, output: Path, *, max_steps: int, block: int = PainterConfig.block, batch: int = 32,
                  lr: float = 2e-4, gan: float = 0.2, temporal: float = 0.0, reference_warp: bool = False,
                  init: Path | None = None, max_minutes: float | None = None, seed: int = 0, workers: int = 0,
                  accelerator: str = "auto", devices: int | str = "auto", nodes: int = 1,
                  quiet: bool = False) -> dict[str, float]:
    """Train a painter for the corpus' squares (``block``, ``reference_warp``: :class:`PainterConfig`) on its train
    clips (validated on the rest) and save ``output`` (float16 weights). ``temporal``: weight of the term on
    consecutive frames' change (:class:`PainterModule`; its items are frame pairs, a step about a fifth slower on
    the CPU). ``init``: a painter checkpoint to go on training (its architecture replaces ``block``, and
    ``reference_warp`` unless it asks a drawing painter to learn to copy: :meth:`MouthPainter.with_reference_warp`;
    the discriminator starts afresh)."""
    L.seed_everything(seed, workers=True, verbose=False)
    start = MouthPainter.load(init) if init else None  # a bad checkpoint is named before the corpus is read
    if start and reference_warp and not start.config.reference_warp:
        start = start.with_reference_warp()
    train = MouthDataset(corpus, "train", length=max_steps * batch, seed=seed, train=True, pairs=bool(temporal))
    config = start.config if start else PainterConfig(size=train.size, block=block, reference_warp=reference_warp)
    if config.size != train.size:
        raise InputError(init or corpus, f"a painter for {config.size} px squares; the corpus has {train.size} px")
    if train.size % (4 * config.block):
        raise InputError(corpus, f"its {train.size} px mouth squares are not a multiple of 4 x the block "
                                 f"({config.block})")
    val = MouthDataset(corpus, "val", length=20 * batch, seed=seed + 1, pairs=bool(temporal))
    if val.size != train.size:
        raise InputError(corpus, f"mouth squares of several sizes here ({train.size} and {val.size} px): "
                                 "one corpus folder per size")
    module = PainterModule(asdict(config), lr=lr, gan=gan, temporal=temporal)
    if start:
        module.model.load_state_dict(start.state_dict())
    metrics = fit(module, train, val, max_steps=2 * max_steps if gan else max_steps, batch=batch, workers=workers,
                  accelerator=accelerator, devices=devices, nodes=nodes, val_every=500, max_minutes=max_minutes,
                  quiet=quiet)
    module.model.save(output, half=True, metrics=metrics, corpus=str(corpus), clips=train.names,
                      val_clips=val.names, steps=max_steps,
                      training={"batch": batch, "lr": lr, "gan": gan, "temporal": temporal, "seed": seed,
                                "max_minutes": max_minutes, "init": str(init) if init else None})
    return metrics


def _corpus_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", type=Path, help="videos or folders of videos")
    p.add_argument("-o", "--output", type=Path, required=True, help="corpus folder")
    p.add_argument("--size", type=int, default=PainterConfig.size,
                   help=f"side of the mouth squares (px; default: {PainterConfig.size})")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("-q", "--quiet", action="store_true")


def _run_corpus(a: argparse.Namespace) -> int:
    print("\n".join(mouth_corpus(a.sources, a.output, size=a.size, workers=a.workers, quiet=a.quiet)))
    return 0


def _train_arguments(p: argparse.ArgumentParser) -> None:
    training_options(p, datasets_help="the mouth corpus folder (talkinghead mouth-corpus)")
    p.add_argument("--steps", type=int, default=6000, help="generator updates (default: 6000)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default: 32)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default: 2e-4)")
    p.add_argument("--gan", type=float, default=0.2, help="weight of the adversarial term, 0: none (default: 0.2)")
    p.add_argument("--temporal", type=float, default=0.0,
                   help="weight of a term on consecutive frames: the painting changes as the real mouth does "
                        "(trains on frame pairs, a step about a fifth slower; default: 0, none)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block", type=int, default=PainterConfig.block,
                   help="pixel-unshuffle factor: the network's first level works on block x block pixel groups "
                        f"(default: {PainterConfig.block}; the square's side comes from the corpus)")
    p.add_argument("--reference-warp", action="store_true",
                   help="also copy the reference's mouth, where it is open, through a predicted flow (teeth "
                        "copied, not drawn)")
    p.add_argument("--init", type=Path, help="a painter checkpoint to go on training (its architecture is kept; "
                                             "with --reference-warp a painter that only draws learns to copy too)")


def _run_train(a: argparse.Namespace) -> int:
    if len(a.datasets) != 1:
        raise InputError(a.datasets[1], "train-painter takes one mouth corpus folder")
    metrics = train_painter(a.datasets[0], a.output, max_steps=a.steps, block=a.block, batch=a.batch,
                            lr=a.lr, gan=a.gan, temporal=a.temporal, reference_warp=a.reference_warp,
                            init=a.init, max_minutes=a.minutes, seed=a.seed, workers=a.workers,
                            devices=parse_devices(a.devices), nodes=a.nodes, quiet=a.quiet)
    return print_metrics(metrics)


CORPUS_COMMAND = Command(
    description="Mesh every frame of real talking videos once and keep each frame's mouth square (64 px by default, "
                "aligned to the mouth corners) with its lip points: one .npz a video, kept on a re-run.",
    arguments=_corpus_arguments, run=_run_corpus)
TRAIN_COMMAND = Command(
    description="Train the learned mouth painter on a mouth corpus (L1 + perceptual stand-in + patch LSGAN; "
                "PyTorch Lightning, GPUs and DDP when present); the checkpoint stores float16 weights.",
    arguments=_train_arguments, run=_run_train)
