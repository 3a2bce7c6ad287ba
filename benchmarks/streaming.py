"""Streaming generation with the default engine (``talkinghead.streaming.Generator``).

1. Latency, live: the speech file is fed in 20 ms chunks at the pace of real time (each chunk handed over
   when its last sample would have been spoken). Reports the first-frame latency (from the first chunk's
   arrival to the first frame) and how far each frame comes after the moment its own audio ended
   (mean and worst: the lookahead + one chunk + compute; bounded if the stream keeps up).
2. Throughput: the same chunks all available at once: frames per second, its ratio to real time, and the
   ratio to a baseline measured in the same run: ``generate()`` of the same photo and speech (whole
   utterance, written to an mp4), in frames per second of wall time.
3. Lip sync on real talking clips (../shared/media/talking): for each clip, its first frame animated with its
   own audio by the stream and by the whole-utterance engine (with a Whisper transcript, and without:
   allphone); the mouth opening of the motion's meshes against the mouth opening tracked in the real video
   (Pearson correlation).
4. The stream against generate(): the mouth-opening correlation of the stream's motion with the whole-utterance
   engine's (Whisper transcript + alignment, what generate() makes), on the talking clips and on the speech files
   of ../shared/media/speech (the photo). To compare two versions, run this script against each
   (``PYTHONPATH=OTHER/src``) at the same time.

    python benchmarks/streaming.py [--size 256] [--lookahead 0.15] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile

from talkinghead.api import generate
from talkinghead.audio.features import analyse_audio
from talkinghead.constants import SAMPLE_RATE
from talkinghead.face.mesh import mesh_image, track_faces
from talkinghead.face.pose import pose_free
from talkinghead.io import load_audio, read_image, read_video
from talkinghead.metrics.mouth import mouth_opening, pearson
from talkinghead.motion.viseme.infer import viseme_motion
from talkinghead.motion.viseme.stream import VisemeStream
from talkinghead.render.warp.renderer import target_meshes
from talkinghead.streaming import Generator

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
CHUNK = 0.02
"""Seconds of audio per chunk."""


def paced(audio: np.ndarray, arrivals: list[float]) -> Iterator[np.ndarray]:
    """Chunks of ``audio`` handed over at the pace of real time; appends each chunk's hand-over time."""
    step = int(CHUNK * SAMPLE_RATE)
    start = time.perf_counter()
    for i in range(0, audio.size, step):
        wait = start + (i + step) / SAMPLE_RATE - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        arrivals.append(time.perf_counter())
        yield audio[i:i + step]


def live(gen: Generator, face: Path, audio: np.ndarray) -> dict:
    """Latency figures of one real-time-paced stream."""
    prepared = gen.prepare(face)
    arrivals: list[float] = []
    times = [time.perf_counter() for _ in gen.stream(prepared, paced(audio, arrivals))]
    origin = arrivals[0] - CHUNK  # when the first sample was spoken
    spoken = origin + (np.arange(len(times)) + 1) / gen.fps  # when each frame's own audio ended
    delay = np.array(times) - spoken
    return {"first_frame_latency_ms": 1000 * (times[0] - arrivals[0]),
            "frame_delay_mean_ms": 1000 * float(delay[:-1].mean()), "frame_delay_max_ms": 1000 * float(delay[:-1].max()),
            "frames": len(times)}


def throughput(gen: Generator, face: Path, audio: np.ndarray) -> dict:
    """Frames per second of the stream with all audio available, and of generate() on the same input."""
    prepared = gen.prepare(face)
    step = int(CHUNK * SAMPLE_RATE)
    start = time.perf_counter()
    n = sum(1 for _ in gen.stream(prepared, (audio[i:i + step] for i in range(0, audio.size, step))))
    stream_fps = n / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        soundfile.write(wav, audio, SAMPLE_RATE)
        start = time.perf_counter()
        result = generate(image=face, audio=wav, output=Path(tmp) / "out.mp4", size=gen.size, quiet=True)
        batch_fps = result.frames / (time.perf_counter() - start)
    return {"stream_fps": stream_fps, "realtime_ratio": stream_fps / gen.fps,
            "generate_fps": batch_fps, "stream_vs_generate": stream_fps / batch_fps}


