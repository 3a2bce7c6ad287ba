"""SyncNet checks: audio-visual offset estimation on clips shifted by known offsets, and LSE-C with
the clip's own audio vs another clip's audio.

    python benchmarks/syncnet.py CHECKPOINT DATASET [DATASET ...] [--split test]

For every clip of the datasets (preprocessed) and every shift s in -10..10 frames, the mouth
windows are paired with the mel windows shifted by s; the estimate is exact when the metric's
offset equals s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from talkinghead.data.clip import clip_dir, list_clips, load_clip
from talkinghead.data.datasets import MOUTH_ROW, iplap_windows
from talkinghead.sync.metrics import sync_score
from talkinghead.sync.model import SyncNet


def mouth_and_mel(clip, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    h, w = size
    frames = clip.frames(range(clip.n_frames))[:, MOUTH_ROW:]
    mouth = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    mouth_t = torch.from_numpy(mouth).permute(0, 3, 1, 2).float() / 255
    return mouth_t, torch.from_numpy(iplap_windows(clip, 0, clip.n_frames))


def shifted(mouth: torch.Tensor, mel: torch.Tensor, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs in which the audio is s frames late relative to the video (the metric should find +s)."""
    n = len(mouth)
    return (mouth[s:], mel[:n - s]) if s >= 0 else (mouth[:n + s], mel[-s:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--split", default=None, help="only this split (default: every clip)")
    args = parser.parse_args()
    model = SyncNet.load(args.checkpoint)
    size = (model.config.height, model.config.width)
    clips = [load_clip(clip_dir(r, c)) for r in args.datasets for c in list_clips(r, args.split)]
    data = [mouth_and_mel(c, size) for c in clips]
    exact = total = 0
    for clip, (mouth, mel) in zip(clips, data):
        hits = []
        for s in range(-10, 11):
            m, a = shifted(mouth, mel, s)
            hits.append(sync_score(model, m, a).offset == s)
        exact += sum(hits)
        total += len(hits)
        own = sync_score(model, mouth, mel)
        print(f"{clip.clip_id:40s} exact {sum(hits):2d}/21  LSE-D {own.lse_d:.3f}  LSE-C {own.lse_c:.3f}  "
              f"offset {own.offset:+d}")
    print(f"offset estimation exact: {exact}/{total} = {100 * exact / max(total, 1):.1f} %")
    own_c, other_c = [], []
    for i, (mouth, mel) in enumerate(data):
        own_c.append(sync_score(model, mouth, mel).lse_c)
        other_mel = data[(i + 1) % len(data)][1]
        n = min(len(mouth), len(other_mel))
        other_c.append(sync_score(model, mouth[:n], other_mel[:n]).lse_c)
    print(f"LSE-C own audio {np.mean(own_c):.3f} vs another clip's audio {np.mean(other_c):.3f}")


if __name__ == "__main__":
    main()
