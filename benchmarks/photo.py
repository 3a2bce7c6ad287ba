"""The checks of the photo methods StyleTalker and StyleHEAT on held-out clips (issue 21).

    python benchmarks/photo.py --method styletalker [--checkpoint styletalker=stk.pt] [--out DIR]
    python benchmarks/photo.py --method styleheat --checkpoint styleheat=sh.pt [--out DIR]

- photo protocol: every clip of ``talking/`` regenerated from its first frame and its own speech (StyleTalker:
  motion latents sampled from the prior, seed 0; StyleHEAT: lips from the speech, the head still) and scored
  against itself (``evaluate``'s metrics: mouth-opening correlation, our mesh SyncNet's offset, head-angle error
  APD), plus the dlib identity distance (Euclidean, as dlib's 0.6 same-person rule) between the real first frame
  and 10 generated frames;
- diversity (StyleTalker): five seeds on the first three clips; the head angles of every pair of samples differ
  by this many degrees on average over frames and the three Euler angles (each sample's mouth correlation kept);
- motion control: each of the first three clips' photo driven by the next clip's video (``--motion-from``) with
  that clip's speech; the head angles' error against the driving clip (both relative to their first frame), beside
  the same error of an undriven video (StyleTalker: a prior sample, seed 0; StyleHEAT: the still head) with that
  speech.

Every video is generated at the frame rate of the clip it is compared with (the driving clip's for motion control):
frames are paired by index. (Until styletalker_v2 this benchmark generated at 25 fps, so on the five 30 fps clips
the mouth, head-angle and motion-control figures paired frames that drifted apart.)

The baseline for sync and identity is the real clip itself (``lse_c_ref``); no other method runs here. Contact
sheets of the first three clips (``contact_CLIP.png``: rows real / generated / the photo, 8 frames spread over the
clip) are written beside the videos.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from generator import contact_sheet
from talkinghead.api import generate
from talkinghead.face.identity import FaceEmbedder, identity_distance
from talkinghead.face.mesh import track_faces
from talkinghead.io import read_video
from talkinghead.metrics.evaluate import evaluate_pair, load_syncnet, pose_free_and_angles
from talkinghead.metrics.mouth import mouth_opening, pearson

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
SIZE = 256
SHEETS = 3
"""Contact sheets are written for this many clips."""
SHEET_TILE = 160
"""Height of a contact sheet's frames (px)."""


def identity(embedder: FaceEmbedder, generated: Path, reference: np.ndarray) -> tuple[float, int]:
    """Mean dlib distance of 10 generated frames to the reference frame, and how many had a face."""
    frames, ref = read_video(generated).frames, embedder.embed(reference)
    dists = [identity_distance(ref, e) for i in np.linspace(0, len(frames) - 1, 10).astype(int)
             if (e := embedder.embed(frames[i])) is not None and ref is not None]
    return (float(np.mean(dists)) if dists else float("nan")), len(dists)


def photo_sheet(real: Path, generated: Path, photo: np.ndarray) -> np.ndarray:
    """Rows real / generated / the photo of 8 frames spread over a clip (paired by index), each frame
    :data:`SHEET_TILE` px high."""
    frames = [read_video(v, max_side=512).frames for v in (real, generated)]
    n = min(len(f) for f in frames)

    def tiles(images: np.ndarray) -> np.ndarray:
        h, w = images.shape[1:3]
        size = (round(w * SHEET_TILE / h), SHEET_TILE)
        return np.stack([cv2.resize(i, size, interpolation=cv2.INTER_AREA) for i in images])

    return contact_sheet(tiles(frames[0][:n]), tiles(frames[1][:n]), tiles(photo[None])[0])


