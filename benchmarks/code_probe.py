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
from talkinghead.train.styletalker import fit_mouth_probe


def cached_codes_and_openings(codes: Path, dataset: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per clip of a code cache: its codes (N, L, w_dim) as stored and the mouth opening (N',) of its meshes in
    ``dataset``."""
    out: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    with np.load(codes) as cache:
        for k, key in enumerate(cache["keys"]):
            out[0].append(cache[f"c{k}"])
            out[1].append(mouth_opening(load_clip(clip_dir(dataset, str(key).rsplit("/", 1)[1])).meshes))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("codes", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--penalties", default="10,100,1000")
    args = parser.parse_args()
    codes, openings = cached_codes_and_openings(args.codes, args.dataset)
    n = [min(len(c), len(o)) for c, o in zip(codes, openings)]
    fold = np.random.default_rng(0).integers(0, args.folds, len(codes))
    print(f"{len(codes)} clips, {sum(n)} frames, {codes[0][0].size} code dimensions")
    for penalty in (float(p) for p in args.penalties.split(",")):
        scores = []
        for f in range(args.folds):
            train = [k for k in range(len(codes)) if fold[k] != f]
            w, _ = fit_mouth_probe([codes[k] for k in train], [openings[k] for k in train], codes[0].shape[1],
                                   penalty)
            scores += [pearson(codes[k][:n[k]].reshape(n[k], -1).astype(np.float64) @ w, openings[k][:n[k]])
                       for k in np.flatnonzero(fold == f) if n[k] > 20]
        print(f"penalty {penalty:g}: mean per-clip correlation {np.mean(scores):.3f} over {len(scores)} clips")


if __name__ == "__main__":
    main()
