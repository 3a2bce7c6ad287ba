"""How much of the mouth's motion the feature-path encoder's W+ codes hold: a linear probe.

    python benchmarks/code_probe.py CODES.npz DATASET [--folds 5] [--penalties 10,100,1000]

CODES.npz is a code cache written by ``talkinghead train-styletalker --code-cache DIR`` (``DIR/codes_train.npz``:
the encoder's codes of every frame of DATASET's train split). Within each clip the codes and the mouth opening
(MediaPipe mesh, pose removed) are centred; ridge regression from the flattened codes to the opening is fitted on
the clips of all folds but one (clips drawn into folds at random, seed 0) and predicts the held-out fold's clips.
Prints the mean per-clip Pearson correlation of prediction and real opening for each penalty. Compare it with
``benchmarks/generator.py``'s mouth correlation, the part of that motion the generator draws from the same codes.

The encoder was trained on these clips (the probe's test clips are held out from the probe only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from talkinghead.data.clip import clip_dir, load_clip
from talkinghead.metrics.mouth import mouth_opening, pearson


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("codes", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--penalties", default="10,100,1000")
    args = parser.parse_args()
    xs, ys = [], []
    with np.load(args.codes) as cache:
        for k, key in enumerate(cache["keys"]):
            codes = cache[f"c{k}"].astype(np.float32)
            opening = mouth_opening(load_clip(clip_dir(args.dataset, str(key).rsplit("/", 1)[1])).meshes)
            n = min(len(codes), len(opening))
            x = codes[:n].reshape(n, -1)
            xs.append(x - x.mean(0))
            ys.append(opening[:n] - opening[:n].mean())
    fold = np.random.default_rng(0).integers(0, args.folds, len(xs))
    print(f"{len(xs)} clips, {sum(len(y) for y in ys)} frames, {xs[0].shape[1]} code dimensions")
    for penalty in (float(p) for p in args.penalties.split(",")):
        predicted: list[np.ndarray] = [np.zeros(0)] * len(xs)
        for f in range(args.folds):
            train = [k for k in range(len(xs)) if fold[k] != f]
            a, b = np.concatenate([xs[k] for k in train]), np.concatenate([ys[k] for k in train])
            w = np.linalg.solve(a.T @ a + penalty * np.eye(a.shape[1]), a.T @ b)
            for k in np.flatnonzero(fold == f):
                predicted[k] = xs[k] @ w
        scores = [pearson(p, y) for p, y in zip(predicted, ys) if len(y) > 20]
        print(f"penalty {penalty:g}: mean per-clip correlation {np.mean(scores):.3f} over {len(scores)} clips")


if __name__ == "__main__":
    main()
