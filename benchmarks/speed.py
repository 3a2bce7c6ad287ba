"""Speed of the whole command, one table: every method that runs with its shipped weights x {photo, dub} x
{256, 512 px}, on the first ``--seconds`` of a speech file.

Each row is one ``talkinghead generate`` (photo) or ``talkinghead dub`` (video) run as a child process: wall time,
x real time, the seconds of each stage (from the command's own report; "analysis" and "output" are the wall times
of overlapping stages), and the child's peak RSS. Beside it, measured in the same run at the same size: the default
engine (``viseme``) and an encode-only baseline (the unchanged portrait, or the video's own frames, written with
the speech: the floor any generator pays for its output). The default engine runs twice, with its learned mouth
painter (the default) and with ``--mouth painted`` (no weights), so the painter's cost is measured in the same run.
Saves a contact sheet of 8 frames of the default engine at 512 px.

    python benchmarks/speed.py [--methods viseme,iplap,styletalk,vast] [--sizes 256,512] [--modes photo,dub]
        [--seconds 60] [--face ../shared/media/faces/liveportrait_s7.jpg]
        [--video ../shared/media/talking/styletalk_KristiNoem.mp4] [--out benchmarks/out]

The default face is the slowest of ``faces/`` for the warp renderer (its working crop, 559 px, is larger than the
512 px photo). A method is skipped where it takes no photo (or video), or needs a checkpoint that does not ship.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import soundfile

from talkinghead.constants import SAMPLE_RATE
from talkinghead.io import load_audio, read_image, read_video, resize_longer, write_video
from talkinghead.io.video import frame_indices
from talkinghead.registry import available_methods, get_method, get_renderer

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


def runnable(method: str, mode: str) -> bool:
    """Whether ``method`` takes this mode's face and runs with shipped weights (some renderer needs none)."""
    spec = get_method(method)
    if not (spec.photo if mode == "photo" else spec.video):
        return False
    if not all(role.shipped for role in spec.checkpoints):
        return False
    return any(all(role.shipped for role in get_renderer(r).checkpoints) for r in spec.renderers)


LAUNCHER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "rss_mb": usage.ru_maxrss / 1024, "stderr": err}))
"""
"""Runs a command from a small process and reports its peak RSS: a child forked from this (large) benchmark
process would count this one's memory in its own peak."""


def run(args: list[str]) -> tuple[float, dict[str, float], float]:
    """Run ``talkinghead ARGS``: (wall seconds, its stage seconds, its peak RSS in MB)."""
    start = time.perf_counter()
    launched = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "talkinghead", *args],
                              capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    result = json.loads(launched.stdout)
    report = [line for line in result["stderr"].splitlines() if line.startswith("wrote ")]
    if result["code"] or not report:
        sys.exit(f"talkinghead {' '.join(args)} failed:\n{result['stderr'][-2000:]}")
    stages = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s", report[-1].split("phonemes:")[-1])}
    return wall, stages, result["rss_mb"]


def baseline(mode: str, size: int, face: Path, video: Path, speech: Path, out: Path) -> float:
    """Seconds to encode the speech with the unchanged portrait (photo) or the video's frames (dub) at ``size``."""
    audio = load_audio(speech)
    n = int(np.ceil(audio.size / SAMPLE_RATE * 25))
    if mode == "photo":
        frame = resize_longer(read_image(face), size)
        frames = [frame] * n
    else:
        clip = read_video(video, max_side=size)
        frames = [clip.frames[i] for i in frame_indices(n, 25.0, len(clip.frames), clip.fps)]
    start = time.perf_counter()
    write_video(out, iter(frames), fps=25.0, audio=audio)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(available_methods()))
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--modes", default="photo,dub")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--face", type=Path, default=MEDIA / "faces" / "liveportrait_s7.jpg")
    parser.add_argument("--video", type=Path, default=MEDIA / "talking" / "styletalk_KristiNoem.mp4")
    parser.add_argument("--audio", type=Path, default=MEDIA / "speech" / "musetalk_eng.wav")
    parser.add_argument("--style", type=Path, default=MEDIA / "motion" / "liveportrait_d6.mp4",
                        help="style clip for the methods that take one")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--baseline", nargs=2, metavar=("MODE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.baseline:
        print(baseline(args.baseline[0], int(args.baseline[1]), args.face, args.video, args.audio,
                       args.out / "speed_baseline.mp4"))
        return
    speech = load_audio(args.audio)[:int(args.seconds * SAMPLE_RATE)]
    duration = speech.size / SAMPLE_RATE
    audio = args.out / "speed_speech.wav"
    soundfile.write(audio, speech, SAMPLE_RATE)
    default_engine = available_methods()[0]
    methods = [default_engine] + [m for m in args.methods.split(",") if m and m != default_engine]  # the reference

    print(f"speech: the first {duration:.0f} s of {args.audio.name}; photo: {args.face.name}; "
          f"dub: {args.video.name}")
    print("| method | face | size | wall s | x real time | x default engine | x encode-only | peak RSS MB "
          "| stages (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    sheet = None
    for mode in args.modes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            measured = subprocess.run([sys.executable, __file__, "--baseline", mode, str(size), "--face",
                                       str(args.face), "--video", str(args.video), "--audio", str(audio), "--out",
                                       str(args.out)], capture_output=True, text=True, check=True)
            base = float(measured.stdout)  # in a child: this process stays small (see LAUNCHER)
            print(f"| encode only | {mode} | {size} | {base:.1f} | {duration / base:.1f} | | 1.00 | | |")
            default = None
            runs = [(m, []) for m in methods]
            runs.insert(1, (default_engine, ["--mouth", "painted"]))
            for method, options in runs:
                if not runnable(method, mode):
                    continue
                label = method + (" (mouth painted)" if options else "")
                out = args.out / f"speed_{method}{'_painted' if options else ''}_{mode}_{size}.mp4"
                face = (["generate", "--image", str(args.face)] if mode == "photo" else
                        ["dub", "--video", str(args.video)])
                takes_style = "style" in get_method(method).options and mode == "photo"
                extra = ["--style", str(args.style)] if takes_style else options
                wall, stages, rss = run([*face, "--audio", str(audio), "-o", str(out), "--size", str(size),
                                         "--method", method, *extra])
                default = default or wall
                shown = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
                print(f"| {label} | {mode} | {size} | {wall:.1f} | {duration / wall:.2f} | {default / wall:.2f} | "
                      f"{base / wall:.2f} | {rss:.0f} | {shown} |", flush=True)
                if method == default_engine and not options and mode == "photo" and size == 512:
                    sheet = args.out / "contact_sheet.png"
                    contact_sheet(out, sheet)
    if sheet is not None:
        print(f"contact sheet of the default engine (photo, 512 px): {sheet}")


if __name__ == "__main__":
    main()
