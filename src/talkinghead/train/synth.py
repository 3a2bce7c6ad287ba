"""``talkinghead synth``: a synthetic corpus with exact ground truth.

Each clip: random English sentences spoken by espeak-ng (voice, rate and pitch drawn at random)
with phone times from libespeak-ng's events; a face from a folder of photos animated by the
default engine driven by those exact phones, in one of a few labelled speaking styles (mouth
amplitude, smile, brow raise, head-motion energy, blink rate). A face is a photo, or a video's first frame
(more identities from the same media). The video is then preprocessed like
a real clip (mesh, crops, coefficients, forced alignment of the known text, ...) and stored in
the same format; the espeak timeline is kept as the clip's phone timeline and the forced
alignment's error against it is recorded in the clip's meta.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from talkinghead.audio.espeak import synthesize
from talkinghead.audio.features import features_from_timeline
from talkinghead.audio.phonemes import PHONE_INDEX, PHONES, PhonemeTimeline
from talkinghead.constants import DATA_FPS, SAMPLE_RATE
from talkinghead.data.clip import clip_dir, save_clip, write_splits
from talkinghead.data.layouts import VIDEO_SUFFIXES, ClipSource, speaker_split
from talkinghead.data.preprocess import Skip, face_model_or_none, process_video, run_jobs
from talkinghead.face.mesh import mesh_image
from talkinghead.face.pose import pose_free
from talkinghead.io import read_image, read_video, resize_longer, write_video
from talkinghead.motion.viseme.config import VisemeConfig
from talkinghead.motion.viseme.infer import viseme_motion
from talkinghead.progress import bar
from talkinghead.render.warp.renderer import WarpRenderer, target_meshes

VOICES = ("en-us", "en-us+m3", "en-us+f2", "en+m1", "en+f3", "en-us+m7", "en+f4", "en-gb-x-rp")
SIZE = 384
"""Rendered video size (longer side) before cropping to 256 px face crops."""
PAD_SECONDS = 0.4
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass(frozen=True)
class Style:
    """A labelled speaking style."""

    name: str
    mouth_amplitude: float
    smile: float
    brow_raise: float
    head_energy: float
    blink_interval: tuple[float, float]


STYLES = (
    Style("neutral", 1.0, 0.0, 0.0, 1.0, (2.0, 6.0)),
    Style("subdued", 0.6, 0.0, 0.0, 0.4, (4.0, 8.0)),
    Style("expressive", 1.5, 0.0, 0.0, 2.2, (1.5, 4.0)),
    Style("smiling", 1.0, 1.0, 0.0, 1.0, (2.0, 6.0)),
    Style("surprised", 1.3, 0.0, 1.0, 1.5, (3.0, 7.0)),
    Style("cheerful", 1.4, 1.0, 0.6, 2.0, (1.5, 4.0)),
)

_SUBJECTS = ("the old farmer", "my brother", "a young doctor", "the small boy", "our teacher", "the pilot",
             "his mother", "a quiet woman", "the baker", "every student", "the captain", "my neighbour")
_VERBS = ("painted", "opened", "carried", "watched", "bought", "moved", "found", "cleaned", "played with",
          "pushed", "followed", "remembered", "measured", "fixed", "visited")
_OBJECTS = ("a blue boat", "the heavy box", "five purple balloons", "the broken window", "a map of the moon",
            "the wooden bridge", "two cups of coffee", "a bright yellow kite", "the morning paper",
            "her favourite book", "the big brown dog", "a very long letter")
_PLACES = ("near the river", "before lunch", "in the park", "at the market", "every Monday", "without a word",
           "by the old mill", "after the storm", "with great care", "under the bridge", "on the way home")


def sentences(rng: np.random.Generator, count: int) -> str:
    """``count`` random grammatical English sentences."""
    out = []
    for _ in range(count):
        s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)}."
        out.append(s[0].upper() + s[1:])
    return " ".join(out)


@dataclass
class SynthSpec:
    """Everything that defines one synthetic clip (drawn from the seed)."""

    clip_id: str
    face: str
    text: str
    voice: str
    rate: int
    pitch: int
    style: Style
    seed: int


def draw_spec(index: int, faces: list[Path], seed: int) -> SynthSpec:
    rng = np.random.default_rng([seed, index])
    face = faces[int(rng.integers(len(faces)))]
    return SynthSpec(clip_id=f"synth_{index:05d}", face=str(face), text=sentences(rng, int(rng.integers(1, 3))),
                     voice=str(rng.choice(VOICES)), rate=int(rng.integers(130, 200)), pitch=int(rng.integers(25, 75)),
                     style=STYLES[int(rng.integers(len(STYLES)))], seed=int(rng.integers(2**31)))


def face_files(folders: list[Path]) -> list[Path]:
    """The photos and videos directly inside ``folders`` (sorted per folder, folders in the given order)."""
    return [p for folder in folders for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES]


def face_still(path: str | Path) -> np.ndarray:
    """(H, W, 3) RGB face of a photo, or of a video's first frame, with its longer side :data:`SIZE`."""
    if Path(path).suffix.lower() in VIDEO_SUFFIXES:
        return resize_longer(read_video(path, max_frames=1).frames[0], SIZE)
    return resize_longer(read_image(path), SIZE)


