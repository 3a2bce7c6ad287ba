"""PyTorch datasets over preprocessed clips (see :mod:`talkinghead.data.clip`).

Every dataset is deterministic: item ``i`` draws its random choices from ``default_rng([seed, i])``.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from talkinghead.audio.mel import IPLAP, STYLETALKER, mel_windows
from talkinghead.audio.posteriorgram import phone_posteriorgram
from talkinghead.audio.speech import frame_vectors, inputs_of
from talkinghead.audio.whisper_encoder import KIND_BLOCKS, kind_features
from talkinghead.constants import CROP_SIZE, DATA_FPS, SAMPLE_RATE
from talkinghead.data.clip import ClipData, clip_dir, encode_frames, list_clips, load_clip, save_clip
from talkinghead.data.layouts import speaker_key
from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.face import indices as ix
from talkinghead.face.pose import with_head_motion
from talkinghead.motion.styletalk.config import StyleTalkConfig
from talkinghead.motion.styletalk.model import content_inputs
from talkinghead.progress import bar
from talkinghead.sync.inputs import clip_visual, visual_tensor
from talkinghead.sync.model import SyncNetConfig

MEL_PER_FRAME = int(round(STYLETALKER.rate / DATA_FPS))
"""StyleTalker mel frames per video frame (4 at 100 frames/s and 25 fps)."""
SAMPLES_PER_FRAME = int(round(SAMPLE_RATE / DATA_FPS))


def speaker_folds(dataset: Path, folds: int) -> list[frozenset[tuple[Path, str]]]:
    """The dataset's training clips, (folder, clip id) pairs, dealt into ``folds`` folds by speaker: clips of one
    :func:`~talkinghead.data.layouts.speaker_key` share a fold; the speakers, sorted, are dealt in turn."""
    root, speakers = Path(dataset), {}
    for clip_id in list_clips(root, "train"):
        speakers.setdefault(speaker_key(clip_id), []).append((root, clip_id))
    if folds < 2 or len(speakers) < folds:
        raise TalkingHeadError(f"folds: 2 or more, and no more than the speakers in the training split of {root} "
                               f"({len(speakers)}), not {folds}")
    dealt: list[set[tuple[Path, str]]] = [set() for _ in range(folds)]
    for i, speaker in enumerate(sorted(speakers)):
        dealt[i % folds].update(speakers[speaker])
    return [frozenset(fold) for fold in dealt]


def held_out_clips(datasets: list[Path], hold_out: tuple[int, int] | None) -> frozenset[tuple[Path, str]]:
    """The clips a training run on ``datasets`` with ``hold_out`` (fold, folds) leaves out: that fold of the first
    dataset's :func:`speaker_folds` (none without it). Only the first dataset is dealt, so that the held-out clips
    are real speakers of one corpus (``train/``) whichever corpora (a synthetic one) train beside it."""
    return frozenset() if hold_out is None else speaker_folds(Path(datasets[0]), hold_out[1])[hold_out[0]]


def held_out_paths(held_out: frozenset[tuple[Path, str]]) -> list[str]:
    """The clip folders of :func:`held_out_clips`, sorted, as a checkpoint lists them (``held_out``) for the held-out
    benchmark (``benchmarks/heldout.py``) to load."""
    return [str(clip_dir(root, clip_id)) for root, clip_id in sorted(held_out)]


class ClipStore:
    """Clip lookup over one or more dataset folders (their ``split``, less the clips in ``exclude``: (folder, clip
    id) pairs) with an in-memory cache of ``cache`` clips (None: all); the arrays named in ``drop`` are emptied as
    clips are loaded (their frames, meshes: most of a clip's memory)."""

    def __init__(self, roots: list[Path] | Path, split: str | None, *, cache: int | None = 16,
                 drop: tuple[str, ...] = (), exclude: frozenset[tuple[Path, str]] = frozenset()) -> None:
        roots = [roots] if isinstance(roots, Path) else [Path(r) for r in roots]
        for root in roots:
            if not (root / "clips").is_dir():
                raise InputError(root, "not a preprocessed dataset folder (run talkinghead preprocess first)")
        self.keys = [(r, cid) for r in roots for cid in list_clips(r, split) if (r, cid) not in exclude]
        self._cache: OrderedDict[tuple[Path, str], ClipData] = OrderedDict()
        self._size, self._drop = cache, drop

    def __len__(self) -> int:
        return len(self.keys)

    def clip(self, k: int) -> ClipData:
        key = self.keys[k]
        if key not in self._cache:
            clip = load_clip(clip_dir(*key))
            for name in self._drop:
                setattr(clip, name, np.empty((0,), getattr(clip, name).dtype))
            self._cache[key] = clip
            if self._size is not None and len(self._cache) > self._size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]

    def lengths(self) -> list[int]:
        """Frames per clip (read from meta, without loading arrays)."""
        import json

        return [json.loads((clip_dir(r, c) / "meta.json").read_text())["frames"] for r, c in self.keys]

    def metas(self) -> list[dict]:
        """Every clip's meta.json (without loading arrays)."""
        import json

        return [json.loads((clip_dir(r, c) / "meta.json").read_text()) for r, c in self.keys]


