"""The learned mouth painter: its mouth square, inputs, tiny model, corpus and training, and the shipped weights on a
held-out real clip."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import optimise
from talkinghead.errors import InputError
from talkinghead.face import indices as ix
from talkinghead.face.mesh import track_faces
from talkinghead.io import read_video
from talkinghead.metrics.image import luma, psnr
from talkinghead.metrics.mouth import mouth_opening
from talkinghead.render.warp.mouth import PaintedMouth
from talkinghead.render.warp.painter import (
    GROWN_COPY_LOGIT,
    INPUT_CHANNELS,
    LIP_POINTS,
    MAX_FLOW,
    MOUTH_WIDTH_FRACTION,
    REFERENCE_RGB,
    LearnedMouth,
    MouthPainter,
    PainterConfig,
    composite,
    inner_gap,
    mouth_frame,
    paint_mask,
    painter_inputs,
    to_square,
)
from talkinghead.render.warp.renderer import WarpRenderer
from talkinghead.train.painter import MouthDataset, PainterModule, mouth_corpus, train_painter

TINY = PainterConfig(size=32, widths=(8, 8, 8))


@pytest.fixture(scope="module")
def held_out(media: Path) -> tuple[np.ndarray, np.ndarray]:
    """The frames and meshes of a talking/ clip (never trained on)."""
    clip = read_video(media / "talking" / "videoretalking_face5.mp4")
    return clip.frames, track_faces(clip.frames, source="face5").meshes


def test_mouth_frame_puts_the_corners_on_a_level_line() -> None:
    mesh = np.zeros((ix.N_POINTS, 2))
    mesh[:, 0], mesh[:, 1] = 200.0, 300.0
    mesh[ix.MOUTH_CORNERS[0]] = (170.0, 310.0)  # a mouth tilted by atan(20/60)
    mesh[ix.MOUTH_CORNERS[1]] = (230.0, 330.0)
    m = mouth_frame(mesh, 64)
    left, right = to_square(mesh[ix.MOUTH_CORNERS], m)
    assert abs(left[1] - right[1]) < 1e-9
    assert np.hypot(*(right - left)) == pytest.approx(MOUTH_WIDTH_FRACTION * 64)


@pytest.mark.slow
def test_inputs_hide_the_mouth_only(held_out) -> None:  # type: ignore[no-untyped-def]
    frames, meshes = held_out
    t = int(np.argmax(mouth_opening(meshes)))
    import cv2

    m = mouth_frame(meshes[t])
    crop = cv2.warpAffine(frames[t], m, (64, 64))
    lips = to_square(meshes[t][LIP_POINTS], m)
    x, mask = painter_inputs(crop, lips, crop, lips)
    assert x.shape == (INPUT_CHANNELS, 64, 64) and x.dtype == np.float32
    centre = np.round(lips[:20].mean(0)).astype(int)
    assert mask[centre[1], centre[0]] == pytest.approx(1.0, abs=1e-3)  # the open mouth is painted
    assert mask[:8].max() == 0 and mask[-8:].max() == 0  # nose and chin are not
    assert np.abs(x[:3][:, mask > 0.999]).max() < 2e-3  # the hidden pixels carry (next to) nothing
    assert x[4, centre[1], centre[0]] == pytest.approx(1.0)  # the sketch fills the inner mouth


@pytest.mark.slow
def test_a_larger_square_measures_the_mouth_alike(held_out) -> None:  # type: ignore[no-untyped-def]
    """The lip gap and the painted region are lengths of a 64 px square, whatever the painter's side."""
    _, meshes = held_out
    mesh = meshes[int(np.argmax(mouth_opening(meshes)))]
    small, large = (to_square(mesh[LIP_POINTS], mouth_frame(mesh, s)) for s in (64, 96))
    assert inner_gap(large, 96) == pytest.approx(inner_gap(small, 64), rel=1e-6)
    assert inner_gap(small, 64) > 3.0  # an open mouth
    assert paint_mask(large, 96).mean() == pytest.approx(paint_mask(small, 64).mean(), rel=0.1)


