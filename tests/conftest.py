"""Shared fixtures: the real media in ../shared/media and small synthetic inputs."""

from __future__ import annotations

import json
import shutil
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


@pytest.fixture(scope="session")
def media() -> Path:
    if not MEDIA.is_dir():
        pytest.fail(f"shared media not found at {MEDIA} (the tests use real media from ../shared/media)")
    return MEDIA


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    """Write float samples in [-1, 1] ((N,) or (N, C)) as 16-bit PCM."""
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


@pytest.fixture(scope="session")
def one_clip_dataset(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real talking clip (videoretalking_face5) preprocessed once, as the train split of a dataset."""
    import shutil

    from talkinghead.data.preprocess import preprocess

    src = tmp_path_factory.mktemp("one_clip_src")
    shutil.copy(media / "talking" / "videoretalking_face5.mp4", src / "a.mp4")
    data = tmp_path_factory.mktemp("one_clip_data")
    preprocess(src, data, quiet=True)
    (data / "splits" / "train.txt").write_text("a\n")
    return data


@pytest.fixture(scope="session")
def tiny_stylegan(one_clip_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A train-stylegan folder of the tiny configuration (identity student, generator, discriminator, encoder,
    two steps each on the one-clip dataset) with an untrained tiny image SyncNet beside them as sync.pt."""
    from talkinghead.sync.model import SyncNet
    from talkinghead.train.stylegan import STYLEGAN_CONFIGS, train_stylegan
    from talkinghead.train.syncnet import TINY as TINY_SYNC

    root = tmp_path_factory.mktemp("stylegan")
    train_stylegan([one_clip_dataset], root, configs=STYLEGAN_CONFIGS["tiny"], identity_steps=2, gan_steps=2,
                   encoder_steps=2, batch=4, quiet=True)
    torch.manual_seed(0)
    SyncNet(TINY_SYNC).save(root / "sync.pt")
    return root


@pytest.fixture(scope="session")
def styled_dataset(one_clip_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real one-clip dataset as three clips: two of style "x", one of style "y"."""
    root = tmp_path_factory.mktemp("styled")
    (root / "splits").mkdir()
    for cid, style in (("a", "x"), ("b", "x"), ("c", "y")):
        shutil.copytree(one_clip_dataset / "clips" / "a", root / "clips" / cid)
        meta_path = root / "clips" / cid / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta.update(clip_id=cid, labels={"style": style})
        meta_path.write_text(json.dumps(meta))
    (root / "splits" / "train.txt").write_text("a\nb\nc\n")
    return root


def assert_pasted_into_face(video: Path, photo: Path, size: int) -> int:
    """The first frame of a generated video differs from the photo (resized to ``size``) in the face, not in the
    corners; returns the video's frame count."""
    from talkinghead.io import read_image, read_video, resize_longer

    clip = read_video(video)
    diff = np.abs(clip.frames[0].astype(np.float32) - resize_longer(read_image(photo), size)).mean(-1)
    corners = np.concatenate([diff[:16, :16].ravel(), diff[-16:, -16:].ravel()])
    assert corners.mean() < 6 and diff.max() > 40
    return len(clip.frames)


def optimise(model: torch.nn.Module, loss: Callable[[], torch.Tensor], *, steps: int, lr: float) -> list[float]:
    """``steps`` Adam steps on ``loss()`` over the model's parameters; returns the loss before each step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(value.item())
    return losses


def mouth_follows_phonemes(clip_path: Path, coefficients: np.ndarray) -> tuple[float, float]:
    """How a motion model's (T, K) coefficients for a preprocessed clip's own speech follow it: (mean mouth
    opening on open vowels minus on p/b/m closures, in canonical units; correlation with the real opening)."""
    from talkinghead.audio.phonemes import PHONE_INDEX
    from talkinghead.data.clip import load_clip
    from talkinghead.face.expression import mouth_features
    from talkinghead.face.model import default_face_model

    clip, face_model = load_clip(clip_path), default_face_model()
    opening = mouth_features(face_model.expression_meshes(clip.neutral, coefficients))[:, 0]
    real = mouth_features(face_model.expression_meshes(clip.neutral, clip.expression))[:, 0]
    names = np.array(sorted(PHONE_INDEX, key=PHONE_INDEX.get))[clip.phone_ids]
    vowels, closures = np.isin(names, ["AA", "AE", "AH", "AO", "AW", "AY"]), np.isin(names, ["M", "B", "P"])
    assert vowels.any() and closures.any()
    return float(opening[vowels].mean() - opening[closures].mean()), float(np.corrcoef(opening, real)[0, 1])
