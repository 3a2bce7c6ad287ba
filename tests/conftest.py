"""Shared fixtures: the real media in ../shared/media and small synthetic inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from helpers import MEDIA


@pytest.fixture(scope="session")
def media() -> Path:
    if not MEDIA.is_dir():
        pytest.fail(f"shared media not found at {MEDIA} (the tests use real media from ../shared/media)")
    return MEDIA


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


HEAVY_FIXTURES = {"one_clip_dataset", "tiny_stylegan", "styled_dataset"}
"""Session fixtures that preprocess a real clip or train models (seconds each): a test using one is slow."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``media`` on every test that reads ../shared/media (through any fixture), ``slow`` on every test that uses a
    heavy fixture; the other markers are written on the tests themselves."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "media" in names:
            item.add_marker(pytest.mark.media)
        if names & HEAVY_FIXTURES:
            item.add_marker(pytest.mark.slow)
