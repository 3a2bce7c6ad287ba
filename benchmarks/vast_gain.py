"""VAST's mouth gain, chosen on speakers the model never saw: the photo protocol on a held-out fold of the training
clips, at each gain.

    talkinghead train-vast data/train -o vast_fold0.pt --speech whisper3 --steps 2000 --batch 16 --hold-out 0/4
    python benchmarks/vast_gain.py vast_fold0.pt --gains 1,1.5,2 [--json out.json]

The checkpoint lists the clips it was trained without (``held_out``); each clip's source video (its ``meta.json``)
is regenerated from its first frame and its own audio, with itself as the style clip, by the checkpoint with its
``mouth_gain`` set to each gain (``talkinghead evaluate --reconstruct --method vast``'s protocol) and scored
against itself with our SyncNet. Printed per gain: the mean mouth-opening correlation (at lag 0 and at each clip's
best lag within +-3 frames), LSE-C, offsets within one frame, and the mean per-clip change against the first gain
with its standard error. The rule (StyleTalker's): the smallest gain within 0.02 of the best mean correlation.
Never point it at `talking/`, the evaluation set: the gain is a choice, and a choice made there is not held out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from talkinghead.evaluation import reconstruction
from talkinghead.motion.vast.model import Vast
from talkinghead.nn.checkpoint import checkpoint_meta


def held_out_videos(checkpoint: Path, folder: Path, *, clips: int | None = None) -> list[Path]:
    """Links in ``folder`` to the source videos of the clips ``checkpoint`` was trained without (the first
    ``clips`` of them), named by clip id."""
    held = checkpoint_meta(checkpoint).get("held_out") or []
    if not held:
        raise SystemExit(f"{checkpoint}: trained on every clip (train it with --hold-out FOLD/FOLDS)")
    links = []
    for clip in map(Path, held[:clips]):
        source = Path(json.loads((clip / "meta.json").read_text())["source"]).resolve()
        links.append(folder / f"{clip.name}{source.suffix}")
        links[-1].symlink_to(source)
    return links


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a VAST checkpoint trained with --hold-out")
    ap.add_argument("--gains", default="1,1.5,2", help="comma-separated gains (default: 1,1.5,2)")
    ap.add_argument("--clips", type=int, default=None, help="only the first N held-out clips")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    gains = [float(g) for g in args.gains.split(",")]
    model, meta = Vast.load(args.checkpoint), checkpoint_meta(args.checkpoint)
    result: dict = {"checkpoint": str(args.checkpoint), "gains": {}}
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        videos.mkdir()
        result["clips"] = [p.stem for p in held_out_videos(args.checkpoint, videos, clips=args.clips)]
        for gain in gains:
            model.config = replace(model.config, mouth_gain=gain)
            path = Path(tmp) / f"gain{gain}.pt"
            model.save(path, **{k: v for k, v in meta.items() if k != "config"})
            result["gains"][str(gain)] = reconstruction(videos, method="vast", checkpoints={"vast": path})
    first = [row["mouth_corr"] for row in result["gains"][str(gains[0])]["pairs"]]
    print(f"{len(first)} of {len(result['clips'])} held-out clips of {args.checkpoint} (the protocol reads .mp4, .mov, "
          ".mkv and .avi videos)")
    print(f"{'gain':>6s} {'mouth corr':>10s} {'best lag':>9s} {'LSE-C':>7s} {'offsets':>8s} {'vs first (se)':>16s}")
    means = []
    for gain in gains:
        run = result["gains"][str(gain)]
        diff = np.array([row["mouth_corr"] for row in run["pairs"]]) - first
        offsets = sum(abs(row["offset"]) <= 1 for row in run["pairs"])
        m = run["mean"]
        means.append(m["mouth_corr"])
        print(f"{gain:6.2f} {m['mouth_corr']:10.3f} {m['mouth_corr_lag']:9.3f} {m['lse_c']:7.3f} "
              f"{offsets:4d}/{len(diff):<3d} {diff.mean():+8.3f} ({diff.std(ddof=1) / np.sqrt(len(diff)):.3f})")
    chosen = min(g for g, m in zip(gains, means) if m >= max(means) - 0.02)
    result["chosen"] = chosen
    print(f"chosen (the smallest gain within 0.02 of the best): {chosen}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
