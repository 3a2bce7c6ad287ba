"""``talkinghead preprocess``: real talking-face videos -> the clip format of :mod:`talkinghead.data.clip`.

Per clip: frames time-matched to 25 fps, one face tracked (478-point mesh), eye-aligned 256 px
crops with temporally smoothed boxes (JPEG), head pose, pose-free meshes, face-model
coefficients, blink state, mel spectrograms (StyleTalker and IP_LAP settings), phone timeline,
loudness and voice activity, Whisper tiny.en encoder features (float16, so that training never runs the
encoder), dlib identity embedding. Clips are processed in parallel worker
processes; finished clips are skipped on a re-run; a clip that cannot be used is skipped with a
reason, never stopping the run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np

from talkinghead.audio.features import analyse_audio
from talkinghead.audio.mel import IPLAP, STYLETALKER, mel_spectrogram
from talkinghead.audio.phonemes import PHONE_INDEX, PhonemeTimeline
from talkinghead.audio.whisper_encoder import kind_features
from talkinghead.constants import CROP_SIZE, DATA_FPS, SAMPLE_RATE, SILENCE_PEAK
from talkinghead.data.clip import ClipData, clip_dir, encode_frames, save_clip, write_splits
from talkinghead.data.layouts import ClipSource, discover
from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.face.crop import track_crops
from talkinghead.face.expression import blink_state
from talkinghead.face.mesh import FaceMesher, mesh_box, track_faces
from talkinghead.face.model import FaceModel, default_face_model
from talkinghead.face.pose import fit_pose
from talkinghead.io import load_audio, read_video
from talkinghead.progress import bar

MIN_SECONDS = 1.0
"""Clips shorter than this (after trimming to the shorter of audio and video) are skipped."""
SECOND_FACE_SHARE = 0.3
"""A second face at least this large (area relative to the largest) makes a clip 'several faces'."""
WORK_SIDE = 720
"""Videos are decoded at most this large (longer side) before meshing and cropping."""


T = TypeVar("T")
R = TypeVar("R")


class Skip(Exception):
    """A clip that cannot be used, with the reason."""


@dataclass
class Result:
    clip_id: str
    status: str  # "done", "exists" or "skipped"
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0


@lru_cache(maxsize=1)
def _embedder():  # type: ignore[no-untyped-def]
    from talkinghead.face.identity import FaceEmbedder

    return FaceEmbedder()


def _timeline_arrays(tl: PhonemeTimeline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([PHONE_INDEX[p] for p in tl.phones], np.int64), tl.starts.astype(np.float64),
            tl.ends.astype(np.float64))


def face_model_or_none() -> FaceModel | None:
    """The shipped face model, or None before one has been fitted (coefficients then come from
    ``talkinghead fit-face-model --reencode``)."""
    try:
        return default_face_model()
    except FileNotFoundError:
        return None


def process_video(src: ClipSource, *, face_model: FaceModel | None, transcript: str | None = None,
                  neutral: np.ndarray | None = None, extra_meta: dict | None = None) -> ClipData:
    """Turn one video into a ClipData (raises Skip with the reason when it cannot be used).

    Args:
        transcript: known text of the speech (forced alignment of it instead of a Whisper transcript).
        neutral: (478, 3) pose-free rest shape of the face when it is known (synthetic clips); default:
            the clip's mean shape.
    """
    try:
        video = read_video(src.path, max_side=WORK_SIDE)
    except InputError as exc:
        raise Skip(f"unreadable video ({exc.problem})") from None
    try:
        audio = load_audio(src.path, allow_silent=True)
    except InputError as exc:
        raise Skip("audio missing" if "no audio" in exc.problem else f"unreadable audio ({exc.problem})") from None
    if float(np.abs(audio).max()) < SILENCE_PEAK:
        raise Skip("silent audio")
    n = int(np.floor(min(video.duration, audio.size / SAMPLE_RATE) * DATA_FPS + 1e-6))
    if n < MIN_SECONDS * DATA_FPS:
        raise Skip(f"too short ({n / DATA_FPS:.2f} s)")
    idx = np.minimum(np.floor(np.arange(n) * video.fps / DATA_FPS + 1e-6).astype(int), len(video.frames) - 1)
    frames = video.frames[idx]

    with FaceMesher(video=False) as mesher:
        first = mesher.detect(frames[0])
    if not first:
        raise Skip("no face")
    areas = [float(np.prod(mesh_box(f)[2:] - mesh_box(f)[:2])) for f in first]
    if len(areas) > 1 and areas[1] >= SECOND_FACE_SHARE * areas[0]:
        raise Skip("several faces")
    try:
        meshes = track_faces(frames, source=str(src.path)).meshes
    except InputError:
        raise Skip("no face") from None

    crops, fcs = track_crops(frames, meshes, size=CROP_SIZE)
    crop_meshes = [np.concatenate([fc.to_crop(mesh), mesh[:, 2:] * fc.scale], 1) for fc, mesh in zip(fcs, meshes)]
    matrices = [fc.matrix for fc in fcs]
    jpeg, offsets = encode_frames(crops)

    poses = [fit_pose(m) for m in meshes]
    canonical = np.stack([p.to_canonical(m.astype(np.float64)) for p, m in zip(poses, meshes)])
    neutral = canonical.mean(0) if neutral is None else neutral.astype(np.float64)

    audio = audio[: int(round(n / DATA_FPS * SAMPLE_RATE))]
    features = analyse_audio(audio, fps=DATA_FPS, transcript=transcript)
    phones, starts, ends = _timeline_arrays(features.phonemes)
    emb = _embedder().embed(frames[n // 2])
    return ClipData(
        clip_id=src.clip_id, speaker=src.speaker, split=src.split, jpeg=jpeg, offsets=offsets,
        crop_matrices=np.stack(matrices).astype(np.float32), meshes=np.stack(crop_meshes).astype(np.float32),
        canonical=canonical.astype(np.float32), neutral=neutral.astype(np.float32),
        rotation=np.stack([p.rotation for p in poses]).astype(np.float32),
        translation=np.stack([p.translation for p in poses]).astype(np.float32),
        scale=np.array([p.scale for p in poses], np.float32),
        expression=(face_model.encode_expression(canonical, neutral) if face_model else np.zeros((n, 0), np.float32)),
        identity=(face_model.encode_identity(neutral) if face_model else np.zeros(0)).astype(np.float32),
        blink=blink_state(canonical).astype(np.float32),
        audio=(np.clip(audio, -1, 1) * 32767).astype(np.int16),
        mel_styletalker=mel_spectrogram(audio, STYLETALKER), mel_iplap=mel_spectrogram(audio, IPLAP),
        phone_ids=features.phone_ids[:n], phones=phones, phone_starts=starts, phone_ends=ends,
        loudness_db=features.loudness_db[:n], voiced=features.voiced[:n],
        identity_embedding=(emb if emb is not None else np.full(128, np.nan)).astype(np.float32),
        whisper=kind_features("whisper", audio, fps=DATA_FPS, n_frames=n).astype(np.float16),
        whisper3=kind_features("whisper3", audio, fps=DATA_FPS, n_frames=n).astype(np.float16),
        meta={"source": str(src.path), "labels": src.labels, "transcript": features.phonemes.transcript,
              "phonemes": features.phonemes.method, "face_model": face_model.card.get("name", "") if face_model else "",
              "source_fps": round(video.fps, 3), **(extra_meta or {})},
    )


EXECUTORS = ("local", "ray")
"""Where preprocessing runs: worker processes on this machine, or tasks on a Ray cluster."""


def run_jobs(fn: Callable[[T], R], jobs: list[T], *, workers: int, done: Callable[[int], object],
             executor: str = "local", address: str | None = None) -> list[R]:
    """``fn`` over ``jobs`` in ``workers`` spawned processes (in this one when 1), or as Ray tasks (``executor="ray"``:
    the cluster at ``address``, else a local Ray instance of ``workers`` CPUs), calling ``done(1)`` as each finishes;
    results in completion order."""
    if executor == "ray":
        return _run_ray(fn, jobs, workers=workers, done=done, address=address)
    if executor != "local":
        raise TalkingHeadError(f"unknown executor {executor!r} (choose from {', '.join(EXECUTORS)})")
    results: list[R] = []
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for r in pool.imap_unordered(fn, jobs):
                results.append(r)
                done(1)
            pool.close()  # let the workers exit by themselves: terminated ones leave their semaphores behind
            pool.join()
    else:
        for job in jobs:
            results.append(fn(job))
            done(1)
    return results


def _run_ray(fn: Callable[[T], R], jobs: list[T], *, workers: int, done: Callable[[int], object],
             address: str | None) -> list[R]:
    """:func:`run_jobs` on Ray: one task (one CPU) a job. Every node needs this package installed and the output
    folder on storage they share; each clip is still written to a temporary name and renamed when complete."""
    try:
        import ray
    except ImportError:
        raise TalkingHeadError("--executor ray needs Ray: pip install 'talkinghead[ray]'") from None
    started = not ray.is_initialized()
    if started:
        local = {} if address else {"num_cpus": max(1, workers)}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False, **local)
    try:
        task = ray.remote(num_cpus=1)(fn)
        pending = [task.remote(job) for job in jobs]
        results: list[R] = []
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            results.append(ray.get(ready[0]))
            done(1)
        return results
    finally:
        if started:
            ray.shutdown()


def _work(job: tuple[ClipSource, str]) -> Result:
    src, dst = job
    start = time.perf_counter()
    try:
        clip = process_video(src, face_model=face_model_or_none())
        save_clip(Path(dst), clip)
        return Result(src.clip_id, "done", frames=clip.n_frames, seconds=time.perf_counter() - start)
    except Skip as exc:
        return Result(src.clip_id, "skipped", str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken clip must never stop the run
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return Result(src.clip_id, "skipped", f"error: {type(exc).__name__}: {exc} ({Path(last.filename).name}:"
                                              f"{last.lineno})")


def preprocess(src: Path, dst: Path, *, layout: str = "folder", workers: int = 1, quiet: bool = False,
               limit: int | None = None, executor: str = "local", address: str | None = None) -> dict:
    """Preprocess every clip of a corpus into ``dst`` (resumable, parallel: ``workers`` processes here, or Ray tasks
    with ``executor="ray"`` on the cluster at ``address``, see :func:`run_jobs`); returns the summary.

    The summary (also written to dst/summary.json) counts clips done now, already present and
    skipped, with each skipped clip's reason, plus frames per second of processing.
    """
    if not src.is_dir():
        raise InputError(src, "source is not a folder")
    dst.mkdir(parents=True, exist_ok=True)
    for stale in (dst / "clips").glob(".*.partial-*") if (dst / "clips").is_dir() else []:
        shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted run; its clip is redone
    sources = discover(src, layout)[:limit]
    todo = [s for s in sources if not (clip_dir(dst, s.clip_id) / "meta.json").exists()]
    results = [Result(s.clip_id, "exists") for s in sources if s not in todo]
    start = time.perf_counter()
    with bar(len(sources), f"preprocess {src.name}", quiet=quiet, unit="clip") as pb:
        pb.update(len(results))
        results += run_jobs(_work, [(s, str(dst)) for s in todo], workers=workers, done=pb.update, executor=executor,
                            address=address)
    wall = time.perf_counter() - start
    done = [r for r in results if r.status == "done"]
    frames = sum(r.frames for r in done)
    summary = {
        "source": str(src), "layout": layout, "clips_found": len(sources), "done": len(done),
        "already_present": sum(r.status == "exists" for r in results),
        "skipped": {r.clip_id: r.reason for r in results if r.status == "skipped"},
        "skip_reasons": dict(Counter(r.reason.split(" (")[0] for r in results if r.status == "skipped")),
        "frames": frames, "wall_seconds": round(wall, 2), "workers": workers, "executor": executor,
        "frames_per_second": round(frames / wall, 2) if wall > 0 and frames else 0.0,
        "splits": write_splits(dst),
    }
    previous = json.loads((dst / "summary.json").read_text()) if (dst / "summary.json").exists() else {}
    summary["runs"] = previous.get("runs", 0) + 1
    (dst / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
