"""The local web app: one page to upload a face and speech (plus optional style and motion clips), pick the
method and options, follow the progress and play the result.

Generations run one at a time on a worker thread, each in its own folder under the app's work folder; the page
polls ``/api/jobs/{id}`` for the stage and fraction done (reported by the progress bars,
:func:`talkinghead.progress.report_to`). Bad uploads come back as the one-line message the CLI would print, with
the file named as uploaded.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.types import Message, Receive

from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.progress import report_to
from talkinghead.registry import available_methods, default_renderer, get_method, get_renderer, missing_checkpoints
from talkinghead.spec import MOUTHS, RANGES, check_ranges, parse_edit
from talkinghead.web.live import MAX_STREAMS, add_live

PAGE = Path(__file__).parent / "page.html"
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""Largest accepted upload (per file)."""
UPLOADS = ("face", "audio", "style", "motion")
"""The file fields of the form (face and audio required)."""
MAX_REQUEST_BYTES = len(UPLOADS) * MAX_UPLOAD_BYTES + (1 << 20)
"""Largest accepted request body (every upload at its limit, plus the form's text)."""
MAX_QUEUED = 20
"""Jobs waiting or running at once; more are refused (HTTP 503), so the uploads held on disk stay bounded."""
KEEP_MINUTES = 60.0
"""Finished jobs (their uploads and video) are deleted this long after they end."""
PREVIEW_SIDE = 1024
"""The face preview looks for faces in the picture scaled to at most this many pixels on its longer side."""
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm"}
"""A face upload with one of these suffixes is a video to dub; anything else is taken as a photo."""


@dataclass
class Job:
    """One generation: ``state`` is queued, running, done or error."""

    id: str
    folder: Path
    state: str = "queued"
    stage: str = "waiting"
    progress: float = 0.0
    error: str = ""
    output: Path | None = None
    stages: dict[str, float] = field(default_factory=dict)
    """Every stage reported so far, in order, with its fraction done (some stages run at once)."""
    ended: float | None = None
    """time.monotonic() when it finished (done or error)."""

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "stage": self.stage, "progress": round(self.progress, 3),
                "stages": [[name, round(done, 3)] for name, done in list(self.stages.items())], "error": self.error,
                "video": f"/api/jobs/{self.id}/video" if self.state == "done" else None}


