"""Media I/O on real files and exactly-known synthetic signals."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from helpers import write_wav
from talkinghead.errors import InputError
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
