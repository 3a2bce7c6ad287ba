"""The web server's limits and clean-up, through a real `talkinghead serve` process: oversized bodies refused
before they are read, no job folder for a rejected request, finished jobs deleted, a bounded burst, and one-line
start-up errors."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from helpers import write_wav

CLI = [sys.executable, "-m", "talkinghead"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(workdir: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workdir", str(workdir), *extra],
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            requests.get(url + "/api/methods", timeout=2)
            return proc, url
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("the server did not start")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    workdir = tmp_path / "work"
    proc, url = _start(workdir, "--keep-minutes", "0.02")  # finished jobs are deleted after 1.2 s
    yield url, workdir, proc
    proc.terminate()
    proc.wait(10)


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


def test_oversized_body_is_refused_before_it_is_read(server: tuple[str, Path, subprocess.Popen]) -> None:
    url, workdir, _ = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:  # declares 5 GB, sends a few bytes
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                  b"Content-Length: 5000000000\r\n\r\n--b\r\n")
        reply = ""
        while not reply.endswith("}"):  # the JSON body may come in a second packet
            chunk = s.recv(4096).decode()
            if not chunk:
                break
            reply += chunk
    assert reply.startswith("HTTP/1.1 413") and "larger than" in reply
    assert not any(workdir.iterdir())


def test_rejected_requests_leave_no_job_folder(server: tuple[str, Path, subprocess.Popen], media: Path) -> None:
    url, workdir, _ = server
    assert requests.post(url + "/api/generate", timeout=30).status_code == 400  # an empty POST
    reply = requests.post(url + "/api/generate", data={"method": "nope"}, timeout=30,
                       files={"face": ("f.jpg", (media / "faces" / "liveportrait_s7.jpg").read_bytes())})
    assert reply.status_code == 400 and "nope" in reply.json()["error"]
    assert not any(workdir.iterdir())


@pytest.mark.slow
def test_a_burst_is_bounded_and_finished_jobs_are_deleted(server: tuple[str, Path, subprocess.Popen], media: Path,
                                                          tmp_path: Path) -> None:
    """20 requests and 5 oversized uploads at once: the oversized are refused, the others queue and finish, the
    server's memory stays under 1 GB, and each job's folder is gone a little after it ends."""
    url, workdir, proc = server
    import numpy as np

    t = np.arange(16000) / 16000  # 1 s of a voice-like tone
    speech = write_wav(tmp_path / "s.wav", 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)), 16000)
    face = (media / "faces" / "liveportrait_s7.jpg").read_bytes()
    big = tmp_path / "big.wav"
    with big.open("wb") as f:  # 210 MB: over the 200 MB limit of one upload
        f.truncate(210 << 20)
    ids = []
    with requests.Session() as client:
        for _ in range(20):
            reply = client.post(url + "/api/generate", data={"size": "128"},
                                files={"face": ("f.jpg", face), "audio": ("s.wav", speech.read_bytes())})
            assert reply.status_code == 200, reply.text
            ids.append(reply.json()["id"])
        for _ in range(5):
            with big.open("rb") as f:
                reply = client.post(url + "/api/generate", files={"face": ("f.jpg", face), "audio": ("b.wav", f)})
            assert reply.status_code == 413 and "larger than 200 MB" in reply.json()["error"]
        deadline = time.time() + 600
        states = {}
        while time.time() < deadline:
            states = {i: client.get(f"{url}/api/jobs/{i}").json().get("state", "gone") for i in ids}
            if all(s in ("done", "gone", "error") for s in states.values()):
                break
            time.sleep(1)
    assert "error" not in states.values() and all(s in ("done", "gone") for s in states.values()), states
    assert _peak_rss_mb(proc.pid) < 1024
    time.sleep(2.5)  # past --keep-minutes
    with requests.Session() as client:
        assert all(client.get(f"{url}/api/jobs/{i}").status_code == 404 for i in ids)
    assert not any(workdir.iterdir())


def test_start_up_errors_are_one_line(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("x")
    proc = subprocess.run([*CLI, "serve", "--workdir", str(blocked / "sub"), "--port", str(_free_port())],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot be used as the work folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
        proc = subprocess.run([*CLI, "serve", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "serving on" not in proc.stderr
    assert not {n for n in set(os.listdir(os.environ.get("TMPDIR", "/tmp"))) - before if "talkinghead" in n}
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_full_queue_refuses_with_503_and_bad_numbers_with_400(tmp_path: Path, media: Path) -> None:
    proc, url = _start(tmp_path / "work", "--max-queued", "2")
    try:
        files = {"face": ("f.jpg", (media / "faces" / "liveportrait_s7.jpg").read_bytes()),
                 "audio": ("s.wav", (media / "speech" / "videoretalking_1.wav").read_bytes())}
        reply = requests.post(url + "/api/generate", data={"seed": "-1"}, files=files, timeout=30)
        assert reply.status_code == 400 and "seed must be between 0 and" in reply.json()["error"]
        codes = [requests.post(url + "/api/generate", files=files, timeout=30).status_code for _ in range(3)]
        assert codes == [200, 200, 503]  # each video takes seconds: the first two still wait or run
        proc.terminate()  # the running video stops at its next frame, the waiting one is dropped
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 128 + signal.SIGTERM and err.strip().endswith("stopped by SIGTERM"), err[-500:]
    finally:
        proc.kill()
        proc.wait(10)


def test_faces_edits_and_server_checkpoints(tmp_path: Path, media: Path) -> None:
    """/api/faces boxes the faces of a photo or of a video's first frame; a bad edit is refused at once; models given
    to `serve --checkpoint` count as given for every method that uses their role."""
    weights = tmp_path / "styleheat.pt"
    weights.write_bytes(b"not read until a video is made")
    proc, url = _start(tmp_path / "work", "--checkpoint", f"styleheat={weights}")
    try:
        photo = requests.post(url + "/api/faces", timeout=60,
                              files={"face": ("p.jpg", (media / "faces" / "liveportrait_s7.jpg").read_bytes())}).json()
        clip = requests.post(url + "/api/faces", timeout=60, files={"face": (
            "c.mp4", (media / "talking" / "videoretalking_face1.mp4").read_bytes())}).json()
        for found in (photo, clip):
            assert len(found["faces"]) == 1 and max(found["width"], found["height"]) <= 1024
            x0, y0, x1, y1 = found["faces"][0]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and (x1 - x0) * (y1 - y0) > 0.01
        reply = requests.post(url + "/api/faces", files={"face": ("notes.txt", b"text")}, timeout=60)
        assert reply.status_code == 400 and reply.json()["error"].startswith("notes.txt: ")
        files = {"face": ("f.jpg", (media / "faces" / "liveportrait_s7.jpg").read_bytes()),
                 "audio": ("s.wav", (media / "speech" / "videoretalking_1.wav").read_bytes())}
        reply = requests.post(url + "/api/generate", data={"edits": "smile"}, files=files, timeout=30)
        assert reply.status_code == 400 and reply.json()["error"] == "an edit is NAME=STRENGTH (e.g. smile=+1.0), " \
                                                                     "not 'smile'"
        methods = {m["name"]: m for m in requests.get(url + "/api/methods", timeout=30).json()}
        assert methods["styleheat"]["needs"] == [] and "edits" in methods["styleheat"]["options"]  # the rest ship
        assert methods["viseme"]["needs"] == [] and methods["styletalker"]["needs"] == []
    finally:
        proc.terminate()
        proc.wait(10)
    proc = subprocess.run([*CLI, "serve", "--checkpoint", f"styleheat={tmp_path / 'missing.pt'}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("missing.pt: file not found")
