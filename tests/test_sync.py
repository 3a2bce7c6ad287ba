"""SyncNet: tiny-config model tests, the sync metric on exactly-known embeddings, a Lightning run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import optimise
from talkinghead.constants import DATA_FPS, SAMPLE_RATE
from talkinghead.errors import InputError
from talkinghead.face import indices as ix
from talkinghead.render.stylegan.model import Generator
from talkinghead.sync.inputs import MESH_SCALE, SYNC_POINTS, mesh_mouth
from talkinghead.sync.metrics import score_video, sync_score
from talkinghead.sync.model import SyncNet, SyncNetConfig
from talkinghead.train.syncnet import TINY, train_syncnet


def _batch(b: int = 6, k: int = 4, visual: str = "image") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mouth = torch.rand(b, 5, 3, TINY.height, TINY.width, generator=g) if visual == "image" else \
        torch.randn(b, 5, TINY.mesh_dim, generator=g)
    return mouth, torch.randn(b, 1 + k, 16, 80, generator=g)


@pytest.mark.parametrize("objective,in_batch,visual", [("contrastive", True, "image"), ("contrastive", False, "image"),
                                                       ("binary", False, "image"), ("contrastive", True, "mesh"),
                                                       ("binary", False, "mesh")])
@pytest.mark.slow
def test_tiny_syncnet_shapes_training_and_round_trip(objective: str, in_batch: bool, visual: str,
                                                     tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SyncNet(replace(TINY, objective=objective, in_batch_negatives=in_batch, visual=visual))
    mouth, mels = _batch(visual=visual)
    v = model.embed_mouth(mouth)
    a = model.embed_audio(mels[:, 0])
    assert v.shape == a.shape == (6, TINY.embed)
    assert torch.allclose(v.norm(dim=-1), torch.ones(6)) and not torch.isnan(v).any()
    losses = optimise(model, lambda: model.loss(mouth, mels)[0], steps=30, lr=3e-3)
    assert losses[-1] < losses[0]
    model.eval()
    model.save(tmp_path / "s.pt")
    back = SyncNet.load(tmp_path / "s.pt")
    assert back.config == model.config
    assert torch.allclose(back.embed_mouth(mouth), model.embed_mouth(mouth), atol=1e-6)


def test_whisper_audio_stream_trains_round_trips_and_reads_the_clips_features(one_clip_dataset: Path,
                                                                              tmp_path: Path) -> None:
    """The speech switch: the audio stream reads 5-frame windows of Whisper features (a small MLP); a tiny mesh
    SyncNet on them learns, round-trips, and its dataset's in-sync window holds the clip's own stored features;
    the sequence sync loss of training refuses it (it reads mel windows)."""
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.sync.model import sequence_sync_loss
    from talkinghead.train.datasets import SyncDataset

    torch.manual_seed(0)
    config = replace(TINY, visual="mesh", speech="whisper")
    model = SyncNet(config)
    mouth, _ = _batch(visual="mesh")
    speech = torch.randn(6, 5, 5, 384)
    assert model.embed_audio(speech[:, 0]).shape == (6, TINY.embed)
    losses = optimise(model, lambda: model.loss(mouth, speech)[0], steps=30, lr=3e-3)
    assert losses[-1] < losses[0]
    model.eval().save(tmp_path / "s.pt")
    back = SyncNet.load(tmp_path / "s.pt")
    with torch.no_grad():
        assert back.config.speech == "whisper"
        assert torch.equal(back.embed_audio(speech[:, 0]), model.embed_audio(speech[:, 0]))
    data = SyncDataset(one_clip_dataset, "train", config=config)
    item, (_, s) = data[7], data.index[7]
    features = load_clip(clip_dir(one_clip_dataset, "a")).whisper.astype(np.float32)
    assert item["mels"].shape == (5, 5, 384) and torch.equal(item["mels"][0, 2], torch.from_numpy(features[s]))
    with pytest.raises(ValueError, match="reads mel windows"):
        sequence_sync_loss(model, torch.randn(1, 12, TINY.mesh_dim), torch.randn(1, 12, 5, 384))


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


@pytest.mark.train
def test_lightning_training_writes_a_loadable_checkpoint(one_clip_dataset: Path, tmp_path: Path) -> None:
    data = one_clip_dataset
    metrics = train_syncnet([data], tmp_path / "sync.pt", config=TINY, max_steps=8, batch=4, quiet=True,
                            accelerator="cpu", devices=1)
    assert metrics["train_loss"] < metrics["first_train_loss"], metrics  # the training loss fell
    model = SyncNet.load(tmp_path / "sync.pt")
    assert model.config == TINY
    with pytest.raises(InputError, match="missing.pt: file not found"):
        SyncNet.load(tmp_path / "missing.pt")
    with pytest.raises(InputError, match="sync.pt: not a Generator checkpoint"):  # another model's checkpoint
        Generator.load(tmp_path / "sync.pt")
    ckpt = torch.load(tmp_path / "sync.pt", weights_only=True)
    assert ckpt["steps"] == 8 and ckpt["datasets"] == [str(data)]
    # a time limit stops it early; the checkpoint records the steps it took
    train_syncnet([data], tmp_path / "short.pt", config=TINY, max_steps=10_000, batch=4, quiet=True, minutes=0.0005,
                  accelerator="cpu", devices=1)
    assert 1 <= torch.load(tmp_path / "short.pt", weights_only=True)["steps"] < 10_000


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


def test_mesh_inputs_cancel_the_speakers_lip_shape_and_keep_motion() -> None:
    rng = np.random.default_rng(0)
    neutral = rng.normal(size=(478, 3))
    meshes = np.repeat(neutral[None], 10, axis=0)
    meshes[4, ix.LIPS_LOWER_INNER, 1] += 0.1  # the lower lip drops in frame 4
    x = mesh_mouth(meshes)
    assert x.shape == (10, SyncNetConfig().mesh_dim) and x.dtype == np.float32
    other = mesh_mouth(meshes + rng.normal(size=(1, 478, 3)))  # another speaker, same motion
    np.testing.assert_allclose(x, other, atol=1e-5)
    moved = x.reshape(10, -1, 3)[:, np.isin(SYNC_POINTS, ix.LIPS_LOWER_INNER), 1]
    np.testing.assert_allclose(moved[4] - moved[0], MESH_SCALE * 0.1, rtol=1e-5)


@pytest.mark.slow
def test_shipped_syncnet_finds_known_audio_shifts(media: Path) -> None:
    """The shipped SyncNet on a real clip it never saw in training, with the audio delayed or advanced: the
    estimate moves by the shift. (This clip is natively about 2 frames out of sync: its lips close ~1
    frame after the aligned p/b/m centres, see benchmarks/syncnet.py.)"""
    from talkinghead.face.mesh import track_faces
    from talkinghead.face.pose import fit_pose
    from talkinghead.io import load_audio, read_video

    path = media / "talking" / "videoretalking_face1.mp4"
    video = read_video(path, max_side=512)
    meshes = track_faces(video.frames, source=str(path)).meshes
    free = np.stack([fit_pose(m).to_canonical(m.astype(np.float64)) for m in meshes])
    audio = load_audio(path)
    model = SyncNet.default()
    native = score_video(model, video.frames, meshes, free, audio, video.fps).offset
    assert abs(native) <= 3
    hop = int(SAMPLE_RATE / DATA_FPS)
    for shift in (-8, 8):  # positive: the audio comes later than the video
        moved = np.concatenate([np.zeros(shift * hop, np.float32), audio]) if shift > 0 else audio[-shift * hop:]
        score = score_video(model, video.frames, meshes, free, moved, video.fps)
        assert score.offset == native + shift, (shift, native, score.offset)


def test_image_stream_scores_a_video_at_another_frame_rate(media: Path) -> None:
    """The image stream cuts mouth crops like preprocessing; a 30 fps video is resampled to 25 fps."""
    from talkinghead.face.mesh import track_faces
    from talkinghead.face.pose import fit_pose
    from talkinghead.io import load_audio, read_video

    path = media / "talking" / "videoretalking_face5.mp4"
    video = read_video(path, max_side=256, max_frames=36)
    idx = np.minimum(np.arange(43) * video.fps / 30.0, len(video.frames) - 1).astype(int)  # ~1.4 s at 30 fps
    frames = video.frames[idx]
    meshes = track_faces(frames, source=str(path)).meshes
    free = np.stack([fit_pose(m).to_canonical(m.astype(np.float64)) for m in meshes])
    torch.manual_seed(0)
    score = score_video(SyncNet(TINY).eval(), frames, meshes, free, load_audio(path), 30.0)
    assert score.distances.shape == (31,) and np.isfinite(score.distances).sum() == 31
    assert np.isfinite(score.lse_d) and score.lse_c >= 0


def test_mouth_crops_of_generated_frames_match_the_preprocessed_view() -> None:
    """The differentiable view of generated crops equals :func:`mouth_images` of the same crops (2x area
    downsampling in both), so the sync loss sees what SyncNet was trained on."""
    from talkinghead.sync.inputs import mouth_crops, mouth_images

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    expected = mouth_images(crops, (32, 64)).astype(np.float32) / 255
    frames = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1
    got = mouth_crops(frames[None], (32, 64))[0].permute(0, 2, 3, 1).numpy()
    assert got.shape == (3, 32, 64, 3)
    assert np.abs(got - expected).max() < 1.5 / 255  # cv2 rounds to uint8


def test_loading_a_model_leaves_the_random_generator_alone(tmp_path: Path) -> None:
    """Building a network draws its initial weights from the global generator; loading one from a checkpoint does not
    (a seeded training run that loads the frozen SyncNet first starts from the same weights every time)."""
    path = tmp_path / "sync.pt"
    SyncNet(TINY).save(path)
    state = torch.get_rng_state()
    SyncNet(TINY)
    assert not torch.equal(state, torch.get_rng_state())
    state = torch.get_rng_state()
    SyncNet.load(path)
    assert torch.equal(state, torch.get_rng_state())