def render_spec(spec: SynthSpec, video_path: Path):  # type: ignore[no-untyped-def]
    """Speak and animate one spec into an mp4; returns the exact (padded) espeak timeline and the face's
    (478, 3) pose-free rest shape (the photo's own mesh, from which all motion is applied)."""
    speech = synthesize(spec.text, voice=spec.voice, rate=spec.rate, pitch=spec.pitch)
    pad = np.zeros(int(PAD_SECONDS * SAMPLE_RATE), np.float32)
    audio = np.concatenate([pad, speech.audio, pad])
    tl = speech.timeline
    timeline = type(tl)(["SIL", *tl.phones, "SIL"], np.concatenate([[0.0], tl.starts + PAD_SECONDS,
                                                                     [tl.ends[-1] + PAD_SECONDS]]),
                        np.concatenate([[PAD_SECONDS], tl.ends + PAD_SECONDS, [audio.size / SAMPLE_RATE]]),
                        "espeak", transcript=spec.text)
    features = features_from_timeline(audio, timeline, fps=DATA_FPS)
    image = face_still(spec.face)
    mesh, _ = mesh_image(image, source=spec.face)
    st = spec.style
    config = VisemeConfig(expression_scale=st.mouth_amplitude, smile=st.smile, brow_raise=st.brow_raise,
                          head_amplitude_deg=tuple(a * st.head_energy for a in VisemeConfig().head_amplitude_deg),
                          blink_interval=st.blink_interval, seed=spec.seed)
    rest = pose_free(mesh[None])[0]
    motion = viseme_motion(features, rest, config=config)
    renderer = WarpRenderer(image, mesh)
    frames = (renderer.compose(image, renderer.render(t)) for t in target_meshes(mesh, motion))
    write_video(video_path, frames, fps=DATA_FPS, audio=audio)
    return timeline, rest


def make_clip(job: tuple[SynthSpec, str]) -> tuple[str, str, float]:
    """Render, preprocess and store one clip; returns (clip_id, status or skip reason, alignment error s)."""
    spec, dst = job
    speaker = Path(spec.face).stem
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / f"{spec.clip_id}.mp4"
        try:
            timeline, rest = render_spec(spec, video)
            src = ClipSource(video, spec.clip_id, speaker, speaker_split(speaker), {"style": spec.style.name})
            meta = {"synthetic": {**asdict(spec), "style": asdict(spec.style)}}
            clip = process_video(src, face_model=face_model_or_none(), transcript=spec.text, neutral=rest,
                                 extra_meta=meta)
        except Skip as exc:
            return spec.clip_id, f"skipped: {exc}", float("nan")
    # process_video force-aligned the known text; keep that for the record, use espeak's exact times
    aligned = PhonemeTimeline([PHONES[i] for i in clip.phones], clip.phone_starts, clip.phone_ends, "aligned")
    error = alignment_error(timeline, aligned)
    clip.meta["alignment_error_seconds"] = error
    clip.meta["aligned_phonemes"] = [[p, round(float(t), 3)] for p, t in zip(aligned.phones, aligned.starts)]
    clip.phone_ids = timeline.frame_ids(fps=DATA_FPS, n_frames=clip.n_frames)
    clip.phones = np.array([PHONE_INDEX[p] for p in timeline.phones], np.int64)
    clip.phone_starts, clip.phone_ends = timeline.starts, timeline.ends
    clip.meta["phonemes"] = "espeak"
    save_clip(Path(dst), clip)
    return spec.clip_id, "done", error


def alignment_error(truth, aligned) -> float:  # type: ignore[no-untyped-def]
    """Mean |onset difference| (s) between true phones and the same phones in an alignment, in order."""
    errs = []
    j = 0
    pairs = [(p, s) for p, s in zip(aligned.phones, aligned.starts) if p != "SIL"]
    for p, s in ((p, s) for p, s in zip(truth.phones, truth.starts) if p != "SIL"):
        k = next((i for i in range(j, min(j + 4, len(pairs))) if pairs[i][0] == p), None)
        if k is not None:
            errs.append(abs(pairs[k][1] - s))
            j = k + 1
    return float(np.mean(errs)) if errs else float("nan")


def synth(dst: Path, *, clips: int, faces: Path | list[Path], seed: int = 0, workers: int = 1,
          quiet: bool = False) -> dict:
    """Make (or complete) a synthetic corpus of ``clips`` clips in ``dst`` with the photos and videos (first
    frame) in the folder(s) ``faces`` (see :func:`face_files`); returns a summary."""
    folders = [faces] if isinstance(faces, Path) else faces
    files = face_files(folders)
    if not files:
        raise ValueError(f"{', '.join(map(str, folders))}: no face photos or videos")
    dst.mkdir(parents=True, exist_ok=True)
    specs = [draw_spec(i, files, seed) for i in range(clips)]
    jobs = [(s, str(dst)) for s in specs if not (clip_dir(dst, s.clip_id) / "meta.json").exists()]
    start = time.perf_counter()
    with bar(clips, "synth", quiet=quiet, unit="clip") as pb:
        pb.update(clips - len(jobs))
        results = run_jobs(make_clip, jobs, workers=workers, done=pb.update)
    errors = [e for _, status, e in results if status == "done" and np.isfinite(e)]
    return {"clips": clips, "made": sum(s == "done" for _, s, _ in results), "already_present": clips - len(jobs),
            "skipped": {c: s for c, s, _ in results if s != "done"},
            "mean_alignment_error_ms": round(1000 * float(np.mean(errors)), 1) if errors else None,
            "wall_seconds": round(time.perf_counter() - start, 1), "splits": write_splits(dst)}