LIPS_BOX_MARGIN = 0.25
""":func:`lips_box` grows the lips' bounding box by this fraction of the mouth's width on every side."""


def lips_box(mesh: np.ndarray, size: int) -> np.ndarray:
    """(x0, y0, x1, y1) float32 in 0..1 of a ``size`` crop: the bounding box of the lips of a (478, >=2) crop-pixel
    mesh, grown by :data:`LIPS_BOX_MARGIN` of the mouth's width (the lips, teeth and the chin's crease). Wider than
    the evaluation's mouth box (:func:`talkinghead.metrics.evaluate.mouth_box`, the inner lips): training asks the
    lips themselves to follow the codes."""
    lips = np.asarray(mesh, np.float64)[ix.LIPS_ALL, :2]
    lo, hi = lips.min(0), lips.max(0)
    grow = LIPS_BOX_MARGIN * (hi[0] - lo[0])
    return np.clip(np.concatenate([lo - grow, hi + grow]) / size, 0.0, 1.0).astype(np.float32)


class CropDataset(Dataset):
    """Every frame of the clips as a single face crop, for the style-based generator, its encoder and the
    identity student. Keys: image (3, size, size) float in [-1, 1]; identity (128,) the clip's dlib embedding
    (NaN where dlib found no face); mouth (4,) the image's mouth box (:func:`lips_box`); with ``pairs`` also source
    (3, size, size), another frame of the same clip drawn uniformly (seeded per item), the reference of the feature
    path's cross-frame reconstruction. All clips stay cached (the crops are JPEG in memory)."""

    def __init__(self, roots: list[Path] | Path, split: str | None = "train", *, size: int = 128,
                 pairs: bool = False, seed: int = 0) -> None:
        self.store = ClipStore(roots, split, cache=1 << 30)
        self.index = [(k, t) for k, n in enumerate(self.store.lengths()) for t in range(n)]
        self.size, self.pairs, self.seed = size, pairs, seed

    def __len__(self) -> int:
        return len(self.index)

    def _crop(self, clip: ClipData, t: int) -> torch.Tensor:
        image = clip.frames([t])[0]
        if image.shape[0] != self.size:
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(127.5).sub(1.0)

    def __getitem__(self, i: int) -> dict:
        k, t = self.index[i]
        clip = self.store.clip(k)
        item = {"image": self._crop(clip, t), "mouth": torch.from_numpy(lips_box(clip.meshes[t], CROP_SIZE)),
                "identity": torch.from_numpy(clip.identity_embedding.astype(np.float32))}
        if self.pairs:
            item["source"] = self._crop(clip, int(np.random.default_rng([self.seed, i]).integers(clip.n_frames)))
        return item


CROP_ARRAYS = ("jpeg", "offsets", "meshes", "neutral", "identity_embedding")
"""The arrays of a clip that :class:`CropDataset` reads (``neutral`` only because loading a clip needs one)."""


