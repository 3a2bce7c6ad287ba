"""Bad input, as a careless or hostile user gives it: broken files made here (truncated, empty, bombs, wrong
types, tiny and huge images), outputs that cannot be written or would overwrite an input, options out of range,
and signals. Each case, through the real command line, must: exit with status 2, print exactly one line that
names the file (or option) and the problem, leave nothing next to the output, and leave every input unchanged."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import write_wav
from talkinghead import cli


@pytest.fixture(scope="module")
def files(media: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good inputs copied here, and broken ones made from them."""
    root = tmp_path_factory.mktemp("bad inputs")  # a space in every path
    face, speech = root / "face ü.jpg", root / "speech.wav"
    shutil.copy(media / "faces" / "liveportrait_s7.jpg", face)
    shutil.copy(media / "speech" / "videoretalking_1.wav", speech)
    video = root / "clip.mp4"
    shutil.copy(media / "talking" / "videoretalking_face5.mp4", video)
    out = {"face": face, "speech": speech, "video": video}
    out["empty"] = root / "empty.wav"
    out["empty"].write_bytes(b"")
    out["text"] = root / "notes.txt"
    out["text"].write_text("not media\n")
    out["header_only"] = root / "header_only.wav"
    out["header_only"].write_bytes(speech.read_bytes()[:44])
    out["silent"] = write_wav(root / "silent.wav", np.zeros(16000), 16000)
    for w, h in ((1, 1), (7, 8), (3000, 4)):
        out[f"px{w}x{h}"] = root / f"{w}x{h}.png"
        cv2.imwrite(str(out[f"px{w}x{h}"]), np.zeros((h, w, 3), np.uint8))
    out["bomb"] = root / "bomb.png"  # 40000 x 40000 pixels in 1.6 MB
    cv2.imwrite(str(out["bomb"]), np.zeros((40000, 40000), np.uint8))
    with Image.open(face) as im:
        out["gif"] = root / "anim.gif"
        im.save(out["gif"], save_all=True, append_images=[im.rotate(5)])
    out["corrupt_jpg"] = root / "corrupt.jpg"
    out["corrupt_jpg"].write_bytes(face.read_bytes()[:200])
    out["corrupt_mp4"] = root / "corrupt.mp4"
    out["corrupt_mp4"].write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    out["grey"] = root / "grey.png"
    cv2.imwrite(str(out["grey"]), np.full((256, 256, 3), 128, np.uint8))
    return out


