"""The penalty of StyleTalker's speech mouth map, chosen on folds of the training clips.

    python benchmarks/mouth_map.py data/train [--test data/talking] [--penalties 1e3,1e4,1e5,3e5] [--window 6]

For each penalty, :func:`talkinghead.train.styletalker.speech_mouth_ridge` (the ridge that ``fit_speech_mouth``
folds into the map: +-``--window`` frames of the speech's frame vectors, Whisper's third block by default, to the
mesh's mouth opening) is fitted on one of two folds of the training folder's train clips (by index, alternating)
and predicts the other; printed: the mean per-clip Pearson correlation of the prediction with the real opening out
of fold. With ``--test`` (a preprocessed folder never trained on) the ridge fitted on all the training clips also
predicts each of its clips: a held-out figure, not a ground for the choice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from talkinghead.metrics.mouth import mouth_opening, pearson
from talkinghead.train.datasets import ClipStore, clip_frame_vectors
from talkinghead.train.styletalker import speech_mouth_ridge


def speech_and_openings(root: Path, split: str | None, kind: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per clip of a split: the speech frame vectors (T, D) and the mouth openings, cut to the same length."""
    store = ClipStore([root], split, cache=2)
    rows, openings = [], []
    for k in range(len(store)):
        clip = store.clip(k)
        x, o = clip_frame_vectors(kind, clip), mouth_opening(clip.meshes)
        n = min(len(x), len(o))
        rows.append(x[:n])
        openings.append(o[:n])
    return rows, openings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--test", type=Path, default=None)
    parser.add_argument("--speech", default="whisper3")
    parser.add_argument("--window", type=int, default=6)
    parser.add_argument("--penalties", default="1e3,1e4,1e5,3e5")
    args = parser.parse_args()
    rows, openings = speech_and_openings(args.dataset, "train", args.speech)
    test = speech_and_openings(args.test, None, args.speech) if args.test else None
    fold = np.arange(len(rows)) % 2
    print(f"{len(rows)} training clips, {sum(map(len, rows))} frames")
    for penalty in (float(p) for p in args.penalties.split(",")):
        scores = []
        for f in (0, 1):
            fit = [k for k in range(len(rows)) if fold[k] != f]
            ridge = speech_mouth_ridge([rows[k] for k in fit], [openings[k] for k in fit], args.window, penalty)
            scores += [pearson(ridge.predict(rows[k])[:, 0], openings[k]) for k in np.flatnonzero(fold == f)]
        line = f"penalty {penalty:g}: out of fold {np.nanmean(scores):.3f}"
        if test:
            ridge = speech_mouth_ridge(rows, openings, args.window, penalty)
            line += f", held out {np.nanmean([pearson(ridge.predict(x)[:, 0], o) for x, o in zip(*test)]):.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