def crop_corpus(src: Path, dst: Path, *, every: int = 1, size: int = 128, quiet: bool = False) -> int:
    """A small copy of the preprocessed dataset ``src`` in ``dst`` holding only what :class:`CropDataset` reads,
    to move to a training machine (``train/``: 1.1 GB -> 47 MB at ``every`` 4, ``size`` 128): every ``every``-th frame
    of each clip, its crop resized to ``size`` px as CropDataset resizes it and JPEG-encoded again, the mesh float16
    with its lip points alone (what :func:`lips_box` reads), the other arrays empty, each clip a compressed npz under
    its own id and split. Returns the frames written."""
    if every < 1 or size < 8:
        raise TalkingHeadError(f"crop corpus: every must be at least 1 and size at least 8 (got {every}, {size})")
    clips = list_clips(src)
    if not clips:
        raise InputError(src, "not a preprocessed dataset folder (run talkinghead preprocess first)")
    if dst.resolve() == src.resolve():
        raise InputError(dst, "the copy must go to another folder")
    frames = 0
    with bar(len(clips), "crop corpus", quiet=quiet, unit="clip") as pb:
        for cid in clips:
            clip = load_clip(clip_dir(src, cid))
            keep = np.arange(0, clip.n_frames, every)
            jpeg, offsets = encode_frames([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
                                           for f in clip.frames(keep)])
            meshes = np.zeros((len(keep), *clip.meshes.shape[1:]), np.float16)
            meshes[:, ix.LIPS_ALL] = clip.meshes[keep][:, ix.LIPS_ALL]
            empty = {k: np.empty((0,), getattr(clip, k).dtype) for k in ClipData.ARRAYS
                     if k not in CROP_ARRAYS and getattr(clip, k) is not None}
            save_clip(dst, dataclasses.replace(clip, **empty, jpeg=jpeg, offsets=offsets, meshes=meshes,
                                               meta={**clip.meta, "crop_corpus": {"every": every, "size": size}}),
                      compressed=True)
            frames += len(keep)
            pb.update()
    if (src / "splits").is_dir():
        shutil.copytree(src / "splits", dst / "splits", dirs_exist_ok=True)
    return frames


def iplap_windows(clip: ClipData, start: int, length: int) -> np.ndarray:
    """(length, 16, 80) IP_LAP mel windows for frames start..start+length (Wav2Lip indexing)."""
    return mel_windows(clip.mel_iplap, IPLAP, fps=DATA_FPS, n_frames=length, first=start)


class _Windows(Dataset):
    """Items are (clip, start frame) windows; each item gets its own seeded generator."""

    def __init__(self, roots: list[Path] | Path, split: str | None, *, length: int, stride: int, seed: int,
                 cache: int | None = 16, drop: tuple[str, ...] = (),
                 exclude: frozenset[tuple[Path, str]] = frozenset()) -> None:
        self.store = ClipStore(roots, split, cache=cache, drop=drop, exclude=exclude)
        self.seed = seed
        self.index = [(k, s) for k, n in enumerate(self.store.lengths()) for s in range(0, n - length + 1, stride)]

    def __len__(self) -> int:
        return len(self.index)

    def _open(self, i: int) -> tuple[ClipData, int, np.random.Generator]:
        k, s = self.index[i]
        return self.store.clip(k), s, np.random.default_rng([self.seed, i])


