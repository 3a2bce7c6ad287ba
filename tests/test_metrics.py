"""Metrics against reference implementations and exactly-known cases; `talkinghead evaluate`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from talkinghead.errors import InputError
from talkinghead.face.identity import FaceEmbedder
from talkinghead.io import read_image, read_video, write_video
from talkinghead.metrics.evaluate import evaluate_pair, pairs
from talkinghead.metrics.image import cpbd, luma, ms_ssim, psnr, ssim
from talkinghead.sync.model import SyncNet


@pytest.fixture(scope="module")
def face(media: Path) -> np.ndarray:
    return cv2.resize(read_image(media / "faces" / "liveportrait_s6.jpg"), (256, 256), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("sigma,noise", [(0.8, 0), (1.5, 6), (3.0, 20)])
def test_ssim_and_psnr_match_scikit_image(face: np.ndarray, sigma: float, noise: int) -> None:
    rng = np.random.default_rng(0)
    other = cv2.GaussianBlur(face, (0, 0), sigma).astype(int) + rng.integers(-noise, noise + 1, face.shape)
    other = np.clip(other, 0, 255).astype(np.uint8)
    expected = structural_similarity(luma(face), luma(other), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255)
    assert ssim(face, other) == pytest.approx(expected, abs=1e-9)
    assert psnr(face, other) == pytest.approx(peak_signal_noise_ratio(face, other, data_range=255), abs=1e-9)


def test_known_psnr_and_identity() -> None:
    a = np.full((64, 64, 3), 100, np.uint8)
    assert psnr(a, a + 5) == pytest.approx(10 * np.log10(255**2 / 25))
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)


def test_ms_ssim_and_cpbd_order_blur(face: np.ndarray) -> None:
    blurred = [cv2.GaussianBlur(face, (0, 0), s) for s in (1.0, 2.0, 4.0)]
    scores = [ms_ssim(face, b) for b in blurred]
    assert ms_ssim(face, face) == pytest.approx(1.0)
    assert scores[0] > scores[1] > scores[2]
    assert cpbd(face) > cpbd(blurred[0]) >= cpbd(blurred[2])
    mouth = (slice(122, 150), slice(104, 152))  # the lips: smaller than CPBD's 64 px blocks, measured in 28 px ones
    assert cpbd(face[mouth]) > cpbd(blurred[0][mouth]) >= cpbd(blurred[1][mouth])


def test_mouth_flicker_is_the_frame_difference_while_the_lips_are_still(face: np.ndarray) -> None:
    from talkinghead.face.mesh import mesh_image
    from talkinghead.face.pose import pose_free
    from talkinghead.metrics.evaluate import mouth_flicker

    mesh = mesh_image(face)[0]
    meshes = np.repeat(mesh[None], 4, 0)
    still = np.repeat(face[None], 4, 0)
    assert mouth_flicker(still, meshes, pose_free(meshes)) == 0.0
    flashing = still.copy()
    flashing[1::2] = np.clip(flashing[1::2].astype(int) + 10, 0, 255).astype(np.uint8)  # every other frame lighter
    assert mouth_flicker(flashing, meshes, pose_free(meshes)) == pytest.approx(10.0, abs=0.5)
    moving = meshes.copy()
    moving[1::2, 14, 1] += 30.0  # the lower lip jumps every other frame: no still pair, nothing measured
    assert np.isnan(mouth_flicker(flashing, moving, pose_free(moving)))


@pytest.mark.slow
def test_a_video_against_itself_is_perfect(media: Path, tmp_path: Path) -> None:
    clip = read_video(media / "talking" / "videoretalking_face5.mp4", max_side=256, max_frames=30)
    path = write_video(tmp_path / "ref.mp4", iter(clip.frames), fps=clip.fps)
    speech = media / "talking" / "videoretalking_face5.mp4"
    net = SyncNet.default()
    row = evaluate_pair(path, path, embedder=FaceEmbedder(), syncnet=net, audio=speech)
    assert row["psnr"] == 100.0 and row["ssim"] == pytest.approx(1.0) and row["ms_ssim"] == pytest.approx(1.0)
    assert row["lmd"] == 0.0 and row["mouth_lmd"] == 0.0 and row["aed"] == 0.0 and row["apd"] == 0.0
    assert row["mouth_psnr"] == 100.0 and row["mouth_ssim"] == pytest.approx(1.0)
    assert row["mouth_cpbd"] == row["mouth_cpbd_ref"] and row["flicker"] == row["flicker_ref"]
    assert row["mouth_corr"] == pytest.approx(1.0)
    assert row["csim"] > 0.95  # the reference's first frame against other frames of the same person
    assert row["lse_c"] == row["lse_c_ref"] > 0 and row["diversity"] == row["diversity_ref"] > 0
    shifted = write_video(tmp_path / "gen.mp4", (np.roll(f, 3, axis=1) for f in clip.frames), fps=clip.fps)
    moved = evaluate_pair(shifted, path, embedder=FaceEmbedder(), syncnet=net, audio=speech)
    assert moved["psnr"] < 40 and moved["ssim"] < 0.99 and moved["lmd"] < 1.0  # pose-free landmarks ignore a shift
    faster = write_video(tmp_path / "fast.mp4", iter(clip.frames), fps=clip.fps + 5)  # index pairs would drift
    with pytest.raises(InputError, match="fps, but its reference ref.mp4 has 25 fps"):
        evaluate_pair(faster, path, embedder=FaceEmbedder(), syncnet=net, audio=speech)


def test_pairs_by_name(tmp_path: Path) -> None:
    (tmp_path / "gen").mkdir()
    (tmp_path / "ref").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "gen" / name).write_bytes(b"x")
    (tmp_path / "ref" / "a.mp4").write_bytes(b"x")
    assert pairs(tmp_path / "gen", tmp_path / "ref") == [(tmp_path / "gen" / "a.mp4", tmp_path / "ref" / "a.mp4")]
    with pytest.raises(InputError, match="not found"):
        pairs(tmp_path / "missing", tmp_path / "ref")


@pytest.mark.slow
def test_evaluate_cli_errors(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "evaluate", "--generated", str(tmp_path / "g.mp4"),
                           "--reference", str(tmp_path / "r.mp4")], capture_output=True, text=True)
    assert proc.returncode == 2 and "not found" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "g.mp4").write_bytes(b"x")
    (tmp_path / "r.mp4").write_bytes(b"x")
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "evaluate", "--generated", str(tmp_path / "g.mp4"),
                           "--reference", str(tmp_path / "r.mp4"), "--syncnet", str(tmp_path / "none.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "none.pt: file not found" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "evaluate", "--reconstruct", str(tmp_path / "clips")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == f"talkinghead: error: {tmp_path / 'clips'}: folder not found"


def test_best_lag_pearson_finds_a_known_shift() -> None:
    from talkinghead.metrics.mouth import best_lag_pearson, pearson

    x = np.random.default_rng(0).standard_normal(200)
    late, early = x[:100], x[2:102]  # early leads late by 2 frames
    assert pearson(early, late) < 0.3
    assert best_lag_pearson(early, late, 3) == pytest.approx(1.0) and best_lag_pearson(late, early, 3) == pytest.approx(1.0)
    assert best_lag_pearson(early, late, 1) < 0.3  # the shift is outside the allowance
