"""SyncNet checks: audio-visual offset estimation on clips shifted by known offsets, and LSE-C with
the clip's own audio vs another clip's audio.

    python benchmarks/syncnet.py CHECKPOINT DATASET [DATASET ...] [--split test]

For every clip of the datasets (preprocessed) and every shift s in -10..10 frames, the mouth
windows are paired with the mel windows shifted by s. Two scores:

- exact: the estimated offset equals s (assumes the clip itself is in sync);
- relative: the estimate equals s + the clip's own native offset (the estimate on the unshifted
  clip). Real videos are often 1-3 frames out of sync; the native offset is printed beside an
  independent estimate from the lips: how many frames the closure of the lips (smallest inner-lip gap
  within +-4 frames) comes before the centre of each forced-aligned p/b/m (median; positive: the
  audio is late).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from talkinghead.audio.phonemes import PHONE_INDEX
from talkinghead.constants import DATA_FPS
from talkinghead.data.clip import ClipData, clip_dir, list_clips, load_clip
from talkinghead.face import indices as ix
from talkinghead.sync.inputs import clip_visual, visual_tensor
from talkinghead.sync.metrics import sync_score
from talkinghead.sync.model import SyncNet
from talkinghead.train.datasets import clip_speech_inputs

SHIFTS = range(-10, 11)
BILABIALS = [PHONE_INDEX[p] for p in ("P", "B", "M")]


def lip_closure_lead(clip: ClipData) -> float:
    """Median frames by which the lips close (smallest inner-lip gap within +-4 frames) before the centre
    of each p/b/m phone (NaN without any)."""
    top, bottom = clip.canonical[:, ix.INNER_LIP_PAIRS[:, 0], :2], clip.canonical[:, ix.INNER_LIP_PAIRS[:, 1], :2]
    gap = np.linalg.norm(top - bottom, axis=-1).mean(1)
    leads = []
    for phone, start, end in zip(clip.phones, clip.phone_starts, clip.phone_ends):
        centre = (start + end) / 2 * DATA_FPS
        lo = int(round(centre)) - 4
        if int(phone) in BILABIALS and lo >= 0 and lo + 9 <= len(gap):
            leads.append(centre - (lo + int(np.argmin(gap[lo:lo + 9]))))
    return float(np.median(leads)) if leads else float("nan")


def shifted(mouth: torch.Tensor, mel: torch.Tensor, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs in which the audio is s frames late relative to the video (the metric should find +s)."""
    n = len(mouth)
    return (mouth[s:], mel[:n - s]) if s >= 0 else (mouth[:n + s], mel[-s:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--split", default=None, help="only this split (default: every clip)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    model = SyncNet.load(args.checkpoint)
    clips = [load_clip(clip_dir(r, c)) for r in args.datasets for c in list_clips(r, args.split)]
    data = [(visual_tensor(clip_visual(c, model.config)), torch.from_numpy(clip_speech_inputs(model.config.speech, c)))
            for c in clips]
    exact = relative = total = 0
    own_c = []
    for clip, (mouth, mel) in zip(clips, data):
        own = sync_score(model, mouth, mel)
        own_c.append(own.lse_c)
        found = np.array([sync_score(model, *shifted(mouth, mel, s)).offset - s for s in SHIFTS])
        exact += int((found == 0).sum())
        relative += int((found == own.offset).sum())
        total += len(SHIFTS)
        print(f"{clip.clip_id:36s} native offset {own.offset:+d} (lips: {lip_closure_lead(clip):+.1f})  "
              f"exact {(found == 0).sum():2d}/21  relative {(found == own.offset).sum():2d}/21  "
              f"LSE-D {own.lse_d:.3f}  LSE-C {own.lse_c:.3f}")
    print(f"offset estimation: exact {exact}/{total} = {100 * exact / max(total, 1):.1f} %, relative to the native "
          f"offset {relative}/{total} = {100 * relative / max(total, 1):.1f} %")
    other_c = []
    for i, (mouth, _) in enumerate(data):
        other_mel = data[(i + 1) % len(data)][1]
        n = min(len(mouth), len(other_mel))
        other_c.append(sync_score(model, mouth[:n], other_mel[:n]).lse_c)
    print(f"LSE-C own audio {np.mean(own_c):.3f} vs another clip's audio {np.mean(other_c):.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "checkpoint": str(args.checkpoint), "datasets": [str(d) for d in args.datasets], "split": args.split,
            "clips": len(clips), "offset_exact": exact / max(total, 1),
            "offset_relative": relative / max(total, 1), "offset_cases": total,
            "lse_c_own": float(np.mean(own_c)), "lse_c_other": float(np.mean(other_c))}, indent=1))


if __name__ == "__main__":
    main()
