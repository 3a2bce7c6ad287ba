"""End to end: the CLI and API on every shared face and real speech, dubbing, pose transfer, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from helpers import MEDIA, write_wav
from talkinghead.api import generate
from talkinghead.face import indices as ix
from talkinghead.face.identity import FaceEmbedder, identity_distance
from talkinghead.face.mesh import track_faces
from talkinghead.io import read_video
from talkinghead.io.video import frame_indices

FACES = sorted(p.name for p in (MEDIA / "faces").glob("*")) if MEDIA.is_dir() else []
SPEECH = ["videoretalking_1.wav", "sadtalker_RD_Radio31_000.wav"]


def _streams(path: Path) -> tuple[float, int, float]:
    """(video duration s, frames, audio duration s) of an mp4."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        return float(v.duration * v.time_base), v.frames, float(a.duration * a.time_base)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talkinghead", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


@pytest.mark.slow
@pytest.mark.parametrize("face", FACES)
def test_every_face_with_two_speech_files(media: Path, tmp_path: Path, face: str, embedder: FaceEmbedder) -> None:
    ref = cv2.cvtColor(cv2.imread(str(media / "faces" / face)), cv2.COLOR_BGR2RGB)
    ref_emb = embedder.embed(ref)
    for speech in SPEECH:
        out = tmp_path / f"{Path(face).stem}_{Path(speech).stem}.mp4"
        result = generate(image=media / "faces" / face, audio=media / "speech" / speech, output=out, quiet=True)
        vdur, frames, adur = _streams(out)
        assert frames == result.frames
        assert abs(vdur - result.duration) <= 1 / result.fps
        assert abs(adur - result.duration) <= 1 / result.fps
        assert max(result.size) == 512
        video = read_video(out)
        dists = [identity_distance(ref_emb, e) for e in (embedder.embed(video.frames[i]) for i in (10, 60, 110))
                 if e is not None and ref_emb is not None]
        if ref_emb is not None:  # dlib's HOG detector misses some painted faces
            assert dists and np.mean(dists) < 0.4