def streamed(ref: np.ndarray, audio: np.ndarray, fps: float, lookahead: float) -> np.ndarray:
    """The meshes of the stream's motion for ``audio`` fed in chunks."""
    motion = VisemeStream(pose_free(ref), fps=fps, lookahead=lookahead)
    step = int(CHUNK * SAMPLE_RATE)
    parts = [motion.push(audio[i:i + step]) for i in range(0, audio.size, step)] + [motion.close()]
    return np.concatenate([target_meshes(ref, m) for m in parts if len(m)])


def opening_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the mouth openings of two mesh sequences over their common frames."""
    n = min(len(a), len(b))
    return pearson(mouth_opening(a[:n]), mouth_opening(b[:n]))


def follows_generate(ref: np.ndarray, audio: np.ndarray, fps: float, lookahead: float) -> float:
    """Mouth-opening correlation of the stream with generate()'s motion."""
    whole = target_meshes(ref, viseme_motion(analyse_audio(audio, fps=fps), pose_free(ref)))
    return opening_correlation(streamed(ref, audio, fps, lookahead), whole)


def lip_sync(clip: Path, lookahead: float) -> dict:
    """Mouth-opening correlation with the real clip: stream vs the whole-utterance engine (aligned, allphone);
    and the stream's with generate()'s (the aligned engine)."""
    real = read_video(clip, max_side=512)
    meshes = track_faces(real.frames, source=str(clip)).meshes
    audio = load_audio(clip)
    fps = real.fps
    ref = meshes[0]
    free = pose_free(ref)
    out = {"clip": clip.name, "frames": len(meshes)}
    whole = {language: target_meshes(ref, viseme_motion(analyse_audio(audio, fps=fps, language=language), free))
             for language in ("auto", "other")}
    stream = streamed(ref, audio, fps, lookahead)
    out["whole_aligned"] = opening_correlation(whole["auto"], meshes)
    out["whole_allphone"] = opening_correlation(whole["other"], meshes)
    out["stream"] = opening_correlation(stream, meshes)
    out["stream_vs_generate"] = opening_correlation(stream, whole["auto"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--face", type=Path, default=MEDIA / "faces" / "liveportrait_s7.jpg")
    parser.add_argument("--speech", type=Path, nargs="+",
                        default=[MEDIA / "speech" / f for f in ("videoretalking_1.wav", "sadtalker_imagine.wav",
                                                                "musetalk_eng.wav")])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--lookahead", type=float, default=0.15)
    parser.add_argument("--skip-latency", action="store_true", help="only the lip-sync figures (parts 3 and 4)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gen = Generator(size=args.size, lookahead=args.lookahead)
    result: dict = {"size": args.size, "lookahead_s": args.lookahead, "chunk_s": CHUNK, "speech": []}
    for path in [] if args.skip_latency else args.speech:
        audio = load_audio(path)
        row = {"speech": path.name, "seconds": round(audio.size / SAMPLE_RATE, 2), **live(gen, args.face, audio),
               **throughput(gen, args.face, audio)}
        result["speech"].append(row)
        print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    result["lip_sync"] = []
    for clip in sorted((MEDIA / "talking").glob("*.mp4")):
        row = lip_sync(clip, args.lookahead)
        result["lip_sync"].append(row)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    means = {k: float(np.mean([r[k] for r in result["lip_sync"]])) for k in ("stream", "whole_aligned", "whole_allphone")}
    result["lip_sync_mean"] = means
    print("mean mouth-opening correlation with the real clips:", json.dumps({k: round(v, 3) for k, v in means.items()}))
    ref, _ = mesh_image(read_image(args.face), source=str(args.face))
    result["follows_generate"] = [{"clip": r["clip"], "stream_vs_generate": r["stream_vs_generate"]}
                                  for r in result["lip_sync"]]
    for path in sorted((MEDIA / "speech").glob("*.wav")):
        row = {"clip": path.name, "stream_vs_generate": follows_generate(ref, load_audio(path), gen.fps,
                                                                          args.lookahead)}
        result["follows_generate"].append(row)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    mean = float(np.mean([r["stream_vs_generate"] for r in result["follows_generate"]]))
    result["follows_generate_mean"] = mean
    print(f"mean mouth-opening correlation of the stream with generate(): {mean:.3f}")
    (args.out / "streaming.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
