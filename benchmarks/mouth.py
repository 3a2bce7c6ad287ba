"""The mouth the warp renderer draws, on held-out clips: the learned painter against the painted interior and
IP_LAP's renderer, by the dub protocol (every clip of ``talking/`` dubbed with its own speech from its own frames).

    python benchmarks/mouth.py [--clips ../shared/media/talking] [--seconds 4] [--variants learned,painted,iplap]
        [--painter painter.pt]

Every clip's first ``--seconds`` are cut once (re-encoded at high quality, used as the real frames of every
variant), each variant dubs them (``evaluate --reconstruct --protocol dub``: the default engine with ``--mouth
learned`` / ``--mouth painted``, and IP_LAP), and the mouth box metrics of :mod:`talkinghead.metrics.evaluate` are
printed per clip and on average: PSNR, SSIM and CPBD in the box around the real inner lips, CPBD of the real box,
and flicker (mean absolute frame difference in the box while the lips are still) of each video and of the real
clip. Contact sheets (``--out``/contact_CLIP.png): 8 consecutive frames around the widest real mouth, one row per
video (real first), cut around the real mouth. ``--painter`` adds a variant "painter": the default engine with that
painter checkpoint in place of the shipped one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from talkinghead.constants import SAMPLE_RATE
from talkinghead.evaluation import reconstruction
from talkinghead.face import indices as ix
from talkinghead.face.mesh import track_faces
from talkinghead.io import load_audio, read_video, write_video
from talkinghead.metrics.mouth import mouth_opening

VARIANTS = {"learned": {"method": "viseme", "mouth": "learned"}, "painted": {"method": "viseme", "mouth": "painted"},
            "iplap": {"method": "iplap"}}
COLUMNS = ("mouth_psnr", "mouth_ssim", "mouth_cpbd", "mouth_cpbd_ref", "flicker", "flicker_ref", "psnr",
           "mouth_corr")
SHEET_FRAMES = 8
SHEET_TILE = 112


def cut_clips(src: Path, dst: Path, seconds: float) -> list[Path]:
    """The first ``seconds`` of every clip in ``src``, written to ``dst`` (frames and speech re-encoded)."""
    out = []
    for clip in sorted(p for p in src.iterdir() if p.suffix.lower() == ".mp4"):
        video = read_video(clip)
        n = min(len(video.frames), round(seconds * video.fps))
        speech = load_audio(clip)
        write_video(dst / clip.name, iter(video.frames[:n]), fps=video.fps,
                    audio=speech[:round(n / video.fps * SAMPLE_RATE)])
        out.append(dst / clip.name)
    return out


def contact_sheet(real: Path, videos: dict[str, Path]) -> np.ndarray:
    """Rows of 8 consecutive mouth crops: the real clip, then each video; (rows * tile, 8 * tile, 3) RGB."""
    frames = read_video(real).frames
    meshes = track_faces(frames, source=str(real)).meshes
    opening = np.convolve(mouth_opening(meshes), np.ones(SHEET_FRAMES), mode="valid")
    start = int(np.argmax(opening))
    rows = []
    for name, path in [("real", real), *videos.items()]:
        gen = frames if name == "real" else read_video(path).frames
        tiles = []
        for t in range(start, start + SHEET_FRAMES):
            lips = meshes[t][ix.LIPS_ALL, :2]
            centre = lips.mean(0)
            side = 2.0 * float(np.ptp(lips[:, 0]))
            m = np.array([[SHEET_TILE / side, 0, SHEET_TILE / 2 - SHEET_TILE / side * centre[0]],
                          [0, SHEET_TILE / side, SHEET_TILE / 2 - SHEET_TILE / side * centre[1]]])
            image = gen[min(t, len(gen) - 1)]
            if image.shape != frames[t].shape:
                image = cv2.resize(image, frames[t].shape[1::-1], interpolation=cv2.INTER_AREA)
            tiles.append(cv2.warpAffine(image, m, (SHEET_TILE, SHEET_TILE), flags=cv2.INTER_CUBIC))
        row = np.concatenate(tiles, 1)
        cv2.putText(row, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        rows.append(row)
    return np.concatenate(rows, 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=Path, default=Path("../shared/media/talking"))
    p.add_argument("--seconds", type=float, default=4.0, help="first seconds of every clip (default: 4)")
    p.add_argument("--variants", default="learned,painted,iplap")
    p.add_argument("--sheets", type=int, default=4, help="contact sheets of this many clips (default: 4)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/mouth"))
    p.add_argument("--painter", type=Path, help="a painter checkpoint (train-painter) to add as the variant 'painter'")
    args = p.parse_args()
    names = args.variants.split(",")
    variants = dict(VARIANTS)
    if args.painter:
        variants["painter"] = {**VARIANTS["learned"], "checkpoints": {"mouth_painter": args.painter}}
        names.append("painter")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = cut_clips(args.clips, Path(tmp), args.seconds)
        for name in names:
            results[name] = reconstruction(Path(tmp), protocol="dub", keep=args.out / name, **variants[name])
            print(f"{name}: done", flush=True)
        for clip in clips[:args.sheets]:
            sheet = contact_sheet(clip, {n: args.out / n / clip.name for n in names})
            cv2.imwrite(str(args.out / f"contact_{clip.stem}.png"), sheet[:, :, ::-1])
    print("| variant | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for name in names:
        mean = results[name]["mean"]
        print(f"| {name} | " + " | ".join(f"{mean[c]:.3f}" for c in COLUMNS) + " |")
    print("\nper clip (mouth PSNR / mouth SSIM / mouth CPBD / flicker):")
    for i, row in enumerate(results[names[0]]["pairs"]):
        cells = [f"{results[n]['pairs'][i]['mouth_psnr']:.2f} / {results[n]['pairs'][i]['mouth_ssim']:.3f} / "
                 f"{results[n]['pairs'][i]['mouth_cpbd']:.3f} / {results[n]['pairs'][i]['flicker']:.2f}"
                 for n in names]
        print(f"{Path(row['reference']).stem}: " + "; ".join(f"{n} {c}" for n, c in zip(names, cells))
              + f"; real CPBD {row['mouth_cpbd_ref']:.3f}, flicker {row['flicker_ref']:.2f}")
    if len(names) > 1:
        base = names[0]
        for other in names[1:]:
            for metric in ("mouth_psnr", "mouth_ssim"):
                d = np.array([a[metric] - b[metric] for a, b in zip(results[base]["pairs"], results[other]["pairs"])])
                print(f"{base} - {other} {metric}: mean {d.mean():+.3f}, standard error {d.std(ddof=1) / np.sqrt(len(d)):.3f}, "
                      f"{int((d > 0).sum())}/{len(d)} clips higher")
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