class WindowDataset(_Windows):
    """Windows of ``window`` consecutive frames with everything aligned per frame.

    Item keys (T = window): frames (T, 3, 256, 256) float in [0, 1] (if ``frames``), references
    (R, 3, 256, 256) other frames of the same clip (R = ``references``), expression (T, K),
    rotation (T, 3, 3), translation (T, 3), scale (T,), canonical (T, 478, 3), blink (T,),
    phone_ids (T,), loudness_db (T,), voiced (T,), mel_iplap (T, 16, 80), mel_styletalker (T, 4, 80),
    audio (T * 640,) float in [-1, 1], plus clip_id, speaker and start; with ``speech`` (a kind of
    :data:`talkinghead.audio.speech.SPEECH_INPUTS`) also speech (T, *input_shape(speech)) (:func:`clip_speech_inputs`).
    """

    def __init__(self, roots: list[Path] | Path, split: str | None = "train", *, window: int = 5,
                 stride: int | None = None, references: int = 0, frames: bool = True, speech: str | None = None,
                 seed: int = 0) -> None:
        super().__init__(roots, split, length=window, stride=stride or window, seed=seed)
        self.window, self.references, self.with_frames, self.speech = window, references, frames, speech
        self._speech: dict[int, np.ndarray] = {}  # per clip, made once

    def __getitem__(self, i: int) -> dict:
        clip, s, rng = self._open(i)
        sl = slice(s, s + self.window)
        mel_st = clip.mel_styletalker
        st_idx = np.minimum(np.arange(s * MEL_PER_FRAME, (s + self.window) * MEL_PER_FRAME), len(mel_st) - 1)
        audio = clip.audio[s * SAMPLES_PER_FRAME:(s + self.window) * SAMPLES_PER_FRAME].astype(np.float32) / 32767
        audio = np.pad(audio, (0, self.window * SAMPLES_PER_FRAME - audio.size))
        item = {
            "clip_id": clip.clip_id, "speaker": clip.speaker, "start": s,
            "expression": torch.from_numpy(clip.expression[sl]),
            "rotation": torch.from_numpy(clip.rotation[sl]), "translation": torch.from_numpy(clip.translation[sl]),
            "scale": torch.from_numpy(clip.scale[sl]), "canonical": torch.from_numpy(clip.canonical[sl]),
            "blink": torch.from_numpy(clip.blink[sl]), "phone_ids": torch.from_numpy(clip.phone_ids[sl]),
            "loudness_db": torch.from_numpy(clip.loudness_db[sl]), "voiced": torch.from_numpy(clip.voiced[sl]),
            "mel_iplap": torch.from_numpy(iplap_windows(clip, s, self.window)),
            "mel_styletalker": torch.from_numpy(mel_st[st_idx].reshape(self.window, MEL_PER_FRAME, -1)),
            "audio": torch.from_numpy(audio),
        }
        if self.speech is not None:
            k = self.index[i][0]
            if k not in self._speech:
                self._speech[k] = clip_speech_inputs(self.speech, clip)
            item["speech"] = torch.from_numpy(self._speech[k][sl])
        if self.with_frames:
            item["frames"] = visual_tensor(clip.frames(range(s, s + self.window)))
        if self.references:
            outside = np.setdiff1d(np.arange(clip.n_frames), np.arange(s, s + self.window))
            pick = rng.choice(outside if len(outside) else np.arange(clip.n_frames), self.references,
                              replace=len(outside) < self.references)
            item["references"] = visual_tensor(clip.frames(pick))
        return item


