"""SyncNet: tiny-config model tests, the sync metric on exactly-known embeddings, a Lightning run."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talkinghead.sync.metrics import sync_score
from talkinghead.sync.model import SyncNet
from talkinghead.train.syncnet import TINY, train_syncnet


def _batch(b: int = 6, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 5, 3, TINY.height, TINY.width, generator=g), torch.randn(b, 1 + k, 16, 80, generator=g)


@pytest.mark.parametrize("objective,in_batch", [("contrastive", True), ("contrastive", False), ("binary", False)])
def test_tiny_syncnet_shapes_training_and_round_trip(objective: str, in_batch: bool, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SyncNet(replace(TINY, objective=objective, in_batch_negatives=in_batch))
    mouth, mels = _batch()
    v = model.embed_mouth(mouth)
    a = model.embed_audio(mels[:, 0])
    assert v.shape == a.shape == (6, TINY.embed)
    assert torch.allclose(v.norm(dim=-1), torch.ones(6)) and not torch.isnan(v).any()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first, _ = model.loss(mouth, mels)
    for _ in range(30):
        loss, acc = model.loss(mouth, mels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first.item()
    model.eval()
    model.save(tmp_path / "s.pt")
    back = SyncNet.load(tmp_path / "s.pt")
    assert back.config == model.config
    assert torch.allclose(back.embed_mouth(mouth), model.embed_mouth(mouth), atol=1e-6)


class _KnownEmbeddings(SyncNet):
    """Visual window t embeds to r_t, audio frame t to r_(t - shift): the true offset is ``shift``."""

    def __init__(self, shift: int, n: int) -> None:
        super().__init__(TINY)
        g = torch.Generator().manual_seed(1)
        self.r = F.normalize(torch.randn(n + 40, TINY.embed, generator=g), dim=-1)
        self.shift = shift

    def embed_mouth(self, mouth: torch.Tensor) -> torch.Tensor:
        return self.r[mouth[:, 0, 0, 0, 0].long() + 20]

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        return self.r[mel[:, 0, 0].long() - self.shift + 20]


@pytest.mark.parametrize("shift", [-7, 0, 4, 12])
def test_sync_score_finds_a_known_offset(shift: int) -> None:
    n = 60
    mouth = torch.zeros(n, 3, 2, 2)
    mouth[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    mel = torch.zeros(n, 16, 80)
    mel[:, 0, 0] = torch.arange(n, dtype=torch.float32)
    score = sync_score(_KnownEmbeddings(shift, n), mouth, mel)
    assert score.offset == shift and score.lse_d == pytest.approx(0.0, abs=1e-6)
    assert score.lse_c > 1.0  # unrelated unit vectors are ~sqrt(2) apart
    assert score.distances.shape == (31,)


def test_lightning_training_writes_a_loadable_checkpoint(media: Path, tmp_path: Path) -> None:
    from talkinghead.data.preprocess import preprocess

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(media / "talking" / "videoretalking_face5.mp4", src / "a.mp4")
    data = tmp_path / "data"
    preprocess(src, data, quiet=True)
    (data / "splits" / "train.txt").write_text("a\n")  # one clip: make it the training split
    metrics = train_syncnet([data], tmp_path / "sync.pt", config=TINY, max_steps=4, batch=4, quiet=True,
                            accelerator="cpu", devices=1)
    assert np.isfinite(metrics["train_loss"])
    model = SyncNet.load(tmp_path / "sync.pt")
    assert model.config == TINY
    ckpt = torch.load(tmp_path / "sync.pt", weights_only=True)
    assert ckpt["steps"] == 4 and ckpt["datasets"] == [str(data)]


def test_in_batch_negatives_add_the_other_items_audio() -> None:
    torch.manual_seed(0)
    mouth, mels = _batch(b=3, k=2)
    with_others = SyncNet(replace(TINY, in_batch_negatives=True)).eval()
    alone = SyncNet(replace(TINY, in_batch_negatives=False)).eval()
    alone.load_state_dict(with_others.state_dict())
    loss_with, acc_with = with_others.loss(mouth, mels)
    loss_alone, acc_alone = alone.loss(mouth, mels)
    assert acc_with == acc_alone  # accuracy is over the item's own clip either way
    assert loss_with > loss_alone  # more negatives in the softmax
