"""StyleTalk checks on preprocessed clips (coefficient level: no rendering).

    python benchmarks/styletalk.py style CKPT DATASET [...] [--plot out.png]
    python benchmarks/styletalk.py ablation CKPT_DYNAMIC CKPT_PLAIN DATASET [...] [--split test]
    python benchmarks/styletalk.py transfer CKPT DATASET [...] [--split test]

style: the style code of every clip (its first frames, up to the model's style length); each held-out
clip (val + test splits: faces never seen in training) is classified by the style class of its
nearest training clip (Euclidean); prints the accuracy per class and saves a 2-D PCA projection of
all codes, coloured by class, as a PNG.

ablation (StyleTalk Table 3 shape, with vs without the dynamic FFN): every clip regenerated from its
own phonemes with itself as the style clip; mouth LMD (lip + jaw points of the face model's mesh, %
of the eye-corner distance) against the clip's own coefficients, and LSE-D / LSE-C / offset from our
SyncNet's mesh stream on the generated mouth against the clip's audio (not comparable with published
LSE numbers: our own SyncNet); a last row scores the clips' own coefficients.

transfer: every held-out clip's speech driven with style clip B and with style clip C (held-out clips
of two other classes, drawn at random); per statistic (mouth-opening std, mean lip width, mean brow
height; eye closure is left out: blinks come from the default engine) the share of clips where the
generated difference B - C has the sign of the style clips' difference, the share where each
generated value lies nearer its own style clip's value than the other's, and the median share of the
style clips' gap that the generated gap reproduces (1 = all of it). On the synthetic corpus a
statistic counts only the pairs whose two styles differ in the parameter behind it (mouth amplitude,
smile, brow raise).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import coefficients
from coefficients import HELD_OUT, load_clips, reconstruction_scores, shapes
from talkinghead.audio.phonemes import phone_windows
from talkinghead.data.clip import ClipData
from talkinghead.face import indices as ix
from talkinghead.face.expression import mouth_features
from talkinghead.motion.styletalk.infer import style_code, style_frames
from talkinghead.motion.styletalk.model import StyleTalk
from talkinghead.train.datasets import style_class
from talkinghead.train.synth import STYLES


def code_of(model: StyleTalk, clip: ClipData) -> np.ndarray:
    return style_code(model, style_frames(model, clip.expression, clip.rotation)).numpy()


@torch.no_grad()
def regenerate(model: StyleTalk, clip: ClipData, style: ClipData) -> np.ndarray:
    """(T, K) coefficients of ``clip``'s phonemes in the style of ``style``."""
    phones = torch.from_numpy(phone_windows(clip.phone_ids, model.config.window))[None]
    code = torch.from_numpy(code_of(model, style))[None]
    return model.decode(phones, code)[0].numpy()


def _self_styled(model: StyleTalk) -> Callable[[ClipData], np.ndarray]:
    return lambda clip: regenerate(model, clip, clip)


def style_space(model: StyleTalk, datasets: list[Path], plot: Path | None) -> dict:
    return coefficients.style_space(lambda c: code_of(model, c), datasets, plot, title="StyleTalk style codes")


def statistics(mesh: np.ndarray) -> dict[str, float]:
    """Style statistics of (T, 478, 3) pose-free meshes (canonical units). Eye closure is left out:
    blinks come from the default engine at generation time, not from the style."""
    mouth = mouth_features(mesh)
    brow = mesh[:, ix.RIGHT_BROW, 1].mean(1) + mesh[:, ix.LEFT_BROW, 1].mean(1) \
        - mesh[:, ix.RIGHT_EYE_UPPER, 1].mean(1) - mesh[:, ix.LEFT_EYE_UPPER, 1].mean(1)
    return {"mouth_open_std": float(mouth[:, 0].std()), "lip_width_mean": float(mouth[:, 2].mean()),
            "brow_height_mean": float(-brow.mean() / 2)}


DRIVER = {"mouth_open_std": "mouth_amplitude", "lip_width_mean": "smile", "brow_height_mean": "brow_raise"}
"""The synthetic style parameter behind each statistic."""


