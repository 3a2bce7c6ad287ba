"""Media I/O on real files and exactly-known synthetic signals."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from helpers import write_wav
from talkinghead.errors import InputError, InputWarning
from talkinghead.io import load_audio, read_image, read_video, write_video


def _peak_hz(x: np.ndarray, rate: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def test_wav_any_rate_and_channels_becomes_16k_mono(tmp_path: Path) -> None:
    rate, dur = 44100, 1.5
    t = np.arange(int(rate * dur)) / rate
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], 1)
    audio = load_audio(write_wav(tmp_path / "a.wav", stereo, rate, channels=2))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - 16000 * dur) <= 16
    assert abs(_peak_hz(audio) - 440) < 2


@pytest.mark.parametrize("codec,ext", [("mp3", "mp3"), ("aac", "m4a")])
def test_compressed_audio(tmp_path: Path, codec: str, ext: str) -> None:
    path = tmp_path / f"tone.{ext}"
    rate = 48000
    t = np.arange(rate * 2) / rate
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate, layout="mono")
        samples = (0.4 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        frame.sample_rate = rate
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    audio = load_audio(path)
    assert abs(audio.size / 16000 - 2.0) < 0.1
    assert abs(_peak_hz(audio) - 1000) < 3


def test_audio_track_of_real_video(media: Path) -> None:
    audio = load_audio(media / "talking" / "videoretalking_face1.mp4")
    assert abs(audio.size / 16000 - 6.1) < 0.2
    assert np.abs(audio).max() > 0.05


@pytest.mark.parametrize("make,problem", [
    (lambda p: p, "file not found"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    (lambda p: (p.write_bytes(os.urandom(5000)), p)[1], "not a readable"),
])
def test_bad_audio_names_file_and_problem(tmp_path: Path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / "speech.wav")
    with pytest.raises(InputError) as err:
        load_audio(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_silent_audio_rejected(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "silence.wav", np.zeros(16000), 16000)
    with pytest.raises(InputError, match="silent"):
        load_audio(path)


def test_image_without_audio_stream(media: Path) -> None:
    with pytest.raises(InputError, match="no audio stream"):
        load_audio(media / "faces" / "liveportrait_s0.jpg")


def test_read_real_video(media: Path) -> None:
    clip = read_video(media / "talking" / "videoretalking_face5.mp4")
    assert clip.frames.shape == (122, 524, 524, 3)
    assert clip.fps == pytest.approx(25.0)
    small = read_video(media / "talking" / "videoretalking_face2.mp4", max_side=256, max_frames=5)
    assert small.frames.shape == (5, 256, 256, 3)


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    """A phone video stored landscape with a 90-degree display matrix reads back portrait."""
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:8, :8] = 255  # marker top-left as stored
    path = write_video(tmp_path / "r.mp4", iter([frame] * 3), fps=25.0)
    data = bytearray(path.read_bytes())
    matrix = data.find(b"tkhd") + 4 + 40  # version-0 track header: the 3x3 display matrix
    assert struct.unpack(">9i", data[matrix:matrix + 36]) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))
    clip = read_video(path)
    assert clip.frames.shape == (3, 64, 32, 3)
    assert clip.frames[0, :8, -8:].mean() > 200  # rotated clockwise: marker now top-right
    assert clip.frames[0, -8:, :8].mean() < 30


def test_write_video_aligns_audio_and_frames(tmp_path: Path) -> None:
    fps, n = 25.0, 50
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)).astype(np.float32)
    frames = (np.random.default_rng(0).random((n, 64, 48, 3)) * 255).astype(np.uint8)
    out = write_video(tmp_path / "o.mp4", iter(frames), fps=fps, audio=audio)
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert v.frames == n
        assert abs(float(v.duration * v.time_base) - n / fps) < 1 / fps
        assert abs(float(a.duration * a.time_base) - 2.0) < 1 / fps
    back = read_video(out)
    assert back.frames.shape == (n, 64, 48, 3)
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask  # the usual permissions, not a private temp file's
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def frames():  # type: ignore[no-untyped-def]
        yield np.zeros((32, 32, 3), np.uint8)
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        write_video(tmp_path / "o.mp4", frames(), fps=25.0)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_video(tmp_path / "missing" / "o.mp4", iter([np.zeros((8, 8, 3), np.uint8)]), fps=25.0)


def test_read_image_applies_exif_orientation(tmp_path: Path) -> None:
    from PIL import Image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    out = read_image(path)
    assert out.shape == (40, 20, 3)
    assert out[5, 10, 0] > 200 and out[35, 10, 0] < 60  # red half now on top


def test_read_image_errors(tmp_path: Path) -> None:
    bad = tmp_path / "face.jpg"
    bad.write_bytes(b"not an image at all" * 10)
    with pytest.raises(InputError, match="not a readable image"):
        read_image(bad)


def _timed_mp4(path: Path, frame_pts: list[int], *, audio_start: float = 0.0, video_start: int = 0) -> Path:
    """An mp4 whose frame k (grey level 10 * k) is shown at frame_pts[k] / 30 s (+ ``video_start`` / 30 s), with a
    440 Hz tone from ``audio_start`` seconds to the end."""
    with av.open(str(path), "w", format="mp4") as c:
        v = c.add_stream("libx264", rate=30)
        v.width = v.height = 64
        v.pix_fmt, v.time_base = "yuv420p", Fraction(1, 30)
        v.options = {"crf": "0"}
        a = c.add_stream("aac", rate=16000, layout="mono")
        for k, pts in enumerate(frame_pts):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 10 * k, np.uint8), format="rgb24")
            frame.pts = pts + video_start
            for packet in v.encode(frame):
                c.mux(packet)
        for packet in v.encode(None):
            c.mux(packet)
        end = (frame_pts[-1] + video_start + 1) / 30
        n = int((end - audio_start) * 16000)
        tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000) * 32767).astype(np.int16)
        for s in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, s:s + 1024], format="s16", layout="mono")
            af.sample_rate, af.pts = 16000, int(round(audio_start * 16000)) + s
            for packet in a.encode(af):
                c.mux(packet)
        for packet in a.encode(None):
            c.mux(packet)
    return path


def test_variable_frame_rate_is_read_by_timestamps(tmp_path: Path) -> None:
    """Frames shown for 1 or 2 steps of 1/30 s come back at 30 fps, each held as long as it was on screen."""
    pts = [0, 1, 3, 4, 6, 8, 9]  # steps 1, 2, 1, 2, 2, 1
    path = _timed_mp4(tmp_path / "vfr.mp4", pts)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)  # 10 frames of 1/30 s: nothing is missing
        clip = read_video(path)
    assert clip.fps == 30.0 and len(clip.frames) == 10
    assert read_video(path, max_frames=1).fps == 30.0  # the same rate however much is read
    levels = np.round(clip.frames[:, 32, 32, 0] / 10).astype(int)
    assert levels.tolist() == [0, 1, 1, 2, 3, 3, 4, 4, 5, 6]


def test_stream_start_times_are_honoured(tmp_path: Path) -> None:
    """Sound that starts 0.5 s into a file starts 0.5 s into what is read; a video stream that starts 0.2 s after
    the sound is led by its first frame for those 0.2 s; an evenly timed file is read as it is."""
    late_sound = _timed_mp4(tmp_path / "late_sound.mp4", list(range(30)), audio_start=0.5)
    audio = load_audio(late_sound)
    onset = np.argmax(np.abs(audio) > 0.1) / 16000
    assert abs(onset - 0.5) < 0.03 and len(read_video(late_sound).frames) == 30
    late_video = _timed_mp4(tmp_path / "late_video.mp4", list(range(30)), video_start=6)
    clip = read_video(late_video)
    assert clip.fps == 30.0 and len(clip.frames) == 36
    assert (np.round(clip.frames[:7, 32, 32, 0] / 10) == 0).all() and round(clip.frames[7, 32, 32, 0] / 10) == 1
    assert np.argmax(np.abs(load_audio(late_video)) > 0.1) / 16000 < 0.03


def test_a_full_disk_while_writing_names_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import talkinghead.io.video as video

    def fill_up(filename: str, *_: object, **__: object) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video, "_encode", fill_up)
    with pytest.raises(InputError, match=r"out.mp4: output could not be written \(no space left on the device\)"):
        write_video(tmp_path / "out.mp4", [np.zeros((16, 16, 3), np.uint8)], fps=25.0)
    assert not list(tmp_path.iterdir())


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KB file system (tmpfs), where this machine allows mounting one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
def test_a_real_full_disk(tiny_disk: Path, media: Path) -> None:
    """On a 64 KB disk the video runs out of room while it is written; on a full one the write probe fails before
    any work. Both: one line naming the output, status 2, nothing left."""
    cli = [sys.executable, "-m", "talkinghead", "generate", "--image", str(media / "faces" / "liveportrait_s7.jpg"),
           "--audio", str(media / "speech" / "videoretalking_1.wav"), "--size", "256", "-q", "-o"]
    proc = subprocess.run([*cli, str(tiny_disk / "out.mp4")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"talkinghead: error: {tiny_disk / 'out.mp4'}: output could not be written (no space left on the device); "
        "nothing was left there"], proc.stderr
    assert not list(tiny_disk.iterdir())
    fd = os.open(tiny_disk / "filler", os.O_WRONLY | os.O_CREAT)  # fill the disk up (unbuffered)
    try:
        while os.write(fd, b"\0" * 1024):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    start = time.perf_counter()
    proc = subprocess.run([*cli, str(tiny_disk / "out.mp4")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "output cannot be written there (No space left on device)" in proc.stderr
    assert time.perf_counter() - start < 10 and [p.name for p in tiny_disk.iterdir()] == ["filler"]
