"""Shared fixtures: the real media in ../shared/media and small synthetic inputs."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

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