def _safe_name(name: str, fallback: str) -> str:
    """An uploaded file's base name reduced to safe characters (its suffix kept)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "").name).lstrip(".")
    return base or fallback


def _options(form: dict[str, str]) -> dict[str, Any]:
    """Generation options from the form's text fields (unset ones keep the API's defaults)."""
    method = form.get("method") or available_methods()[0]
    get_method(method)  # an unknown method is a one-line error listing the available ones
    out: dict[str, Any] = {"method": method}
    try:
        for key, cast in (("expression_scale", float), ("style_intensity", float), ("seed", int), ("size", int),
                          ("face_index", int)):
            if form.get(key):
                out[key] = cast(form[key])
    except ValueError as exc:
        raise TalkingHeadError(f"bad number in the form ({exc})") from None
    if form.get("still") in ("on", "true", "1"):
        out["still"] = True
    if form.get("mouth"):
        if form["mouth"] not in MOUTHS:
            raise TalkingHeadError(f"mouth must be one of {', '.join(MOUTHS)}, not {form['mouth']!r}")
        out["mouth"] = form["mouth"]
    if edits := [e for e in form.get("edits", "").split(",") if e.strip()]:
        out["edits"] = dict(parse_edit(e) for e in edits)
    check_ranges(**{k: v for k, v in out.items() if k in RANGES})  # refused now (HTTP 400), not in the job
    return out


def _roles(method: str, given: set[str]) -> set[str]:
    """The checkpoint roles a method uses with the renderer it draws with when ``given`` roles are given."""
    spec = get_method(method)
    return {r.name for r in (*spec.checkpoints, *get_renderer(default_renderer(spec, given)).checkpoints)}


class _Closing(TalkingHeadError):
    """The server is shutting down: the running generation stops at its next progress report."""

    def __init__(self) -> None:
        super().__init__("the server stopped before the video was made")


def _run(job: Job, inputs: dict[str, Path], options: dict[str, Any], checkpoints: dict[str, Path],
         closing: threading.Event) -> None:
    from talkinghead.api import generate

    def listen(stage: str, fraction: float) -> None:
        if closing.is_set():
            raise _Closing
        job.stage, job.progress = stage, fraction
        job.stages[stage] = fraction

    job.state = "running"
    face = inputs["face"]
    source = {"video": face} if face.suffix.lower() in VIDEO_SUFFIXES else {"image": face}
    spec = get_method(options["method"])
    motion = "pose_from" if "pose_from" in spec.options else "motion_from"  # the motion clip's option for the method
    extra = {"style": inputs.get("style"), motion: inputs.get("motion")}
    if "video" in source and motion == "pose_from":
        extra.pop("pose_from")  # a dubbed video keeps its own head motion
    try:
        with report_to(listen):
            used = _roles(options["method"], set(checkpoints))
            generate(audio=inputs["audio"], output=job.folder / "out.mp4", quiet=True, **source,
                     checkpoints={role: path for role, path in checkpoints.items() if role in used},
                     **{k: v for k, v in extra.items() if v is not None}, **options)
    except TalkingHeadError as exc:
        job.state, job.error = "error", re.sub(rf"{re.escape(str(job.folder))}/\w+/", "", str(exc))
    except Exception as exc:  # noqa: BLE001 - shown on the page, the server keeps running
        job.state, job.error = "error", f"internal error: {type(exc).__name__}: {exc}"
    else:
        job.output, job.state, job.stage, job.progress = job.folder / "out.mp4", "done", "done", 1.0
        job.stages = dict.fromkeys(job.stages, 1.0)
    finally:
        job.ended = time.monotonic()


class _TooLarge(Exception):
    """The request body went past :data:`MAX_REQUEST_BYTES`."""


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that stops a request body once it passes ``limit`` bytes (a body without Content-Length)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise _TooLarge
        return message

    return wrapped


async def _read_form(request: Request, limit: int, *, max_files: int, max_fields: int,
                     stated: int | None = None) -> FormData | JSONResponse:
    """The request's form, or the HTTP 413 answer when its body is larger than ``limit`` bytes: refused from its
    declared length before a byte is read, or stopped once it passes the limit. The answer states ``stated``
    bytes (default: ``limit``) as the largest upload."""
    too_large = JSONResponse({"error": f"the upload is larger than {(stated or limit) >> 20} MB"}, status_code=413)
    if int(request.headers.get("content-length") or 0) > limit:
        return too_large
    try:
        return await Request(request.scope, _limited(request.receive, limit)).form(max_files=max_files,
                                                                                   max_fields=max_fields)
    except _TooLarge:
        return too_large


def create_app(workdir: Path | None = None, *, keep_minutes: float = KEEP_MINUTES, max_queued: int = MAX_QUEUED,
               max_streams: int = MAX_STREAMS, checkpoints: dict[str, Path] | None = None) -> FastAPI:
    """The FastAPI app; jobs live under ``workdir`` (default: a new temporary folder), at most ``max_queued`` wait
    or run at once, and finished ones are deleted ``keep_minutes`` after they end; at most ``max_streams`` live
    streams (:mod:`talkinghead.web.live`) at once. ``checkpoints`` (role -> file, as ``--checkpoint``) are used by
    every generation whose method or renderer has the role: the methods whose weights do not ship become usable."""
    given = dict(checkpoints or {})
    root = _workdir(workdir)
    jobs: dict[str, Job] = {}
    lock = threading.Lock()
    worker = ThreadPoolExecutor(max_workers=1)
    closing = threading.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """At shutdown the running generation stops at its next progress report and the queued ones are dropped,
        so that stopping the server does not wait for them."""
        yield
        closing.set()
        await run_in_threadpool(lambda: worker.shutdown(wait=True, cancel_futures=True))

    app = FastAPI(title="talkinghead", lifespan=lifespan)
    add_live(app, max_streams=max_streams)

    def sweep() -> None:
        """Forget finished jobs older than ``keep_minutes`` and delete their folders."""
        now = time.monotonic()
        with lock:
            old = [j for j in jobs.values() if j.ended is not None and now - j.ended > keep_minutes * 60]
            for job in old:
                del jobs[job.id]
        for job in old:
            shutil.rmtree(job.folder, ignore_errors=True)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text()

    @app.get("/api/methods")
    def methods() -> list[dict[str, Any]]:
        """The registered methods for the page's list: name, title, summary, what faces they take, the options they
        (or their renderer) take, and the checkpoint roles they still need (none ship and the server was not
        given them: the page cannot use the method)."""
        out = []
        for name in available_methods():
            spec = get_method(name)
            options = spec.options | get_renderer(default_renderer(spec, set(given))).options
            needs = missing_checkpoints(spec, set(given))
            out.append({"name": name, "title": spec.title, "summary": spec.summary, "photo": spec.photo,
                        "video": spec.video, "needs": needs,
                        "options": sorted(options | ({"motion"} if options & {"pose_from", "motion_from"} else set()))})
        return out

    @app.post("/api/faces")
    async def faces(request: Request) -> JSONResponse:
        """The faces in an uploaded photo (or a video's first frame), the largest first, as boxes (x0, y0, x1, y1)
        in fractions of the picture: the page draws them over its preview, and a click picks the face."""
        form = await _read_form(request, MAX_UPLOAD_BYTES + (1 << 20), max_files=1, max_fields=2,
                                stated=MAX_UPLOAD_BYTES)
        if isinstance(form, JSONResponse):
            return form
        try:
            upload = form.get("face")
            if upload is None or isinstance(upload, str) or not upload.filename:
                return JSONResponse({"error": "no face file uploaded"}, status_code=400)
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                path = Path(tmp) / _safe_name(upload.filename, "face")
                with path.open("wb") as out:
                    shutil.copyfileobj(upload.file, out, 1 << 20)
                try:
                    return JSONResponse(await run_in_threadpool(_find_faces, path))
                except TalkingHeadError as exc:
                    return JSONResponse({"error": str(exc).replace(str(path), upload.filename)}, status_code=400)
        finally:
            await form.close()

    @app.post("/api/generate")
    async def submit(request: Request) -> JSONResponse:
        sweep()
        form = await _read_form(request, MAX_REQUEST_BYTES, max_files=len(UPLOADS), max_fields=20)
        if isinstance(form, JSONResponse):
            return form
        try:
            options = _options({k: v for k, v in form.items() if isinstance(v, str)})
            uploads = _uploads(form)
        except TalkingHeadError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except _TooLarge as exc:
            return JSONResponse({"error": str(exc)}, status_code=413)
        with lock:
            if sum(j.ended is None for j in jobs.values()) >= max_queued:
                await form.close()
                return JSONResponse({"error": f"busy: {max_queued} videos are waiting; try again in a while"},
                                    status_code=503)
        job = Job(id=secrets.token_hex(8), folder=root / secrets.token_hex(8))
        inputs: dict[str, Path] = {}
        try:
            for key, upload in uploads.items():  # copied in chunks: an upload is never held in memory whole
                path = job.folder / key / _safe_name(upload.filename or key, key)
                path.parent.mkdir(parents=True)
                with path.open("wb") as out:
                    shutil.copyfileobj(upload.file, out, 1 << 20)
                inputs[key] = path
        except OSError as exc:
            shutil.rmtree(job.folder, ignore_errors=True)
            return JSONResponse({"error": f"the upload could not be stored ({exc.strerror or exc})"}, status_code=507)
        finally:
            await form.close()
        with lock:
            jobs[job.id] = job
        worker.submit(_run, job, inputs, options, given, closing)
        return JSONResponse(job.status())

    def find(job_id: str) -> Job:
        sweep()
        with lock:
            if job_id not in jobs:
                raise HTTPException(404, "no such job")
            return jobs[job_id]

    @app.get("/api/jobs/{job_id}")
    def status(job_id: str) -> dict[str, Any]:
        return find(job_id).status()

    @app.get("/api/jobs/{job_id}/video")
    def video(job_id: str) -> FileResponse:
        job = find(job_id)
        if job.output is None:
            raise HTTPException(409, "the video is not ready")
        return FileResponse(job.output, media_type="video/mp4", filename="talkinghead.mp4")

    return app


def _find_faces(path: Path) -> dict[str, Any]:
    """The faces of a photo, or of a video's first frame, for the page's preview (see ``/api/faces``)."""
    from talkinghead.face.mesh import find_faces, mesh_box
    from talkinghead.io import read_image, read_video, resize_longer

    if path.suffix.lower() in VIDEO_SUFFIXES:
        clip = read_video(path, max_side=PREVIEW_SIDE, max_frames=1)
        image = clip.frames[0]
    else:
        image = resize_longer(read_image(path), PREVIEW_SIDE)
    h, w = image.shape[:2]
    boxes = [np.clip(mesh_box(m) / (w, h, w, h), 0.0, 1.0).round(4).tolist()
             for m in find_faces(image, source=str(path))]
    return {"width": w, "height": h, "faces": boxes}


def _uploads(form: FormData) -> dict[str, UploadFile]:
    """The uploaded files by field: face and audio required, each at most :data:`MAX_UPLOAD_BYTES`."""
    found = {}
    for key in UPLOADS:
        upload = form.get(key)
        if upload is None or isinstance(upload, str) or not upload.filename:
            if key in ("face", "audio"):
                raise TalkingHeadError(f"no {key} file uploaded")
            continue
        if (upload.size or 0) > MAX_UPLOAD_BYTES:
            raise _TooLarge(f"{upload.filename}: larger than {MAX_UPLOAD_BYTES >> 20} MB")
        found[key] = upload
    return found


def _workdir(workdir: Path | None) -> Path:
    """The work folder, created and checked for writing now (not at the first upload)."""
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="talkinghead-web-"))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / f".probe-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(workdir, f"cannot be used as the work folder ({exc.strerror or exc})") from None
    return workdir


def serve(*, host: str = "127.0.0.1", port: int = 7860, workdir: Path | None = None,
          keep_minutes: float = KEEP_MINUTES, max_queued: int = MAX_QUEUED, max_streams: int = MAX_STREAMS,
          checkpoints: dict[str, Path] | None = None) -> None:
    """Run the web app until interrupted (options: :func:`create_app`); a temporary work folder (no ``workdir``) is
    deleted at exit."""
    import socket

    import uvicorn

    with socket.socket() as probe:  # a port in use fails now, before the page is announced
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise TalkingHeadError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    root = _workdir(workdir)
    try:
        print(f"talkinghead: serving on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr)
        uvicorn.run(create_app(root, keep_minutes=keep_minutes, max_queued=max_queued, max_streams=max_streams,
                               checkpoints=checkpoints),
                    host=host, port=port, log_level="warning", ws="wsproto")
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
