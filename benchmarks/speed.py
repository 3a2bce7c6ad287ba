"""Speed of the whole `talkinghead generate` command: 60 s of speech on a 512 px portrait.

Prints wall time, the ratio to real time, per-stage times, peak memory (RSS of the command), and
the ratio to a baseline measured in the same run: only encoding 60 s of the unchanged portrait
with the audio (the floor any generator pays for its output). Saves a contact sheet of 8 frames.

    python benchmarks/speed.py [--face ../shared/media/faces/liveportrait_s7.jpg] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from talkinghead.io import load_audio, read_image, read_video, resize_longer, write_video

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def contact_sheet(video: Path, out: Path) -> None:
    """8 frames spread over the video, tiled 4 x 2, face region enlarged."""
    from talkinghead.face.mesh import mesh_image

    frames = read_video(video).frames
    mesh, _ = mesh_image(frames[0])
    lo, hi = mesh[:, :2].min(0), mesh[:, :2].max(0)
    c, half = (lo + hi) / 2, 0.85 * float((hi - lo).max())
    y0, y1 = int(max(c[1] - half, 0)), int(c[1] + half)
    x0, x1 = int(max(c[0] - half, 0)), int(c[0] + half)
    picks = np.linspace(len(frames) // 10, len(frames) - 1, 8).astype(int)
    tiles = [cv2.resize(frames[i][y0:y1, x0:x1], (256, 256)) for i in picks]
    sheet = np.concatenate([np.concatenate(tiles[:4], 1), np.concatenate(tiles[4:], 1)], 0)
    cv2.imwrite(str(out), sheet[:, :, ::-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--face", type=Path, default=MEDIA / "faces" / "liveportrait_s7.jpg")
    parser.add_argument("--audio", type=Path, default=MEDIA / "speech" / "musetalk_eng.wav")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    duration = load_audio(args.audio).size / 16000

    video = args.out / "speed.mp4"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "generate", "--image", str(args.face), "--audio",
                           str(args.audio), "-o", str(video)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(proc.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stages = dict((k, float(v)) for k, v in re.findall(r"(\w+) ([\d.]+)s", proc.stderr.split("phonemes:")[-1]))

    frame = resize_longer(read_image(args.face), 512)
    audio = load_audio(args.audio)
    n = int(np.ceil(duration * 25))
    start = time.perf_counter()
    write_video(args.out / "baseline.mp4", (frame for _ in range(n)), fps=25.0, audio=audio)
    baseline = time.perf_counter() - start

    print(f"input: {args.face.name} at {frame.shape[1]}x{frame.shape[0]}, {args.audio.name} ({duration:.1f} s)")
    print(f"whole command: {wall:.1f} s = {duration / wall:.2f}x faster than real time (target >= 2x)")
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
          + f", start-up and imports {wall - stages['analysis'] - stages['motion'] - stages['output']:.1f} s")
    print(f"peak memory (RSS): {peak_mb:.0f} MB")
    print(f"baseline (encode the still portrait + audio only): {baseline:.1f} s; whole command = "
          f"{wall / baseline:.2f}x baseline")
    contact_sheet(video, args.out / "contact_sheet.png")
    print(f"contact sheet: {args.out / 'contact_sheet.png'}")


if __name__ == "__main__":
    main()
