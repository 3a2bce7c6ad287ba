"""The Python API the CLI calls: ``generate()`` (photo or video + speech -> mp4).

It names no method: the method's spec (:mod:`talkinghead.registry`) says what it takes, its ``motion`` makes the
performance and its renderer draws the frames.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talkinghead.audio.features import AudioFeatures, analyse_audio, release_models
from talkinghead.constants import DEFAULT_FPS, DEFAULT_SIZE, SAMPLE_RATE
from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.face.mesh import mesh_image, track_video
from talkinghead.io import load_audio, read_image, resize_longer, write_video
from talkinghead.io.paths import require_checkpoint, require_file, require_video, require_writable_output
from talkinghead.io.video import VideoClip, frame_indices
from talkinghead.progress import bar
from talkinghead.registry import available_methods, resolve
from talkinghead.spec import MOUTHS, RANGES, Request, Scene, check_ranges
from talkinghead.threads import Background, ahead

MAX_VIDEO_SIDE = 1280
"""A video to dub is worked on at most this large (longer side) unless ``size`` says otherwise."""


@dataclass
class GenerateResult:
    """What :func:`generate` made.

    Attributes:
        output: the written mp4.
        frames: number of video frames.
        fps: frame rate.
        duration: audio duration in seconds (the video covers it to within one frame).
        size: (width, height) of the video.
        method: motion method used.
        renderer: renderer used.
        phoneme_method: "aligned" (transcript + forced alignment) or "allphone".
        transcript: Whisper transcript of the speech ("" for allphone).
        faces_found: faces seen in the reference (the largest, or ``face_index``, was used).
        timings: seconds per stage; "face_analysis" and "audio_analysis" overlap ("analysis" is their wall time),
            and so does the renderer's "prepare" (when it has one); "render" and "encode" overlap ("output").
    """

    output: Path
    frames: int
    fps: float
    duration: float
    size: tuple[int, int]
    method: str
    renderer: str
    phoneme_method: str
    transcript: str
    faces_found: int
    timings: dict[str, float] = field(default_factory=dict)


def generate(
    *, audio: str | Path, output: str | Path, image: str | Path | None = None, video: str | Path | None = None,
    method: str | None = None, fps: float = DEFAULT_FPS, size: int | None = None, seed: int = 0, still: bool = False,
    expression_scale: float = 1.0, pose_from: str | Path | None = None, blink: bool | None = None, face_index: int = 0,
    language: str = "auto", references: int | None = None, mouth: str | None = None, renderer: str | None = None,
    style: str | Path | None = None,
    style_intensity: float = 1.0, motion_from: str | Path | None = None, invert_steps: int = 0,
    edits: dict[str, float] | None = None, checkpoints: dict[str, str | Path] | None = None, quiet: bool = False,
) -> GenerateResult:
    """Make a talking-head video from a face photo (or a video to dub) and speech.

    Args:
        audio: speech file (any format FFmpeg reads; any rate/channels).
        output: the .mp4 to write (h264 + aac); nothing is left there if anything fails.
        image: a face photo; the video shows it talking, with blinks and head motion.
        video: a face video to dub: its head motion and eyes are kept, its mouth follows the speech.
        method: motion method (:func:`talkinghead.registry.available_methods`; default: the first, the engine
            that needs no weights; each method's spec says what it takes).
        fps: output frame rate (for ``video`` too; its frames are time-matched).
        size: longer side of the output in pixels (default 512 for a photo, the video's own up to 1280).
        seed: seed of blinks, head motion and sampled motion.
        still: no generated head motion.
        expression_scale: mouth motion amplitude (1 = calibrated; 0..3).
        pose_from: a video whose head motion (relative to its median pose) replaces generated motion.
        blink: generate eye blinks (default: yes for a photo, no for a video, which keeps its own).
        face_index: which face when there are several, counting from the largest.
        language: "auto", "en" or "other" (phones without a transcript).
        references: reference frames of a renderer that takes them (1..100; default: the renderer's own rule).
        mouth: the warp renderer's mouth interior: "learned" (the default: a small network trained on real mouths
            paints teeth, tongue and cavity) or "painted" (drawn teeth bands, no weights).
        renderer: a renderer the method can draw with (default: the first of its spec's whose checkpoints are
            all at hand).
        style: a video of the speaking style to copy (methods that take a style clip).
        style_intensity: 0 = neutral style, 1 = the style clip's, up to 1.5 exaggerated.
        motion_from: a video whose head motion (and upper face or blinks) drive the photo (generator methods).
        invert_steps: optimisation steps refining the photo's W+ code after the encoder (0..1000).
        edits: attribute edits, name -> strength in standard deviations (-3..3), applied gradually from none at
            the first frame to the full strength at the last (names: the model's edit directions).
        checkpoints: checkpoints by role (the method's and its renderer's) replacing the shipped ones.
        quiet: no progress bars.

    An option the method (and its renderer) does not take is an error, not ignored.
    """
    request = _request(audio=audio, output=output, image=image, video=video, fps=fps, size=size, seed=seed,
                       still=still, expression_scale=expression_scale, pose_from=pose_from, blink=blink,
                       face_index=face_index, language=language, references=references, mouth=mouth, style=style,
                       style_intensity=style_intensity, motion_from=motion_from, invert_steps=invert_steps,
                       edits=edits, checkpoints=checkpoints, quiet=quiet)
    spec, draw = resolve(request, method or available_methods()[0], renderer)
    out = _output(output, request)
    timings: dict[str, float] = {}
    scene = analyse(request, timings, whisper=spec.whisper, prepare=draw.prepare)
    t0 = time.perf_counter()
    performance = spec.motion(request, scene)
    timings["motion"] = time.perf_counter() - t0
    render, waited = [0.0], [0.0]
    t0 = time.perf_counter()
    with bar(scene.n_frames, "render", quiet=quiet) as pb:
        frames = _timed(draw.create().frames(request, scene, performance), render, pb.update)
        with contextlib.closing(ahead(frames, waited=waited)) as made:  # closed at once when the writing stops
            write_video(out, made, fps=fps, audio=scene.speech)
    output_seconds = time.perf_counter() - t0
    # the renderer runs in a background thread while the encoder works: both busy times and their wall time
    timings.update(render=render[0], encode=output_seconds - waited[0], output=output_seconds)
    h, w = scene.clip.frames.shape[1:3]
    features = scene.features
    return GenerateResult(output=out, frames=scene.n_frames, fps=fps, duration=features.duration, size=(w, h),
                          method=spec.name, renderer=draw.name, phoneme_method=features.phonemes.method,
                          transcript=features.phonemes.transcript, faces_found=scene.faces, timings=timings)


def analyse(request: Request, timings: dict[str, float], *, whisper: bool = False,
            prepare: Callable[[Request], object] | None = None) -> Scene:
    """The face (a photo's mesh, or a video's frames tracked) and the speech of a request, the speech in a
    background thread while the face is analysed; adds the seconds of "face_analysis" and "audio_analysis" (which
    overlap) and their wall time "analysis" to ``timings``. ``whisper``: the speech's Whisper encoder features
    too (``features.whisper``). ``prepare(request)`` (a renderer's) runs in a third thread from the moment the
    first of the two is done (a photo's face is found in about a second; a video's tracking takes longer than the
    speech), so that three do not share the two cores at once; its seconds are "prepare".

    The speech analysis's bar is shown once the face is found: a face error comes first and alone."""
    t0 = time.perf_counter()
    speech = load_audio(request.audio)
    done, cancelled = [0.0], threading.Event()
    prepared: list[Background[object]] = []
    starting = threading.Lock()

    def progress(fraction: float) -> None:
        if cancelled.is_set():
            raise _Cancelled
        done[0] = fraction

    def start_preparing() -> None:  # from the thread that finishes first
        with starting:
            if prepare is not None and not prepared:
                prepared.append(Background(lambda: prepare(request), name="talkinghead-prepare"))

    def analyse_speech() -> AudioFeatures:
        features = analyse_audio(speech, fps=request.fps, language=request.language, progress=progress,
                                 whisper=whisper)
        start_preparing()
        return features

    audio = Background(analyse_speech, name="talkinghead-speech")
    try:
        clip, meshes, faces = _face(request, speech.size / SAMPLE_RATE)
        timings["face_analysis"] = time.perf_counter() - t0
        start_preparing()
        with bar(100, "speech analysis", quiet=request.quiet, unit="%") as pb:
            features, timings["audio_analysis"] = audio.result(
                poll=lambda: pb.update(max(0, int(100 * done[0]) - pb.n)))
    except BaseException:  # no face, or stopped: the speech analysis stops too, at its next progress report
        cancelled.set()
        with contextlib.suppress(BaseException):
            audio.result()
        for started in prepared:  # then nothing is left running into the interpreter's exit
            with contextlib.suppress(BaseException):
                started.result()
        raise
    release_models()
    if prepared:
        _, timings["prepare"] = prepared[0].result()
    timings["analysis"] = time.perf_counter() - t0
    src_idx = frame_indices(features.n_frames, request.fps, len(clip.frames), clip.fps)
    return Scene(clip=clip, meshes=meshes, speech=speech, features=features, src_idx=src_idx, faces=faces)


class _Cancelled(Exception):
    """The speech analysis was stopped: the face analysis failed."""


def _face(request: Request, seconds: float) -> tuple[VideoClip, np.ndarray, int]:
    """The request's face: (the photo as a one-frame clip or the frames of the video's first ``seconds`` (the
    speech's length: a longer video is cut there), (T, 478, 3) meshes, faces seen)."""
    if request.image is not None:
        frame = resize_longer(read_image(request.image), request.size or DEFAULT_SIZE)
        mesh, faces = mesh_image(frame, face_index=request.face_index, source=str(request.image))
        if faces > 1 and not request.quiet:
            print(f"talkinghead: {faces} faces in {request.image}; using face {request.face_index} by size "
                  "(largest = 0; --face-index to choose)", file=sys.stderr)
        return VideoClip(frames=frame[None], fps=request.fps, path=str(request.image)), mesh[None], faces
    clip, track = track_video(request.video,  # type: ignore[arg-type]  # not None: one of image, video
                              label="face mesh", max_side=request.size or MAX_VIDEO_SIDE,
                              face_index=request.face_index, seconds=seconds, quiet=request.quiet)
    return clip, track.meshes, 1


def _request(*, audio: str | Path, output: str | Path, image: str | Path | None, video: str | Path | None,
             pose_from: str | Path | None, style: str | Path | None, motion_from: str | Path | None,
             edits: dict[str, float] | None, checkpoints: dict[str, str | Path] | None, **options: object
             ) -> Request:
    """The request, with the checks every method shares: one face source, ranges, files that exist."""
    if (image is None) == (video is None):
        raise TalkingHeadError("give exactly one of image or video")
    check_ranges(**{k: options[k] for k in RANGES})  # type: ignore[misc]
    if options["mouth"] is not None and options["mouth"] not in MOUTHS:
        raise TalkingHeadError(f"mouth must be one of {', '.join(MOUTHS)}, not {options['mouth']!r}")
    paths = {k: None if p is None else Path(p) for k, p in
             (("audio", audio), ("image", image), ("video", video), ("pose_from", pose_from), ("style", style),
              ("motion_from", motion_from))}
    ckpts = {role: require_checkpoint(p) for role, p in (checkpoints or {}).items()}
    for p in paths.values():
        if p is not None:
            require_file(p)
    for option in ("pose_from", "style", "motion_from"):
        if paths[option] is not None:
            require_video(paths[option], option="--" + option.replace("_", "-"))  # type: ignore[arg-type]
    return Request(**paths, edits=dict(edits or {}), checkpoints=ckpts, **options)  # type: ignore[arg-type]


def _output(output: str | Path, request: Request) -> Path:
    """The output, checked before any work: an .mp4 that can be written there and is none of the inputs."""
    inputs = {f"--{k.replace('_', '-')}": getattr(request, k) for k in ("audio", "image", "video", "pose_from",
                                                                        "style", "motion_from")}
    out = require_writable_output(output, inputs={**inputs, **{f"--checkpoint {r}": p
                                                               for r, p in request.checkpoints.items()}})
    if out.suffix.lower() != ".mp4":
        raise InputError(out, "output must be an .mp4 file")
    return out


def _timed(frames: Iterator[np.ndarray], seconds: list[float], done: Callable[[int], object]
           ) -> Iterator[np.ndarray]:
    """The frames of ``frames``; adds the time spent making them to ``seconds[0]`` and calls ``done(1)`` after
    each."""
    while True:
        start = time.perf_counter()
        frame = next(frames, None)
        seconds[0] += time.perf_counter() - start
        if frame is None:
            return
        done(1)
        yield frame