@pytest.mark.parametrize("config", [TINY, replace(TINY, reference_warp=True)], ids=["drawn", "reference-warp"])
def test_tiny_painter_shapes_training_and_round_trip(config: PainterConfig, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MouthPainter(config)
    x = torch.rand(4, INPUT_CHANNELS, 32, 32) * 2 - 1  # the inputs' range
    x[:, 3] = (torch.rand(4, 32, 32) > 0.5).float()
    out = model(x)
    assert out.shape == (4, 3, 32, 32) and torch.isfinite(out).all() and out.abs().max() <= 1
    target = torch.rand(4, 3, 32, 32) * 2 - 1
    losses = optimise(model, lambda: (composite(x, model(x)) - target).abs().mean(), steps=20, lr=1e-2)
    assert losses[-1] < losses[0]
    model.save(tmp_path / "p.pt", half=True)
    back = MouthPainter.load(tmp_path / "p.pt")
    assert back.config == config
    assert torch.allclose(back(x), model(x), atol=2e-2)  # float16 weights


def test_the_reference_warp_at_rest_copies_an_open_reference_pixel_for_pixel_and_a_closed_one_not_at_all() -> None:
    """No flow and all weight on the copy: with the reference's mouth open the output is the reference square itself
    (the flow's grid sits on the pixel centres), and a flow of one pixel to the right copies the pixel to the right;
    with its mouth closed (a sketch of 25 square pixels) the output is the drawn colours."""
    model = MouthPainter(replace(TINY, block=2, reference_warp=True))
    last = model.d0[-1]
    r2 = model.config.block ** 2
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()  # drawn colours: tanh(0) = 0
        last.bias[5 * r2:] = 30.0  # the copy's weight: sigmoid(30) = 1
    x = torch.rand(2, INPUT_CHANNELS, 32, 32) * 2 - 1
    inside = REFERENCE_RGB.stop  # the reference's inner mouth filled
    x[:, inside] = 0.0
    x[:, inside, 12:20, 4:28] = 1.0  # 192 pixels of a 32 px square: 768 of a 64 px one, wide open
    reference = x[:, REFERENCE_RGB]
    assert torch.allclose(model(x), reference, atol=1e-5)
    with torch.no_grad():  # tanh(f) * MAX_FLOW = one pixel of 32 in grid units (2 / 32)
        last.bias[3 * r2:4 * r2] = float(np.arctanh(2 / 32 / MAX_FLOW))
    assert torch.allclose(model(x)[..., :31], reference[..., 1:], atol=1e-4)
    x[:, inside] = 0.0
    x[:, inside, 16, 4:29] = 0.25  # 6.25 pixels of the 32 px square: 25 of a 64 px one, closed
    assert model(x).abs().max() < 1e-6


def test_a_drawing_painter_grown_to_copy_draws_as_before_and_copies_a_little_from_an_open_reference() -> None:
    """Grown from a drawing painter, the copying one paints exactly its colours from a closed reference (no copy), and
    from an open one blends them with the reference square, unmoved, at sigmoid(GROWN_COPY_LOGIT)."""
    torch.manual_seed(0)
    drawing = MouthPainter(replace(TINY, block=2))
    grown = drawing.with_reference_warp()
    assert grown.config.reference_warp and not drawing.config.reference_warp
    x = torch.rand(2, INPUT_CHANNELS, 32, 32) * 2 - 1
    inside = REFERENCE_RGB.stop
    x[:, inside] = 0.0
    x[:, inside, 16, 4:29] = 0.25  # closed: 25 pixels of a 64 px square
    with torch.no_grad():
        drawn = drawing(x)
        assert torch.allclose(grown(x), drawn, atol=1e-6)
        x[:, inside, 12:20, 4:28] = 1.0  # wide open
        w = torch.sigmoid(torch.tensor(GROWN_COPY_LOGIT))
        assert torch.allclose(grown(x), w * x[:, REFERENCE_RGB] + (1 - w) * drawing(x), atol=1e-5)
    with pytest.raises(ValueError, match="copies the reference already"):
        grown.with_reference_warp()


def test_the_temporal_term_is_the_painted_change_against_the_real_one() -> None:
    """Two identical inputs paint identically: against a real change of 0.25 everywhere the term is 0.25 (the mean
    over the painted region: all of both squares here), and it is not there without a weight."""
    x = torch.rand(2, INPUT_CHANNELS, 32, 32) * 2 - 1
    x[:, 3] = 1.0  # all of the square is painted
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    batch = {"x": x, "target": target, "x_next": x.clone(), "target_next": target + 0.25}
    parts = PainterModule(asdict(TINY), gan=0.0, temporal=1.0)._losses(batch)[1]
    assert abs(float(parts["temporal"]) - 0.25 * 3 * 2048 / (3 * 2048 + 1)) < 1e-5
    assert "temporal" not in PainterModule(asdict(TINY), gan=0.0)._losses(batch)[1]


@pytest.mark.slow
@pytest.mark.train
def test_corpus_and_a_training_step(media: Path, tmp_path: Path) -> None:
    lines = mouth_corpus([media / "talking" / "videoretalking_face5.mp4"], tmp_path / "c", size=32, quiet=True)
    assert lines[0].startswith("done") and len(list((tmp_path / "c").glob("*.npz"))) == 1
    assert mouth_corpus([media / "talking" / "videoretalking_face5.mp4"], tmp_path / "c", quiet=True)[0] \
        .startswith("exists")
    data = np.load(next((tmp_path / "c").glob("*.npz")))
    assert data["crops"].shape[1:] == (32, 32, 3) and data["lips"].shape[1:] == (40, 2)
    corners = data["lips"][:, [0, 10]]  # the inner loop starts and ends (index 10) at the inner corners
    assert np.all(np.abs(corners[:, 0, 1] - corners[:, 1, 1]) < 2.0)  # level in the square
    ds = MouthDataset(tmp_path / "c", "train", length=8, train=True)
    item = ds[3]
    assert item["x"].shape == (INPUT_CHANNELS, 32, 32) and item["target"].shape == (3, 32, 32)
    assert torch.equal(ds[3]["x"], item["x"])  # deterministic
    torch.manual_seed(0)
    module = PainterModule(asdict(TINY), gan=0.0)
    batch = {k: torch.stack([ds[i][k] for i in range(8)]) for k in item}
    losses = optimise(module.model, lambda: module._losses(batch)[0], steps=15, lr=3e-3)
    assert losses[-1] < losses[0]
    paired = MouthDataset(tmp_path / "c", "train", length=8, train=True, pairs=True)
    assert torch.equal(paired[3]["x"], item["x"]) and torch.equal(paired[3]["target"], item["target"])
    assert not torch.equal(paired[3]["target_next"], item["target"])  # the next frame of the clip
    with pytest.raises(InputError, match="not a multiple of 4 x the block"):  # 32 px squares, 3 px blocks
        train_painter(tmp_path / "c", tmp_path / "p.pt", max_steps=1, block=3, quiet=True)
    MouthPainter(PainterConfig()).save(tmp_path / "p64.pt")
    with pytest.raises(InputError, match="p64.pt: a painter for 64 px squares; the corpus has 32 px"):
        train_painter(tmp_path / "c", tmp_path / "p.pt", max_steps=1, init=tmp_path / "p64.pt", quiet=True)
    module.model.save(tmp_path / "tiny.pt")
    np.savez(tmp_path / "c" / "held3.npz", **data)  # a name that falls in the validation share
    train_painter(tmp_path / "c", tmp_path / "more.pt", max_steps=1, block=3, gan=0.0, temporal=1.0,
                  init=tmp_path / "tiny.pt", quiet=True)  # the checkpoint's 2 px blocks, not the 3 asked
    assert MouthPainter.load(tmp_path / "more.pt").config == TINY
    larger = {"crops": np.zeros((2, 48, 48, 3), np.uint8), "lips": data["lips"][:2] * 1.5}
    np.savez(tmp_path / "c" / "larger.npz", **larger)  # a second run of mouth-corpus with another --size
    with pytest.raises(InputError, match=r"several sizes here \(32, 48 px\)"):
        MouthDataset(tmp_path / "c", "train", length=8)


@pytest.mark.slow
def test_shipped_painter_redraws_a_real_open_mouth_better_than_the_painted_interior(held_out) -> None:  # type: ignore[no-untyped-def]
    """Each of the 6 widest-open frames of a held-out clip: its mouth hidden and redrawn at its real lip shape,
    from another frame of the clip, by the shipped painter and by the painted interior."""
    frames, meshes = held_out
    opening = mouth_opening(meshes)
    reference = int(np.argmax(opening))
    targets = [t for t in np.argsort(opening)[::-1] if abs(t - reference) > 10][:6]
    learned = LearnedMouth(frames[reference], meshes[reference])
    painted = PaintedMouth.of(frames[reference], meshes[reference])
    gains = []
    for t in targets:
        inner = meshes[t][ix.MOUTH_INNER_LOOP, :2]
        (x0, y0), (x1, y1) = np.floor(inner.min(0)).astype(int) - 2, np.ceil(inner.max(0)).astype(int) + 3
        a, b = frames[t].copy(), frames[t].copy()
        learned.paint(a, meshes[t])
        painted.paint(b, meshes[t])
        real = frames[t][y0:y1, x0:x1]
        gains.append(psnr(a[y0:y1, x0:x1], real) - psnr(b[y0:y1, x0:x1], real))
    assert np.mean(gains) > 1.0, gains


@pytest.mark.slow
def test_a_mouth_closed_over_an_open_one_is_painted_over(held_out) -> None:  # type: ignore[no-untyped-def]
    """Six of a held-out clip's widest-open frames warped to its six most closed lip shapes: the warp squeezes the
    teeth into a bright line between the lips. Told what was warped, the painter paints that line over; not told,
    it leaves a closed target mouth as warped."""
    frames, meshes = held_out
    opening = mouth_opening(meshes)
    mouth = LearnedMouth(frames[int(np.argmax(opening))], meshes[int(np.argmax(opening))])
    bright = {"told": 0, "not told": 0}
    for s, c in zip(np.argsort(opening)[::-1][:6], np.argsort(opening)[:6]):
        renderer = WarpRenderer(frames[s], meshes[s])
        crop, target = renderer.warp(meshes[c])
        inner = target[ix.MOUTH_INNER_LOOP, :2]
        (x0, y0), (x1, y1) = np.floor(inner.min(0)).astype(int) - 2, np.ceil(inner.max(0)).astype(int) + 3
        for told in (True, False):
            image = crop.copy()
            mouth.paint(image, target, renderer.src if told else None)
            if not told:
                assert np.array_equal(image, crop)
            bright["told" if told else "not told"] += int((luma(image[y0:y1, x0:x1]) > 200).sum())
    assert bright["told"] < 0.25 * bright["not told"], bright


@pytest.mark.slow
def test_painting_frames_together_draws_what_painting_each_alone_does(held_out) -> None:  # type: ignore[no-untyped-def]
    """The renderer paints 8 frames' mouths with one run of the network: a held-out clip's 8 widest-open frames and
    4 of its most closed ones (left as they are) painted together match each painted alone, and the open ones
    changed."""
    frames, meshes = held_out
    opening = mouth_opening(meshes)
    order = np.argsort(opening)
    mouth = LearnedMouth(frames[order[-1]], meshes[order[-1]])
    chosen = [*order[::-1][1:9], *order[:4]]
    alone = [frames[t].copy() for t in chosen]
    together = [frames[t].copy() for t in chosen]
    for image, t in zip(alone, chosen):
        mouth.paint(image, meshes[t])
    mouth.paint_all([(image, meshes[t], None) for image, t in zip(together, chosen)])
    for a, b, t in zip(alone, together, chosen):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert all(not np.array_equal(a, frames[t]) for a, t in zip(alone[:8], chosen[:8]))
    assert all(np.array_equal(a, frames[t]) for a, t in zip(alone[8:], chosen[8:]))