def angles_of(video: Path, n: int | None = None) -> np.ndarray:
    """Head angles (T, 3) in degrees of a video's first ``n`` frames, relative to its first frame."""
    frames = read_video(video, max_side=512).frames[:n]
    angles = pose_free_and_angles(track_faces(frames, source=str(video)).meshes)[1]
    return angles - angles[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=("styletalker", "styleheat"), required=True)
    ap.add_argument("--checkpoint", action="append", type=lambda v: v.split("=", 1), default=[],
                    help="NAME=PATH (default: the shipped models)")
    ap.add_argument("--media", type=Path, default=MEDIA)
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/out/METHOD")
    args = ap.parse_args()
    out_dir: Path = args.out or Path("benchmarks/out") / args.method
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = sorted((args.media / "talking").glob("*.mp4"))
    embedder, net, ckpt = FaceEmbedder(), load_syncnet(None), dict(args.checkpoint)
    method = args.method
    rows, diversity, control = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        photos, fps = {}, {}
        for clip in clips:
            first = read_video(clip, max_side=512, max_frames=1)
            real, fps[clip] = first.frames[0], first.fps
            photos[clip] = Path(tmp) / f"{clip.stem}.png"
            cv2.imwrite(str(photos[clip]), real[:, :, ::-1])
            out = out_dir / f"{clip.stem}.mp4"
            generate(image=photos[clip], audio=clip, output=out, method=method, fps=fps[clip], size=SIZE,
                     checkpoints=ckpt, quiet=True)
            if len(rows) < SHEETS:
                sheet = photo_sheet(clip, out, real)
                cv2.imwrite(str(out_dir / f"contact_{clip.stem}.png"), sheet[:, :, ::-1])
            row = evaluate_pair(out, clip, embedder=embedder, syncnet=net, audio=clip)
            row["identity"], row["identity_faces"] = identity(embedder, out, real)
            rows.append({k: row[k] for k in ("generated", "mouth_corr", "mouth_corr_lag", "offset", "lse_c",
                                             "lse_c_ref", "apd", "csim", "psnr", "identity", "identity_faces")})
            print(json.dumps(rows[-1]), flush=True)
        for clip in clips[:3] if method == "styletalker" else []:  # StyleHEAT samples nothing
            real_open = mouth_opening(track_faces(read_video(clip, max_side=512).frames).meshes)
            samples = []
            for seed in range(5):
                out = out_dir / f"{clip.stem}_seed{seed}.mp4"
                generate(image=photos[clip], audio=clip, output=out, method=method, fps=fps[clip], size=SIZE,
                         seed=seed, checkpoints=ckpt, quiet=True)
                frames = read_video(out).frames
                meshes = track_faces(frames).meshes
                n = min(len(meshes), len(real_open))
                samples.append((pose_free_and_angles(meshes)[1], pearson(mouth_opening(meshes)[:n], real_open[:n])))
            n = min(len(a) for a, _ in samples)
            pair = [float(np.abs(a[:n] - b[:n]).mean()) for (a, _), (b, _) in itertools.combinations(samples, 2)]
            diversity.append({"clip": clip.name, "pose_difference_deg": float(np.mean(pair)),
                              "mouth_corr": [c for _, c in samples]})
            print(json.dumps(diversity[-1]), flush=True)
        for clip, driver in itertools.pairwise(clips[:4]):
            driven, free = out_dir / f"{clip.stem}_by_{driver.stem}.mp4", out_dir / f"{clip.stem}_{driver.stem}.mp4"
            generate(image=photos[clip], audio=driver, output=driven, method=method, fps=fps[driver], size=SIZE,
                     motion_from=driver, checkpoints=ckpt, quiet=True)
            generate(image=photos[clip], audio=driver, output=free, method=method, fps=fps[driver], size=SIZE,
                     checkpoints=ckpt, quiet=True)
            target = angles_of(driver)
            errors = {}
            for name, video in (("driven", driven), ("undriven", free)):
                got = angles_of(video)
                n = min(len(got), len(target))
                errors[name] = float(np.abs(got[:n] - target[:n]).mean())
            control.append({"photo": clip.name, "driver": driver.name, **errors})
            print(json.dumps(control[-1]), flush=True)
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in ("mouth_corr", "mouth_corr_lag", "lse_c",
                                                                   "lse_c_ref", "apd", "csim", "psnr", "identity")}
    summary = {"photo": mean, "offset_within_1": sum(abs(r["offset"]) <= 1 for r in rows), "clips": len(rows),
               "pose_difference_deg": float(np.mean([d["pose_difference_deg"] for d in diversity]))
               if diversity else None,
               "sample_mouth_corr": float(np.mean([c for d in diversity for c in d["mouth_corr"]]))
               if diversity else None,
               "driven_error_deg": float(np.mean([c["driven"] for c in control])),
               "undriven_error_deg": float(np.mean([c["undriven"] for c in control]))}
    (out_dir / "results.json").write_text(json.dumps({"summary": summary, "photo": rows, "diversity": diversity,
                                                       "control": control}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
