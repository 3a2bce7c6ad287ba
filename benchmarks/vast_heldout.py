"""VAST on speakers it never saw, without rendering: the lip gap of its decoded coefficients on the clips a checkpoint
was trained without, for choosing a training recipe on ``train/`` alone.

    talkinghead train-vast data/train -o base.pt --speech whisper3 --steps 2000 --batch 16 --hold-out 0/4
    talkinghead train-vast data/train -o new.pt --speech whisper3 --steps 1000 --batch 16 --hold-out 0/4 \\
        --input-dropout 0.3
    python benchmarks/vast_heldout.py base.pt new.pt

Each checkpoint lists the clips it was trained without (``held_out``; the checkpoints compared must hold out the same
ones). Per clip, VAST decodes the clip's own speech in the style of the clip's first ``max_style_frames`` frames (as
the photo protocol styles a clip by itself); the inner-lip gap of the lower-face coefficients on the clip's rest shape
is correlated with the real coefficients' (at lag 0 and at the best lag within +-3 frames), and its standard deviation
divided by the real one's is the spread. Printed per checkpoint: the means over clips and the mean per-clip change of
the correlation against the first checkpoint with its standard error. Never point it at ``talking/``: a recipe chosen
there is not held out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from talkinghead.data.clip import load_clip
from talkinghead.face.model import default_face_model
from talkinghead.metrics.mouth import best_lag_pearson, pearson
from talkinghead.motion.vast.model import Vast
from talkinghead.nn.checkpoint import checkpoint_meta
from talkinghead.train.datasets import clip_speech


def held_out_scores(checkpoint: Path) -> tuple[list[str], np.ndarray]:
    """(clip names, (N, 3) lip-gap correlation, best-lag correlation and spread per held-out clip)."""
    held = [Path(p) for p in checkpoint_meta(checkpoint).get("held_out") or []]
    if not held:
        raise SystemExit(f"{checkpoint}: trained on every clip (train it with --hold-out FOLD/FOLDS)")
    model, face_model = Vast.load(checkpoint).eval(), default_face_model()
    k, n = model.config.n_expression, model.config.max_style_frames
    rows = []
    for folder in held:
        clip = load_clip(folder)
        speech = torch.from_numpy(clip_speech(clip, model.config.speech)).float()[None]
        real = clip.expression[:, :k].astype(np.float32)
        with torch.no_grad():
            z = model.style(torch.from_numpy(real[:n])[None], speech[:, :n])[0]
            pred = model.generate(speech, z)[0].numpy()
        gap, real_gap = (face_model.lower_face_gap(clip.neutral, c) for c in (pred, real))
        rows.append((pearson(gap, real_gap), best_lag_pearson(gap, real_gap, 3), gap.std() / real_gap.std()))
    return [p.name for p in held], np.array(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+", help="VAST checkpoints trained with the same --hold-out")
    args = ap.parse_args()
    torch.set_num_threads(2)
    names, first = None, None
    print(f"{'checkpoint':40s} {'clips':>5s} {'lip-gap corr':>12s} {'best lag':>9s} {'spread':>7s} "
          f"{'vs first (se; higher on)':>26s}")
    for checkpoint in args.checkpoints:
        clips, scores = held_out_scores(checkpoint)
        if names is None:
            names, first = clips, scores
        elif clips != names:
            raise SystemExit(f"{checkpoint}: holds out other clips than {args.checkpoints[0]}")
        diff = scores[:, 0] - first[:, 0]
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        print(f"{checkpoint.name:40s} {len(scores):5d} {scores[:, 0].mean():12.3f} {scores[:, 1].mean():9.3f} "
              f"{scores[:, 2].mean():7.2f} {diff.mean():+10.3f} ({se:.3f}; {(diff > 0).sum()}/{len(diff)})")


if __name__ == "__main__":
    main()