class SyncDataset(_Windows):
    """SyncNet items: a window of ``config.frames`` visual inputs (see :mod:`talkinghead.sync.inputs`) and
    1 + K audio windows of 0.2 s (mel windows with IP_LAP settings, or ``config.speech``'s inputs): index 0 in sync,
    the K others from the same clip shifted by at least ``min_offset`` frames. Keys: visual (frames, 3, h, w) or
    (frames, D), mels (1 + K, 16, 80) (or (1 + K, *input_shape(config.speech))), offsets (1 + K,).

    Every clip's visual inputs and mel windows are computed once and kept in memory (a few hundred
    MB for hours of 64x128 mouth crops). With ``train`` the shifts are drawn anew each time (otherwise
    they are fixed per item, for validation). With ``augment`` (training only) the item is augmented:
    visual: mesh motion scaled by 0.75..1.25 plus 0.03 noise, or crops mirrored and brightened by
    0.8..1.2; audio (mel windows only): every window of the item raised by the same -0.5..0.5.
    """

    def __init__(self, roots: list[Path] | Path, split: str | None = "train", *, config: SyncNetConfig,
                 negatives: int = 4, min_offset: int = 5, train: bool = False, augment: bool = False,
                 seed: int = 0) -> None:
        super().__init__(roots, split, length=config.frames, stride=1, seed=seed)
        self.config, self.negatives, self.min_offset = config, negatives, min_offset
        self.train, self.augment = train, train and augment
        self._calls = 0
        self._inputs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def clip_inputs(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(visual, mel windows) of every frame of clip ``k``."""
        if k not in self._inputs:
            clip = self.store.clip(k)
            self._inputs[k] = (clip_visual(clip, self.config), clip_speech_inputs(self.config.speech, clip))
        return self._inputs[k]

    def __getitem__(self, i: int) -> dict:
        k, s = self.index[i]
        self._calls += 1  # training: new draws at every visit of the item
        rng = np.random.default_rng([self.seed, i] + ([self._calls] if self.train else []))
        visual, mels = self.clip_inputs(k)
        n, f = len(mels), self.config.frames
        choices = np.array([t - s for t in range(n - f + 1) if abs(t - s) >= self.min_offset], int)
        shifts = rng.choice(choices, self.negatives, replace=len(choices) < self.negatives) if len(choices) else \
            np.zeros(self.negatives, int)
        offsets = np.concatenate([[0], shifts]).astype(np.int64)
        x, m = visual_tensor(visual[s:s + f]), torch.from_numpy(mels[s + offsets])
        if self.augment:
            x, m = _augment(x, m, rng, mel=self.config.speech == "mel")
        return {"visual": x, "mels": m, "offsets": torch.from_numpy(offsets)}


def _augment(visual: torch.Tensor, mels: torch.Tensor, rng: np.random.Generator, *, mel: bool = True
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """SyncNet training augmentation (see :class:`SyncDataset`); the audio level is shifted only for ``mel``
    windows."""
    if visual.ndim == 2:  # mesh stream
        noise = torch.from_numpy(rng.normal(0.0, 0.03, visual.shape).astype(np.float32))
        visual = visual * float(rng.uniform(0.75, 1.25)) + noise
    else:
        if rng.random() < 0.5:
            visual = visual.flip(-1)
        visual = (visual * float(rng.uniform(0.8, 1.2))).clamp_(0.0, 1.0)
    shift = float(rng.uniform(-0.5, 0.5))
    return visual, mels + shift if mel else mels


def style_class(meta: dict) -> str:
    """A clip's speaking-style class: its synthetic style label, else its speaker with its emotion label
    (StyleTalk's speaker-emotion classes), else its speaker."""
    labels = meta.get("labels", {})
    if "style" in labels:
        return str(labels["style"])
    return f"{meta['speaker']}/{labels['emotion']}" if "emotion" in labels else str(meta["speaker"])


class StyleDataset(_Windows):
    """StyleTalk items: a window of ``window`` frames of a clip, and style clips of up to ``style_length``
    frames (random segments, zero-padded): ``style`` from another clip of the same style class (else
    another part of the same clip), and for the triplet loss with ``style`` as the anchor, ``positive``
    another clip of that class spoken by another speaker and ``negative`` a clip of another class spoken
    by the anchor's speaker (each from any speaker when there is none such): the style code is asked to carry
    the style, not the face (our addition; StyleTalk draws them by style class only; alone it left held-out
    style accuracy on the synthetic corpus where it was, 80.0 % vs 81.3 %, together with the offsets below
    82.7 %).

    A speaker is a speaker name within one dataset folder: a synthetic face made from a real clip's first frame
    is not that clip's speaker.

    With ``face_offsets`` (training; our addition) every style clip of a speaker recorded in several style
    classes (a synthetic face) gets another such speaker's face offset in place of its own: a speaker's offset is
    the mean of its clips' coefficients minus the mean over those speakers. A face's own proportions shift all
    its coefficients alike (its rest shape is the photo's mesh), and on the synthetic corpus removing that shift
    lifts nearest-neighbour style classification of new faces from plain coefficient statistics from 71 % to
    93 %; swapping it teaches the style encoder to ignore it.

    With ``head_motion`` a style clip's rows also carry its head motion (:func:`talkinghead.face.pose.head_motion`
    of the segment, 3 values after the K coefficients; StyleTalk's ``style_head_motion``).

    Keys: expression (N, K), speech (N, 2w + 1) int64 phone ids (``w`` = ``phone_window``), or with ``speech``
    whisper or mel (N, 2w + 1, S) frame rows (:func:`talkinghead.motion.styletalk.model.content_inputs`), mels
    (N, 16, 80) IP_LAP windows, style / positive / negative (L, K; K + 3 with ``head_motion``) with *_padding (L,)
    bool (True = padding), label (style class index into :attr:`classes`), clip_id. With ``train`` the choices are
    drawn anew at every visit.
    """

    def __init__(self, roots: list[Path] | Path, split: str | None = "train", *, window: int = 32,
                 style_length: int = 64, phone_window: int = 5, speech: str = "phones", train: bool = False,
                 face_offsets: bool = False, head_motion: bool = False, seed: int = 0,
                 exclude: frozenset[tuple[Path, str]] = frozenset()) -> None:
        # every item reads segments of three other clips drawn at random: all clips stay in memory, without their
        # frames and meshes (0.3 GB for synth + train/ + multilingual/, 1.6 GB with them; with a 16-clip cache a batch
        # re-read about 30 clip files)
        super().__init__(roots, split, length=window, stride=max(window // 4, 1) if train else window, seed=seed,
                         cache=None, drop=("jpeg", "meshes", "canonical"), exclude=exclude)
        self.window, self.style_length, self.phone_window, self.train = window, style_length, phone_window, train
        self.content = StyleTalkConfig(window=phone_window, speech=speech)
        self._rows: dict[int, np.ndarray] = {}  # frame rows per clip (whisper, mel), made once
        self.head_motion = head_motion
        self.labels = [style_class(m) for m in self.store.metas()]
        self.speakers = [f"{root}/{m['speaker']}" for (root, _), m in zip(self.store.keys, self.store.metas())]
        self.classes = sorted(set(self.labels))
        self.by_class: dict[str, list[int]] = {}
        for k, label in enumerate(self.labels):
            self.by_class.setdefault(label, []).append(k)
        self.offsets = self.face_offsets() if face_offsets else {}
        self._calls = 0

    def face_offsets(self) -> dict[str, np.ndarray]:
        """(K,) face offset of every speaker recorded in several style classes (see the class)."""
        classes: dict[str, set[str]] = {}
        for speaker, label in zip(self.speakers, self.labels):
            classes.setdefault(speaker, set()).add(label)
        means = {sp: np.mean([self.store.clip(k).expression.mean(0) for k, other in enumerate(self.speakers)
                              if other == sp], 0) for sp, labels in classes.items() if len(labels) > 1}
        centre = np.mean(list(means.values()), 0) if means else 0.0
        return {sp: (m - centre).astype(np.float32) for sp, m in means.items()}

    def triplet_clips(self, anchor: int, rng: np.random.Generator) -> tuple[int, int]:
        """(positive, negative) clips of the triplet whose anchor is clip ``anchor`` (see the class)."""
        label, speaker = self.labels[anchor], self.speakers[anchor]
        same = [j for j in self.by_class[label] if j != anchor] or [anchor]
        other = [j for j in range(len(self.labels)) if self.labels[j] != label] or [anchor]
        positive = [j for j in same if self.speakers[j] != speaker] or same
        negative = [j for j in other if self.speakers[j] == speaker] or other
        return int(rng.choice(positive)), int(rng.choice(negative))

    def _segment_range(self, k: int, rng: np.random.Generator, avoid: tuple[int, int] | None = None
                       ) -> tuple[int, int]:
        """(start, length) of a random segment of clip ``k`` of up to ``style_length`` frames (outside frames
        ``avoid`` when it can)."""
        n = self.store.clip(k).n_frames
        length = min(self.style_length, n)
        starts = np.arange(n - length + 1)
        if avoid is not None:
            apart = starts[(starts + length <= avoid[0]) | (starts >= avoid[1])]
            starts = apart if len(apart) else starts
        return int(rng.choice(starts)), length

    def _padded(self, rows: np.ndarray, start: int, length: int) -> torch.Tensor:
        """rows[start:start + length] zero-padded to (style_length, D)."""
        out = np.zeros((self.style_length, rows.shape[1]), np.float32)
        out[:length] = rows[start:start + length]
        return torch.from_numpy(out)

    def _segment(self, k: int, rng: np.random.Generator, avoid: tuple[int, int] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """A random segment of clip ``k``'s coefficients (see :meth:`_segment_range`), padded (with another face's
        offset when :attr:`offsets` has the speaker), and its padding."""
        start, length = self._segment_range(k, rng, avoid)
        clip, frames = self.store.clip(k), slice(start, start + length)
        segment = clip.expression[frames]
        if self.head_motion:
            segment = with_head_motion(segment, clip.rotation[frames])
        rows = self._padded(segment, 0, length)
        if (own := self.offsets.get(self.speakers[k])) is not None:
            other = self.offsets[sorted(self.offsets)[int(rng.integers(len(self.offsets)))]]
            rows[:length, :own.size] += torch.from_numpy(other - own)
        return rows, torch.arange(self.style_length) >= length

    def __getitem__(self, i: int) -> dict:
        k, s = self.index[i]
        self._calls += 1
        rng = np.random.default_rng([self.seed, i] + ([self._calls] if self.train else []))
        clip = self.store.clip(k)
        label = self.labels[k]
        same = [j for j in self.by_class[label] if j != k]
        style_k = int(rng.choice(same)) if same else k
        style, style_pad = self._segment(style_k, rng, (s, s + self.window) if style_k == k else None)
        positive_k, negative_k = self.triplet_clips(style_k, rng)
        positive, positive_pad = self._segment(positive_k, rng)
        negative, negative_pad = self._segment(negative_k, rng)
        sl = slice(s, s + self.window)
        if self.content.speech != "phones" and k not in self._rows:
            self._rows[k] = clip_frame_vectors(self.content.speech, clip)
        speech = content_inputs(self.content, clip.phone_ids, self._rows.get(k), s, self.window)
        return {"expression": torch.from_numpy(clip.expression[sl]), "speech": torch.from_numpy(speech),
                "mels": torch.from_numpy(iplap_windows(clip, s, self.window)),
                "style": style, "style_padding": style_pad, "positive": positive, "positive_padding": positive_pad,
                "negative": negative, "negative_padding": negative_pad,
                "label": self.classes.index(label), "clip_id": clip.clip_id}


def clip_speech(clip: ClipData, kind: str) -> np.ndarray:
    """(T, S) VAST speech features of a clip: its phone posteriorgram, or Whisper encoder features of a kind of
    :data:`talkinghead.audio.whisper_encoder.KIND_BLOCKS` (those preprocessing stored, else computed now)."""
    if kind == "ppg":
        return phone_posteriorgram(clip.phones, clip.phone_starts, clip.phone_ends, fps=DATA_FPS,
                                   n_frames=clip.n_frames)
    stored = clip.whisper if kind == "whisper" else clip.whisper3 if kind == "whisper3" else None
    if stored is not None:
        return stored.astype(np.float32)
    return kind_features(kind, clip.audio.astype(np.float32) / 32767, fps=DATA_FPS, n_frames=clip.n_frames)


def clip_frame_vectors(kind: str, clip: ClipData) -> np.ndarray:
    """:func:`talkinghead.audio.speech.frame_vectors` of a preprocessed clip (its stored mel windows and Whisper
    features when there)."""
    if kind == "mel":
        return iplap_windows(clip, 0, clip.n_frames).reshape(clip.n_frames, -1)
    return frame_vectors(kind, audio=clip.audio.astype(np.float32) / 32767, phone_ids=clip.phone_ids, fps=DATA_FPS,
                         n_frames=clip.n_frames, whisper=clip_speech(clip, kind) if kind in KIND_BLOCKS else None)


def clip_speech_inputs(kind: str, clip: ClipData) -> np.ndarray:
    """:func:`talkinghead.audio.speech.speech_inputs` of a preprocessed clip."""
    return inputs_of(kind, clip_frame_vectors(kind, clip))


class VastDataset(StyleDataset):
    """VAST items: a window of ``window`` frames and a style clip of up to ``style_length`` frames chosen as
    :class:`StyleDataset` chooses it, with the frame-level speech features of both.

    Keys: expression (N, K), speech (N, S), style (L, K), style_speech (L, S), style_padding (L,) bool
    (True = padding), label, clip_id. Speech features are computed once per clip and kept in memory.
    """

    def __init__(self, roots: list[Path] | Path, split: str | None = "train", *, speech: str = "ppg",
                 window: int = 64, style_length: int = 128, train: bool = False, seed: int = 0,
                 exclude: frozenset[tuple[Path, str]] = frozenset()) -> None:
        super().__init__(roots, split, window=window, style_length=style_length, train=train, seed=seed,
                         exclude=exclude)
        self.speech = speech
        self._speech: dict[int, np.ndarray] = {}

    def speech_features(self, k: int) -> np.ndarray:
        if k not in self._speech:
            self._speech[k] = clip_speech(self.store.clip(k), self.speech)
        return self._speech[k]

    def __getitem__(self, i: int) -> dict:
        k, s = self.index[i]
        self._calls += 1
        rng = np.random.default_rng([self.seed, i] + ([self._calls] if self.train else []))
        same = [j for j in self.by_class[self.labels[k]] if j != k]
        style_k = int(rng.choice(same)) if same else k
        start, length = self._segment_range(style_k, rng, (s, s + self.window) if style_k == k else None)
        clip = self.store.clip(k)
        sl = slice(s, s + self.window)
        return {"expression": torch.from_numpy(clip.expression[sl]),
                "speech": torch.from_numpy(self.speech_features(k)[sl]),
                "style": self._padded(self.store.clip(style_k).expression, start, length),
                "style_speech": self._padded(self.speech_features(style_k), start, length),
                "style_padding": torch.arange(self.style_length) >= length,
                "label": self.classes.index(self.labels[k]), "clip_id": clip.clip_id}