CASES = [  # (argv with {names} of files, the file or option named, words of the problem)
    ("generate --image {face} --audio {root}/missing.wav", "missing.wav", "file not found"),
    ("generate --image {face} --audio {empty}", "empty.wav", "empty"),
    ("generate --image {face} --audio {text}", "notes.txt", "not a readable media file"),
    ("generate --image {face} --audio {header_only}", "header_only.wav", "not a readable media file"),
    ("generate --image {face} --audio {silent}", "silent.wav", "silent"),
    ("generate --image {px1x1} --audio {speech}", "1x1.png", "too small"),
    ("generate --image {px7x8} --audio {speech}", "7x8.png", "too small"),
    ("generate --image {px3000x4} --audio {speech}", "3000x4.png", "too small"),
    ("generate --image {bomb} --audio {speech}", "bomb.png", "too large"),
    ("generate --image {gif} --audio {speech}", "anim.gif", "animated GIF"),
    ("generate --image {video} --audio {speech}", "clip.mp4", "is a video"),
    ("generate --image {speech} --audio {speech}", "speech.wav", "sound file"),
    ("generate --image {text} --audio {speech}", "notes.txt", "not a readable image"),
    ("generate --image {corrupt_jpg} --audio {speech}", "corrupt.jpg", "image"),
    ("generate --image {grey} --audio {speech}", "grey.png", "no face found"),
    ("dub --video {corrupt_mp4} --audio {speech}", "corrupt.mp4", "not a readable media file"),
    ("dub --video {text} --audio {speech}", "notes.txt", "not a readable media file"),
    ("generate --image {face} --audio {speech} --seed -1", "seed", "between 0 and"),
    ("generate --image {face} --audio {speech} --face-index -1", "face index", "between 0 and"),
    ("generate --image {face} --audio {speech} --fps 0", "fps", "between 1 and 120"),
    ("generate --image {face} --audio {speech} --size 10", "size", "between 64 and 4096"),
    ("generate --image {face} --audio {speech} --style {video}", "--style", "does not apply to --method viseme"),
    ("generate --image {face} --audio {speech} --method styletalk --style {face}", "face ü.jpg", "still image"),
    ("generate --image {face} --audio {speech} --method iplap --checkpoint landmarks={face}", "face ü.jpg",
     "not a model checkpoint"),
    ("generate --image {face} --audio {speech} --method iplap --checkpoint renderer={text}", "notes.txt",
     "not a model checkpoint"),
    ("generate --image {face} --audio {speech} --method styleheat --checkpoint styleheat={text}", "notes.txt",
     "not a model checkpoint"),
]
OUTPUTS = [  # (output, the problem)
    ("{video}", "same file as --video"),
    ("{root}/no such folder/out.mp4", "does not exist"),
    ("/proc/out.mp4", "cannot be written there"),
    ("{root}/" + "a" * 300 + ".mp4", "file name is too long"),
    ("{root}", "is a directory"),
    ("{root}/out.avi", "must be an .mp4 file"),
]


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main([*argv, "-q"])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "named", "problem"), CASES, ids=[c[0].split("{")[-1] for c in CASES])
def test_bad_input_is_one_line(argv: str, named: str, problem: str, files: dict[str, Path],
                               capsys: pytest.CaptureFixture[str]) -> None:
    root = files["face"].parent
    out = root / "out" / "result.mp4"
    out.parent.mkdir(exist_ok=True)
    before = _digest(list(root.iterdir()))
    temp = set(os.listdir(tempfile.gettempdir()))
    args = shlex.split(argv.format(root=shlex.quote(str(root)), **{k: shlex.quote(str(v)) for k, v in files.items()}))
    code, lines = _run([*args, "-o", str(out)], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("talkinghead: error: ") and named in lines[0] and problem in lines[0], lines
    assert not any(out.parent.iterdir()), list(out.parent.iterdir())  # nothing left next to the output
    assert set(os.listdir(tempfile.gettempdir())) <= temp  # nor in the temp folder
    assert _digest(list(before)) == before  # every input unchanged


@pytest.mark.slow
@pytest.mark.parametrize(("output", "problem"), OUTPUTS, ids=["input", "no folder", "proc", "300 bytes", "dir",
                                                              "avi"])
def test_bad_output_is_refused_before_the_work(output: str, problem: str, files: dict[str, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = files["face"].parent
    before = _digest(list(root.iterdir()))
    listing = sorted(p.name for p in root.iterdir())
    start = time.perf_counter()
    code, lines = _run(["dub", "--video", str(files["video"]), "--audio", str(files["speech"]), "-o",
                        output.format(root=root, video=files["video"])], capsys)
    assert code == 2 and len(lines) == 1 and problem in lines[0], lines
    assert time.perf_counter() - start < 5  # refused before the face and speech analysis
    assert _digest(list(before)) == before and sorted(p.name for p in root.iterdir()) == listing


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_writing_leaves_nothing(sig: signal.Signals, media: Path, tmp_path: Path) -> None:
    """Stopped while the video is being written, the command removes its partial file and says so on one line.

    Its stderr goes to a file (a pipe nobody reads could block it); should the partial file not appear, the
    command is aborted with Python's fault handler on, so that the failure shows where every thread was."""
    folder, log = tmp_path / "out", tmp_path / "stderr.txt"
    folder.mkdir()
    with log.open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "talkinghead", "generate", "--image",
                                 str(media / "faces" / "liveportrait_s7.jpg"), "--audio",
                                 str(media / "speech" / "musetalk_eng.wav"), "--size", "128", "-o",
                                 str(folder / "out.mp4"), "-q"], stderr=err_file)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not list(folder.glob(".talkinghead-*.partial.mp4")):
            time.sleep(0.05)
        if not list(folder.glob(".talkinghead-*.partial.mp4")):
            if proc.poll() is None:
                proc.send_signal(signal.SIGABRT)
            proc.wait(60)
            pytest.fail(f"the partial file never appeared; exit status {proc.returncode}: {log.read_text()[-4000:]}")
        proc.send_signal(sig)
        proc.wait(60)
    assert proc.returncode == 128 + sig and log.read_text().strip() == f"talkinghead: stopped by {sig.name}"
    assert not list(folder.iterdir())


@pytest.mark.slow
def test_a_signal_while_the_speech_is_analysed_stops_cleanly(media: Path, tmp_path: Path) -> None:
    """Stopped while the speech is analysed in its background thread, the command waits for that thread to stop
    (no native code left running into the interpreter's exit: that aborts) and exits with the signal's status."""
    proc = subprocess.Popen([sys.executable, "-m", "talkinghead", "generate", "--image",
                             str(media / "faces" / "liveportrait_s7.jpg"), "--audio",
                             str(media / "speech" / "musetalk_eng.wav"), "--size", "128", "-o",
                             str(tmp_path / "out.mp4")], stderr=subprocess.PIPE, text=True)
    seen = ""
    while "speech analysis" not in seen and proc.poll() is None:  # the bar appears once the face is found
        seen += proc.stderr.read(1)  # type: ignore[union-attr]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-500:]
    assert err.strip().splitlines()[-1].endswith("talkinghead: stopped by SIGTERM")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_odd_but_valid_input_works(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                   ) -> None:
    """Unicode and spaces in paths, 8 kHz three-channel speech, an AVIF photo: accepted, one video written."""
    rng = np.random.default_rng(0)
    t = np.arange(8000 * 2) / 8000
    voice = 0.3 * np.sin(2 * np.pi * 150 * t)[:, None] * (1 + rng.normal(0, 0.1, (len(t), 3)))
    speech = write_wav(tmp_path / "voix à 8 kHz.wav", voice, 8000, channels=3)
    photo = tmp_path / "visage 顔.avif"
    with Image.open(files["face"]) as im:
        im.save(photo)
    out = tmp_path / ("sortie " + "é" * 121 + ".mp4")  # 253 bytes: a legal name, however long the temp name
    code, lines = _run(["generate", "--image", str(photo), "--audio", str(speech), "--size", "128", "-o",
                        str(out)], capsys)
    assert code == 0 and out.stat().st_size > 0 and not lines, lines
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([speech.name, photo.name, out.name])


@pytest.mark.slow
def test_truncated_speech_works_with_one_warning(files: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A WAV cut after 1.9 s of its 5 s: the video covers what was decoded, and one line says so."""
    cut = tmp_path / "cut.wav"
    cut.write_bytes(files["speech"].read_bytes()[:340_000])
    out = tmp_path / "out.mp4"
    code, lines = _run(["generate", "--image", str(files["face"]), "--audio", str(cut), "--size", "128", "-o",
                        str(out)], capsys)
    assert code == 0 and out.exists() and len(lines) == 1, lines
    assert lines[0].startswith("talkinghead: warning: ") and "cut.wav: only 1.9" in lines[0] and "5.02 s" in lines[0]
