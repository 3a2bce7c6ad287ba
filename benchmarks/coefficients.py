"""Helpers shared by the coefficient-level benchmarks of the style families (StyleTalk, VAST): held-out clips,
meshes of coefficients, reconstruction scores (mouth LMD, sync) and the style-space check (nearest-neighbour
style classification + a 2-D PCA plot)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from talkinghead.data.clip import ClipData, clip_dir, list_clips, load_clip
from talkinghead.face.model import default_face_model
from talkinghead.sync.inputs import SYNC_POINTS, clip_mels, mesh_mouth
from talkinghead.sync.metrics import sync_score
from talkinghead.sync.model import SyncNet
from talkinghead.train.datasets import style_class

HELD_OUT = ("val", "test")


def load_clips(datasets: list[Path], splits: tuple[str, ...] | None) -> list[ClipData]:
    out = []
    for root in datasets:
        for split in splits or (None,):
            out += [load_clip(clip_dir(root, c)) for c in list_clips(root, split)]
    return out


def shapes(clip: ClipData, coefficients: np.ndarray) -> np.ndarray:
    """(T, 478, 3) pose-free meshes of coefficients on the clip's rest shape."""
    return default_face_model().expression_meshes(clip.neutral, coefficients)


def style_space(code_of: Callable[[ClipData], np.ndarray], datasets: list[Path], plot: Path | None, *, title: str
                ) -> dict:
    """Nearest-neighbour style classification of the held-out clips' codes among the training clips' codes, and
    a PCA plot of all codes coloured by class (held-out clips as crosses)."""
    train, held = load_clips(datasets, ("train",)), load_clips(datasets, HELD_OUT)
    if not train or not held:
        raise SystemExit("style: needs train and val/test clips")
    tc, hc = np.stack([code_of(c) for c in train]), np.stack([code_of(c) for c in held])
    tl, hl = [style_class(c.meta) for c in train], [style_class(c.meta) for c in held]
    nearest = np.linalg.norm(hc[:, None] - tc[None], axis=-1).argmin(1)
    hit = np.array([tl[j] == label for j, label in zip(nearest, hl)])
    per_class = {k: float(hit[[label == k for label in hl]].mean()) for k in sorted(set(hl))}
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        codes = np.concatenate([tc, hc])
        centred = codes - codes.mean(0)
        xy = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
        fig, ax = plt.subplots(figsize=(6, 5))
        labels = tl + hl
        for k in sorted(set(labels)):
            m = np.array([label == k for label in labels])
            held_m = m & (np.arange(len(labels)) >= len(tl))
            dots = ax.scatter(*xy[m & ~held_m].T, s=12, label=k, alpha=0.6)
            ax.scatter(*xy[held_m].T, s=40, marker="x", color=dots.get_facecolor()[0])
        ax.set_title(f"{title} (PCA); x = held-out, NN accuracy {hit.mean():.0%}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
    return {"accuracy": float(hit.mean()), "held_out": len(held), "train": len(train), "per_class": per_class}


def reconstruction_scores(predict: Callable[[ClipData], np.ndarray] | None, clips: list[ClipData]) -> dict:
    """Scores of ``predict`` (clip -> (T, K) coefficients) regenerating every clip (None: the clips' own
    coefficients): mouth LMD (lip + jaw points, % of the eye-corner distance) against the real coefficients,
    and LSE-D / LSE-C / |offset| of our SyncNet's mesh stream against the clip's audio."""
    net = SyncNet.default()
    lmd, d, c, off = [], [], [], []
    for clip in clips:
        pred = clip.expression if predict is None else predict(clip)
        gen, real = shapes(clip, pred), shapes(clip, clip.expression[:, :pred.shape[1]])
        lmd.append(100 * np.linalg.norm(gen[:, SYNC_POINTS] - real[:, SYNC_POINTS], axis=-1).mean())
        s = sync_score(net, torch.from_numpy(mesh_mouth(gen)), torch.from_numpy(clip_mels(clip)))
        d.append(s.lse_d)
        c.append(s.lse_c)
        off.append(abs(s.offset))
    return {"mouth_lmd": float(np.mean(lmd)), "lse_d": float(np.mean(d)), "lse_c": float(np.mean(c)),
            "abs_offset": float(np.mean(off)), "clips": len(clips)}