@pytest.mark.slow
def test_cli_generate(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.mp4"
    proc = _cli("generate", "--image", str(media / "faces" / "liveportrait_s4.jpg"), "--audio",
                str(media / "speech" / "sadtalker_imagine.wav"), "-o", str(out), "--fps", "30", "--size", "384",
                "--seed", "3", "--no-blink", "--expression-scale", "1.2")
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and "Feedback manager" not in proc.stderr
    vdur, frames, adur = _streams(out)
    assert abs(vdur - adur) <= 1 / 30
    assert read_video(out, max_frames=1).frames.shape[1:] == (384, 384, 3)


@pytest.mark.slow
def test_dub_keeps_head_motion_and_replaces_the_mouth(media: Path, tmp_path: Path) -> None:
    src = media / "talking" / "videoretalking_face5.mp4"  # 4.9 s; the 8 s speech makes it play back and forth
    out = tmp_path / "dub.mp4"
    result = generate(video=src, audio=media / "speech" / "sadtalker_RD_Radio31_000.wav", output=out, size=256,
                      quiet=True)
    vdur, frames, adur = _streams(out)
    assert abs(vdur - 8.0) <= 1 / 25 and abs(adur - 8.0) <= 1 / 25
    dubbed = read_video(out).frames
    source = read_video(src, max_side=256)
    idx = frame_indices(len(dubbed), 25.0, len(source.frames), source.fps)
    nose_src = track_faces(source.frames[idx]).meshes[:, ix.NOSE_TIP, :2]
    meshes = track_faces(dubbed).meshes
    assert np.abs(meshes[:, ix.NOSE_TIP, :2] - nose_src).mean() < 2.0  # head motion kept
    assert result.phoneme_method == "aligned"


@pytest.mark.slow
def test_pose_from_video_moves_the_head(media: Path, tmp_path: Path) -> None:
    face, speech = media / "faces" / "liveportrait_s5.jpg", media / "speech" / "videoretalking_1.wav"
    still, posed = tmp_path / "still.mp4", tmp_path / "posed.mp4"
    generate(image=face, audio=speech, output=still, still=True, size=256, quiet=True)
    generate(image=face, audio=speech, output=posed, pose_from=media / "motion" / "liveportrait_d6.mp4", size=256,
             quiet=True)
    spread = [np.ptp(track_faces(read_video(p).frames).meshes[:, ix.NOSE_TIP, 0]) for p in (still, posed)]
    assert spread[0] < 2.0 < spread[1]


def _no_output(tmp_path: Path, proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talkinghead: error:"), proc.stderr
    for n in needles:
        assert n in lines[0]
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*.mp4"))


def test_the_painted_mouth_needs_no_pytorch(media: Path, tmp_path: Path) -> None:
    """``--mouth painted`` (no weights) never imports PyTorch: neither the renderer's preparation nor its frames."""
    script = ("import sys\n"
              "from talkinghead.api import generate\n"
              f"generate(image={str(media / 'faces' / 'liveportrait_s7.jpg')!r}, "
              f"audio={str(media / 'speech' / 'videoretalking_1.wav')!r}, output={str(tmp_path / 'o.mp4')!r}, "
              "size=128, mouth='painted', quiet=True)\n"
              "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]
    assert len(read_video(tmp_path / "o.mp4").frames) == 126


def test_error_missing_audio(media: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    proc = _cli("generate", "--image", str(media / "faces" / "liveportrait_s5.jpg"), "--audio", str(missing),
                "-o", str(tmp_path / "o.mp4"))
    _no_output(tmp_path, proc, str(missing), "file not found")


def test_error_no_face(media: Path, tmp_path: Path) -> None:
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((300, 400, 3), 200, np.uint8))
    proc = _cli("generate", "--image", str(blank), "--audio", str(media / "speech" / "videoretalking_1.wav"),
                "-o", str(tmp_path / "o.mp4"))
    _no_output(tmp_path, proc, str(blank), "no face found")


def test_error_silent_and_empty_audio(media: Path, tmp_path: Path) -> None:
    silent = write_wav(tmp_path / "silent.wav", np.zeros(32000), 16000)
    proc = _cli("generate", "--image", str(media / "faces" / "liveportrait_s5.jpg"), "--audio", str(silent),
                "-o", str(tmp_path / "o.mp4"))
    _no_output(tmp_path, proc, str(silent), "silent")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    proc = _cli("generate", "--image", str(media / "faces" / "liveportrait_s5.jpg"), "--audio", str(empty),
                "-o", str(tmp_path / "o.mp4"))
    _no_output(tmp_path, proc, str(empty), "empty")


def test_error_corrupt_video(media: Path, tmp_path: Path) -> None:
    bad = tmp_path / "clip.mp4.bin"
    bad.write_bytes((media / "talking" / "videoretalking_face5.mp4").read_bytes()[:3000])
    proc = _cli("generate", "--video", str(bad), "--audio", str(media / "speech" / "videoretalking_1.wav"),
                "-o", str(tmp_path / "o.mp4"))
    _no_output(tmp_path, proc, str(bad))


def test_error_unwritable_output(media: Path, tmp_path: Path) -> None:
    target = tmp_path / "no_such_dir" / "o.mp4"
    proc = _cli("generate", "--image", str(media / "faces" / "liveportrait_s5.jpg"), "--audio",
                str(media / "speech" / "videoretalking_1.wav"), "-o", str(target))
    _no_output(tmp_path, proc, str(target), "does not exist")


def test_error_face_index_out_of_range(media: Path, tmp_path: Path) -> None:
    face = media / "faces" / "liveportrait_s5.jpg"
    proc = _cli("generate", "--image", str(face), "--audio", str(media / "speech" / "videoretalking_1.wav"),
                "-o", str(tmp_path / "o.mp4"), "--face-index", "2")
    _no_output(tmp_path, proc, str(face), "face-index 2")


def test_frame_indices_play_back_and_forth() -> None:
    assert frame_indices(7, 25.0, 3, 25.0).tolist() == [0, 1, 2, 1, 0, 1, 2]
    assert frame_indices(4, 25.0, 10, 50.0).tolist() == [0, 2, 4, 6]


@pytest.mark.slow
def test_error_option_combinations(media: Path, tmp_path: Path) -> None:
    face, speech = media / "faces" / "liveportrait_s5.jpg", media / "speech" / "videoretalking_1.wav"
    video = media / "talking" / "videoretalking_face5.mp4"
    cases = [
        (("generate", "--image", str(face), "--method", "iplap", "--renderer", "warp"), "renderer 'warp'"),
        (("generate", "--video", str(video), "--method", "styletalk"), "styletalk animates a photo"),
        (("generate", "--image", str(face), "--method", "styletalk", "--style-intensity", "3"), "style intensity"),
    ]
    for args, needle in cases:
        _no_output(tmp_path, _cli(*args, "--audio", str(speech), "-o", str(tmp_path / "o.mp4")), needle)
