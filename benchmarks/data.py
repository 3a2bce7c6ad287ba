"""Data pipeline: preprocessing throughput on the real clips, and synthetic-corpus alignment accuracy.

Prints frames per second (and per core) of `talkinghead preprocess` on ../shared/media/talking with
1 and 2 workers, against a baseline measured in the same run (only decoding the same videos and
their audio), and the mean error between espeak-ng's exact phone onsets and pocketsphinx forced
alignment of the known text over a small synthetic corpus.

    python benchmarks/data.py [--synth-clips 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from talkinghead.data.layouts import discover
from talkinghead.data.preprocess import preprocess
from talkinghead.io import load_audio, read_video
from talkinghead.train.synth import synth

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth-clips", type=int, default=16)
    args = parser.parse_args()
    src = MEDIA / "talking"

    start = time.perf_counter()
    seconds = 0.0
    for clip in discover(src, "folder"):
        video = read_video(clip.path, max_side=720)
        load_audio(clip.path)
        seconds += video.duration
    decode = time.perf_counter() - start
    print(f"baseline: decoding {seconds:.1f} s of video + audio took {decode:.1f} s "
          f"({seconds * 25 / decode:.0f} frames/s at 25 fps)")

    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            s = preprocess(src, Path(tmp), workers=workers, quiet=True)
        fps = s["frames_per_second"]
        print(f"preprocess, {workers} worker(s): {s['done']} clips, {s['frames']} frames in {s['wall_seconds']:.1f} s"
              f" = {fps:.1f} frames/s ({fps / workers:.1f} per core), {fps / 25:.2f}x real time, "
              f"{s['wall_seconds'] / decode:.1f}x the decode baseline")

    with tempfile.TemporaryDirectory() as tmp:
        s = synth(Path(tmp), clips=args.synth_clips, faces=MEDIA / "faces", workers=2, quiet=True)
    print(f"synth: {s['made']} clips in {s['wall_seconds']:.1f} s; espeak vs forced alignment of the known text: "
          f"mean onset error {s['mean_alignment_error_ms']} ms (target < 30 ms)")


if __name__ == "__main__":
    main()