def transfer(model: StyleTalk, clips: list[ClipData], seed: int = 0) -> dict:
    """Every clip's speech driven by two style clips of two other classes, B and C (drawn with ``seed``);
    for synthetic styles a statistic counts only pairs whose styles differ in the parameter behind it."""
    params = {st.name: st for st in STYLES}
    classes = sorted({style_class(c.meta) for c in clips})
    if len(classes) < 3:
        raise SystemExit("transfer: needs clips of at least three style classes")
    rng = np.random.default_rng(seed)
    agree: dict[str, list[bool]] = {}
    nearer: dict[str, list[bool]] = {}
    share: dict[str, list[float]] = {}
    for speech in clips:
        others = [k for k in classes if k != style_class(speech.meta)]
        b, c = rng.choice(others, 2, replace=False)
        sb, sc = (clips[int(rng.choice([i for i, x in enumerate(clips) if style_class(x.meta) == k]))] for k in (b, c))
        gen_b, gen_c = (statistics(shapes(speech, regenerate(model, speech, s))) for s in (sb, sc))
        tgt_b, tgt_c = statistics(shapes(sb, sb.expression)), statistics(shapes(sc, sc.expression))
        for k in gen_b:
            if b in params and c in params and getattr(params[b], DRIVER[k]) == getattr(params[c], DRIVER[k]):
                continue  # the two styles do not differ in what drives this statistic
            gap = tgt_b[k] - tgt_c[k]
            agree.setdefault(k, []).append(bool(np.sign(gen_b[k] - gen_c[k]) == np.sign(gap)))
            nearer.setdefault(k, []).append(abs(gen_b[k] - tgt_b[k]) < abs(gen_b[k] - tgt_c[k])
                                            and abs(gen_c[k] - tgt_c[k]) < abs(gen_c[k] - tgt_b[k]))
            share.setdefault(k, []).append((gen_b[k] - gen_c[k]) / gap if abs(gap) > 1e-9 else 0.0)
    return {"speech_clips": len(clips), "pairs": {k: len(v) for k, v in agree.items()},
            "direction_agrees": {k: float(np.mean(v)) for k, v in agree.items()},
            "nearer_own": {k: float(np.mean(v)) for k, v in nearer.items()},
            "gap_reproduced_median": {k: float(np.median(v)) for k, v in share.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=("style", "ablation", "transfer"))
    ap.add_argument("paths", nargs="+", type=Path, help="checkpoint(s), then dataset folders")
    ap.add_argument("--split", default=None, help="ablation/transfer: split (default: val + test)")
    ap.add_argument("--plot", type=Path, default=Path("benchmarks/out/styletalk_style_space.png"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    splits = (args.split,) if args.split else HELD_OUT
    if args.check == "style":
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        result = style_space(StyleTalk.load(args.paths[0]), args.paths[1:], args.plot)
        print(f"nearest-neighbour style accuracy on {result['held_out']} held-out clips: {result['accuracy']:.1%}")
        for k, v in result["per_class"].items():
            print(f"  {k:20s} {v:6.1%}")
        print(f"plot: {args.plot}")
    elif args.check == "ablation":
        a, b, *datasets = args.paths
        clips = load_clips(datasets, splits)
        result = {p.name: reconstruction_scores(_self_styled(StyleTalk.load(p)), clips) for p in (a, b)}
        result["real coefficients"] = reconstruction_scores(None, clips)
        keys = list(next(iter(result.values())))
        print(f"{'checkpoint':28s} " + " ".join(f"{k:>11s}" for k in keys))
        for name, row in result.items():
            print(f"{name:28s} " + " ".join(f"{row[k]:11.3f}" for k in keys))
    else:
        result = transfer(StyleTalk.load(args.paths[0]), load_clips(args.paths[1:], splits))
        print(f"{result['speech_clips']} speech clips, each driven by two style clips of two other classes")
        print(f"{'statistic':18s} {'pairs':>6s} {'direction agrees':>17s} {'nearer own clip':>16s} "
              f"{'gap reproduced':>15s}")
        for k in result["direction_agrees"]:
            print(f"{k:18s} {result['pairs'][k]:6d} {result['direction_agrees'][k]:17.0%} "
                  f"{result['nearer_own'][k]:16.0%} {result['gap_reproduced_median'][k]:15.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
