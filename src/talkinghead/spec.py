"""What a method family declares, and what flows through :func:`talkinghead.api.generate`:

    Request (what was asked) -> Scene (the analysed face + speech) -> MethodSpec.motion -> Performance
    -> Renderer.frames -> full frames -> encode

A family declares one :class:`MethodSpec` in its own package (``motion/<family>/method.py``); a renderer one
:class:`RendererSpec` (``render/<name>/spec.py``). :mod:`talkinghead.registry` collects them; the CLI, the
Python API, the web page, the evaluation protocol and the streaming API read them and name no family.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from talkinghead.constants import MAX_FACES, MAX_SEED
from talkinghead.errors import TalkingHeadError

if TYPE_CHECKING:
    from talkinghead.audio.features import AudioFeatures
    from talkinghead.io.video import VideoClip

OPTIONS: dict[str, Any] = {
    "still": False, "expression_scale": 1.0, "pose_from": None, "blink": None, "style": None,
    "style_intensity": 1.0, "motion_from": None, "invert_steps": 0, "edits": {}, "references": None,
    "mouth": None,
}
"""The options a method (or its renderer) takes or refuses, with their unset values: a refused option given a
value other than this is an error naming the methods that take it."""

MOUTHS = ("learned", "painted")
"""Values of the ``mouth`` option (the warp renderer's mouth interior); unset means the first."""


RANGES: dict[str, tuple[float, float, str]] = {
    "fps": (1, 120, ""), "size": (64, 4096, " pixels"), "references": (1, 100, ""), "seed": (0, MAX_SEED, ""),
    "face_index": (0, MAX_FACES - 1, ""), "expression_scale": (0, 3, ""), "style_intensity": (0, 1.5, ""),
    "invert_steps": (0, 1000, ""),
}
"""Allowed values of the numeric options (low, high, unit), checked the same by generate() and streaming."""


def check_ranges(**values: float | None) -> None:
    """A one-line error for the first option (of :data:`RANGES`) outside its range; None means unset."""
    for name, value in values.items():
        low, high, unit = RANGES[name]
        if value is not None and not low <= value <= high:
            raise TalkingHeadError(f"{name.replace('_', ' ')} must be between {low} and {high}{unit}, not {value}")


def parse_edit(text: str) -> tuple[str, float]:
    """``NAME=STRENGTH`` (e.g. ``smile=+1.0``) -> (name, strength); a one-line error otherwise."""
    name, sep, value = text.partition("=")
    try:
        if not (sep and name.strip()):
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise TalkingHeadError(f"an edit is NAME=STRENGTH (e.g. smile=+1.0), not {text.strip()!r}") from None


@dataclass(frozen=True)
class Request:
    """Everything :func:`talkinghead.api.generate` was asked (see its arguments), with files as paths."""

    audio: Path
    image: Path | None
    video: Path | None
    fps: float
    size: int | None
    face_index: int
    language: str
    seed: int
    still: bool
    expression_scale: float
    pose_from: Path | None
    blink: bool | None
    references: int | None
    mouth: str | None
    style: Path | None
    style_intensity: float
    motion_from: Path | None
    invert_steps: int
    edits: dict[str, float]
    checkpoints: dict[str, Path]
    quiet: bool

    def given(self) -> set[str]:
        """The :data:`OPTIONS` set to something other than their unset value."""
        return {name for name, unset in OPTIONS.items() if getattr(self, name) != unset}


@dataclass
class Scene:
    """The analysed inputs every method starts from.

    Attributes:
        clip: the reference frames (N, H, W, 3) uint8 RGB at the working size: a photo is one frame.
        meshes: (N, 478, 3) float32 pixel mesh of the face in every reference frame.
        speech: (S,) float32 mono speech at SAMPLE_RATE.
        features: the speech analysed at the output frame rate (T = ``features.n_frames`` output frames).
        src_idx: (T,) int64 reference frame each output frame is timed to (all 0 for a photo).
        faces: faces seen in a photo (the largest, or ``face_index``, is used); 1 for a video.
    """

    clip: VideoClip
    meshes: np.ndarray
    speech: np.ndarray
    features: AudioFeatures
    src_idx: np.ndarray
    faces: int

    @property
    def is_photo(self) -> bool:
        return len(self.clip.frames) == 1

    @property
    def n_frames(self) -> int:
        return self.features.n_frames


LipPredictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(points (T, P, 2) renderer-crop landmarks of every output frame, reference frame indices (R,)) -> (T, C, 2) lip
and jaw landmarks predicted from the speech it was made for (IP_LAP's landmark generator)."""


@dataclass
class Performance:
    """What a method hands its renderer: one of target meshes or generated face crops.

    Attributes:
        targets: (T, 478, 3) float32 pixel mesh of every output frame (the reference frame it is timed to is
            ``scene.src_idx[t]``).
        keep_frames: the reference frames are drawn as they are (not warped to ``targets``): the renderer only
            redraws the mouth.
        lips: the renderer draws lips and jaw predicted from the speech instead of those of ``targets``.
        crops: (M, S, S, 3) uint8 RGB generated face crops at DATA_FPS, to paste back into the photo.
        crop_meshes: (M, 478, 3) float32 pixel meshes of the photo's face as each crop draws it moved (mesh-flow
            StyleHEAT), or None (the face drawn where the photo has it): the photo around the face is warped to them
            and each crop's face is pasted where it moved.
    """

    targets: np.ndarray | None = None
    keep_frames: bool = False
    lips: LipPredictor | None = None
    crops: np.ndarray | None = None
    crop_meshes: np.ndarray | None = None


class Renderer(Protocol):
    """Draws the output frames of a performance, pasted back into the full frames."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        """The T output frames, (H, W, 3) uint8 RGB each, in order (a generator: frames are made as they are
        taken)."""
        ...


@dataclass(frozen=True)
class CheckpointRole:
    """A checkpoint a method or renderer loads: ``--checkpoint NAME=PATH`` replaces the shipped one; a role
    whose weights do not ship must be given."""

    name: str
    help: str
    shipped: bool = True


@dataclass(frozen=True)
class Command:
    """A ``talkinghead`` subcommand a family brings (training, fitting): its arguments and what it runs."""

    description: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class CommandRef:
    """A family's subcommand as the CLI lists it: its name, one line of help, and "module:ATTRIBUTE" of its
    :class:`Command`, imported only when the command runs (training code imports Lightning)."""

    name: str
    help: str
    target: str


@dataclass(frozen=True)
class RendererSpec:
    """A renderer.

    Attributes:
        name: its ``--renderer`` name.
        summary: one line for help texts.
        create: makes the renderer (cheap: weights load when it draws).
        checkpoints: roles it loads.
        options: :data:`OPTIONS` it takes.
        needs_video: it draws only a video's frames (it was trained on that person).
        commands: its subcommands (training).
        prepare: loads ahead what drawing a request will need (modules, shipped weights);
            :func:`talkinghead.api.generate` runs it in a background thread while the face and speech are analysed.
    """

    name: str
    summary: str
    create: Callable[[], Renderer]
    checkpoints: tuple[CheckpointRole, ...] = ()
    options: frozenset[str] = frozenset()
    needs_video: bool = False
    commands: tuple[CommandRef, ...] = ()
    prepare: Callable[[Request], object] | None = None


@dataclass(frozen=True)
class MethodSpec:
    """A motion method (one family).

    Attributes:
        name: its ``--method`` name.
        title: a few words for the web page's list.
        summary: one sentence for help texts.
        motion: (request, scene) -> the performance its renderer draws.
        photo, video: it animates a photo / dubs a video.
        options: :data:`OPTIONS` it takes (its renderer's are added).
        checkpoints: roles it loads.
        renderers: the renderers it can draw with; the default is the first whose checkpoints without a shipped
            default were all given.
        streams: :class:`talkinghead.streaming.Generator` can run it on speech as it arrives.
        self_driven: the reconstruction protocol fills these options with the clip itself (a method evaluated on
            its own style or motion, as its paper does).
        check: raises a one-line error for a request it cannot serve (run before any work).
        commands: its subcommands (training, fitting).
        whisper: its motion reads the speech's Whisper encoder features (``scene.features.whisper``, the third
            block: the default engine's speech map and the shipped learned models' ``whisper3``): the speech
            analysis computes them while it aligns, on the core Whisper frees once it has transcribed (a
            checkpoint of another speech kind, or a model run at another frame rate than the output's, leaves them
            unread: :meth:`AudioFeatures.whisper_of`).
    """

    name: str
    title: str
    summary: str
    motion: Callable[[Request, Scene], Performance]
    photo: bool = True
    video: bool = False
    options: frozenset[str] = frozenset()
    checkpoints: tuple[CheckpointRole, ...] = ()
    renderers: tuple[str, ...] = ("warp",)
    streams: bool = False
    self_driven: tuple[str, ...] = ()
    check: Callable[[Request], None] | None = None
    commands: tuple[CommandRef, ...] = ()
    whisper: bool = False
