"""Which speech representation predicts a new speaker's mouth opening? A linear probe per representation.

    python benchmarks/speech_probe.py --train data/train --test data/talking [--window 6] [--max-lag 3]

Both folders are ``talkinghead preprocess`` outputs (the test clips' speakers never in the training folder). For
each representation, ridge regression over a +-``--window``-frame window of its features predicts the inner-lip gap
of the pose-free mesh (:func:`talkinghead.face.expression.mouth_features`), centred per clip; the correlation with
the measured gap is averaged over clips:

- ``loso``: leave one speaker out over the training folder (speakers as
  :func:`talkinghead.data.layouts.speaker_key` names them; the penalty is chosen here, from 1 .. 1e6);
- ``held-out``: fitted on the whole training folder, tested on each test clip;
- ``+-lag``: the same, each clip allowed its best lag within +-``--max-lag`` frames (clips carry their own
  audio/video offsets, the same for every representation).

Representations: log-mel (the StyleTalker mel, 100 frames/s averaged to 25), phone one-hots, the phone
posteriorgram, Whisper tiny.en encoder features (stored by ``preprocess``; PCA to 64 dimensions, fitted on the
training folder): its last layer (``whisper``) and its third block (``whisper3``, the output the default engine's
speech map reads), each also less each clip's own mean (as the speech map reads them), and for scale
the default engine's lip gap from its phone shapes alone (the shipped calibration without its speech map; no fit: its
``loso`` column is its correlation on the training clips).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from talkinghead.audio.phonemes import PHONES, PhonemeTimeline
from talkinghead.audio.posteriorgram import phone_posteriorgram
from talkinghead.audio.speechmap import fit_window_ridge
from talkinghead.constants import DATA_FPS
from talkinghead.data.clip import ClipData, clip_dir, list_clips, load_clip
from talkinghead.data.layouts import speaker_key
from talkinghead.face.expression import GAP, mouth_features
from talkinghead.metrics.mouth import best_lag_pearson, pearson
from talkinghead.motion.viseme.config import VisemeConfig
from talkinghead.motion.viseme.infer import shape_mouth
from talkinghead.motion.viseme.model import articulation, default_calibration
from talkinghead.train.datasets import clip_speech

ALPHAS = tuple(10.0 ** np.arange(7))
WHISPER_DIMS = 64


def representations(clip: ClipData) -> dict[str, np.ndarray]:
    """(T, D) features of every representation for one clip."""
    n = clip.n_frames
    mel = clip.mel_styletalker[: 4 * n]
    mel = np.pad(mel, ((0, 4 * n - len(mel)), (0, 0)), mode="edge").reshape(n, 4, -1).mean(1)
    onehot = np.eye(len(PHONES), dtype=np.float32)[clip.phone_ids]
    ppg = phone_posteriorgram(clip.phones, clip.phone_starts, clip.phone_ends, fps=DATA_FPS, n_frames=n)
    if clip.whisper is None:
        raise SystemExit(f"{clip.clip_id}: no Whisper features stored; preprocess it again with this version")
    whisper = clip.whisper.astype(np.float64)
    third = clip_speech(clip, "whisper3").astype(np.float64)
    return {"log-mel": mel, "phone one-hot": onehot, "posteriorgram": ppg, "whisper": whisper,
            "whisper, centred per clip": whisper - whisper.mean(0), "whisper3": third,
            "whisper3, centred per clip": third - third.mean(0)}


def engine_gap(clip: ClipData) -> np.ndarray:
    """The default engine's lip gap from the clip's own phones and loudness (the shipped calibration's phone shapes,
    without its speech map; no fit)."""
    cal = default_calibration()
    tl = PhonemeTimeline([PHONES[i] for i in clip.phones], clip.phone_starts, clip.phone_ends, "aligned")
    deltas = articulation(tl, cal.targets, fps=DATA_FPS, n_frames=clip.n_frames, lag=cal.lag)
    return shape_mouth(deltas, clip.loudness_db, clip.voiced, fps=DATA_FPS, config=VisemeConfig())[:, GAP]


def load(root: Path) -> list[ClipData]:
    return [load_clip(clip_dir(root, c)) for c in list_clips(root)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=Path("data/train"))
    ap.add_argument("--test", type=Path, default=Path("data/talking"))
    ap.add_argument("--window", type=int, default=6)
    ap.add_argument("--max-lag", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    train, test = load(args.train), load(args.test)
    groups = sorted({speaker_key(c.clip_id) for c in train})
    print(f"{len(train)} training clips ({sum(c.n_frames for c in train) / DATA_FPS / 60:.1f} min, {len(groups)} "
          f"speaker groups), {len(test)} test clips")
    gap = {c.clip_id: mouth_features(c.canonical)[:, GAP] for c in train + test}
    target = {k: (v - v.mean())[:, None] for k, v in gap.items()}
    feats = {c.clip_id: representations(c) for c in train + test}
    rows = []
    for name in feats[train[0].clip_id]:
        xs = [feats[c.clip_id][name] for c in train]
        ys = [target[c.clip_id] for c in train]
        dims = WHISPER_DIMS if name.startswith("whisper") else None
        base = fit_window_ridge(xs, ys, window=args.window, alpha=1.0, dims=dims)  # PCA and scaling (no labels)
        a = [base.inputs(np.asarray(x, np.float64)) for x in xs]
        key = [speaker_key(c.clip_id) for c in train]
        gram = {g: sum(ai.T @ ai for ai, k in zip(a, key) if k == g) for g in groups}
        cross = {g: sum(ai.T @ yi for ai, yi, k in zip(a, ys, key) if k == g) for g in groups}
        g_all, c_all = sum(gram.values()), sum(cross.values())
        loso = {}
        for alpha in ALPHAS:
            pen = np.full(g_all.shape[0], alpha)
            pen[-1] = 0.0
            corrs = []
            for g in groups:
                w = np.linalg.solve(g_all - gram[g] + np.diag(pen), c_all - cross[g])
                corrs += [pearson(ai @ w[:, 0], yi[:, 0]) for ai, yi, k in zip(a, ys, key) if k == g]
            loso[alpha] = float(np.mean(corrs))
        alpha = max(loso, key=loso.get)
        model = fit_window_ridge(xs, ys, window=args.window, alpha=alpha, dims=dims)
        preds = [model.predict(feats[c.clip_id][name])[:, 0] for c in test]
        rows.append((name, loso[alpha], alpha,
                     float(np.mean([pearson(p, gap[c.clip_id]) for p, c in zip(preds, test)])),
                     float(np.mean([best_lag_pearson(p, gap[c.clip_id], args.max_lag) for p, c in zip(preds, test)]))))
    engine = {c.clip_id: engine_gap(c) for c in train + test}
    rows.append(("default engine's phone shapes (shipped calibration)", float(np.mean([pearson(engine[c.clip_id], gap[c.clip_id])
                                                              for c in train])), None,
                 float(np.mean([pearson(engine[c.clip_id], gap[c.clip_id]) for c in test])),
                 float(np.mean([best_lag_pearson(engine[c.clip_id], gap[c.clip_id], args.max_lag) for c in test]))))
    print(f"\nmouth-opening correlation, window +-{args.window} frames ({time.perf_counter() - t0:.0f} s)")
    print(f"| representation | loso (train) | alpha | held-out (test) | held-out, best lag +-{args.max_lag} |")
    print("|---|---|---|---|---|")
    for name, lo, alpha, held, lagged in rows:
        print(f"| {name} | {lo:.3f} | {'-' if alpha is None else f'{alpha:g}'} | {held:.3f} | {lagged:.3f} |")


if __name__ == "__main__":
    main()
