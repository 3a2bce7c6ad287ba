"""Command line: the only place that parses arguments.

    talkinghead generate --image FACE.jpg --audio SPEECH.wav -o out.mp4
    talkinghead dub --video FACE.mp4 --audio SPEECH.wav -o dubbed.mp4
    talkinghead generate --image FACE.jpg --audio SPEECH.wav --method M --checkpoint ROLE=PATH -o out.mp4

The methods, their options, checkpoint roles and their own subcommands (training) come from the registry
(:mod:`talkinghead.registry`): this file names no method.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path

from talkinghead import __version__
from talkinghead.constants import DEFAULT_FPS
from talkinghead.errors import InputWarning, TalkingHeadError
from talkinghead.registry import (
    available_methods,
    available_renderers,
    checkpoint_roles,
    commands,
    get_method,
    get_renderer,
    load_command,
    methods_taking,
)
from talkinghead.spec import MOUTHS, parse_edit


def _parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``chosen``: the subcommand on the command line, whose family command is loaded."""
    parser = argparse.ArgumentParser(prog="talkinghead", description="Talking-head videos from a face and speech.")
    parser.add_argument("--version", action="version", version=f"talkinghead {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="make a talking-head video from a face photo or video and speech",
                         description="Make a talking-head video (mp4, h264 + aac) from a face and speech.")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", metavar="FACE", help="face photo (jpg, png, ...)")
    src.add_argument("--video", metavar="FACE_VIDEO", help="face video to dub (its head motion is kept)")
    _output_options(gen, size_help="longer side of the output in pixels (default: 512 for a photo, the video's own "
                                   "up to 1280)")
    gen.add_argument("--seed", type=int, default=0, help="seed for blinks and head motion (default: 0)")
    gen.add_argument("--still", action="store_true", help="no generated head motion" + _used("still"))
    gen.add_argument("--expression-scale", type=float, default=1.0, metavar="X",
                     help="mouth motion amplitude (default: 1.0)" + _used("expression_scale"))
    gen.add_argument("--pose-from", metavar="VIDEO",
                     help="copy head motion from the face in this video" + _used("pose_from"))
    gen.add_argument("--blink", action=argparse.BooleanOptionalAction, default=None,
                     help="generate eye blinks (default: on for a photo, off for a video)" + _used("blink"))
    gen.add_argument("--style", metavar="STYLE_CLIP",
                     help="copy the speaking style of the face in this video" + _used("style"))
    gen.add_argument("--style-intensity", type=float, default=1.0, metavar="X",
                     help="0 = neutral, 1 = the style clip's style, up to 1.5 = exaggerated (default: 1.0)"
                     + _used("style_intensity"))
    gen.add_argument("--motion-from", metavar="VIDEO",
                     help="head motion (and upper face or blinks) from the face in this video" + _used("motion_from"))
    gen.add_argument("--invert-steps", type=int, default=0, metavar="N",
                     help="optimisation steps refining the photo's latent code after the encoder (default: 0)"
                     + _used("invert_steps"))
    gen.add_argument("--edit", action="append", default=[], metavar="NAME=STRENGTH", type=_edit,
                     help="move an attribute gradually over the video, e.g. smile=+1.0 (standard deviations, -3..3; "
                          "names: the model's edit directions; repeatable)" + _used("edits"))

    dub = sub.add_parser("dub", help="dub a face video: its mouth follows new speech, everything else is kept",
                         description="Lip-sync a face video to speech (mp4, h264 + aac): the methods that dub keep "
                                     "the video's head motion and eyes; the video loops back and forth when the "
                                     "speech is longer.")
    dub.add_argument("--video", metavar="FACE_VIDEO", required=True, help="face video to dub")
    _output_options(dub, size_help="longer side of the output in pixels (default: the video's own up to 1280)")

    pre = sub.add_parser("preprocess", help="preprocess a corpus of talking-face videos for training",
                         description="Every clip -> 25 fps face crops, mesh, pose, coefficients, blink, mel, "
                                     "phonemes, loudness/voice activity and identity embedding (resumable).")
    pre.add_argument("src", type=Path, help="corpus folder")
    pre.add_argument("dst", type=Path, help="output dataset folder (re-runs skip finished clips)")
    pre.add_argument("--layout", choices=("folder", "voxceleb2", "lrs2", "lrs3", "hdtf", "mead"), default="folder")
    pre.add_argument("--workers", type=int, default=1,
                     help="parallel worker processes, or a local Ray instance's CPUs (default: 1)")
    pre.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: worker processes here; ray: one task a clip on a Ray cluster (pip install "
                          "'talkinghead[ray]'; the package on every node, the output folder shared) (default: local)")
    pre.add_argument("--address", default=None, metavar="ADDR",
                     help="--executor ray: the cluster's address (e.g. ray://head:10001; default: a local Ray "
                          "instance, or RAY_ADDRESS)")
    pre.add_argument("--limit", type=int, default=None, help="process at most this many clips")
    pre.add_argument("-q", "--quiet", action="store_true")

    syn = sub.add_parser("synth", help="make a synthetic corpus with exact phoneme times and labelled styles",
                         description="espeak-ng sentences + faces animated by the default engine in labelled "
                                     "speaking styles, stored in the preprocess format (resumable).")
    syn.add_argument("dst", type=Path, help="output dataset folder")
    syn.add_argument("--clips", type=int, required=True, help="number of clips")
    syn.add_argument("--faces", type=Path, nargs="+", default=[Path("../shared/media/faces")],
                     help="folder(s) of face photos and/or videos (a video gives its first frame; "
                          "default: ../shared/media/faces)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--workers", type=int, default=1)
    syn.add_argument("-q", "--quiet", action="store_true")

    ev = sub.add_parser("evaluate", help="image, landmark, identity, pose, sync and diversity metrics",
                        description="Compare generated videos with references (two videos, or two folders matched "
                                    "by file name), or run the reconstruction protocol with --reconstruct.")
    ev.add_argument("--generated", type=Path, help="generated video or folder")
    ev.add_argument("--reference", type=Path, help="reference video or folder")
    ev.add_argument("--reconstruct", type=Path, metavar="CLIPS_DIR",
                    help="regenerate every clip from its first frame + own audio with --method, then evaluate")
    ev.add_argument("--method", choices=available_methods(), default=available_methods()[0],
                    help=f"method to reconstruct with (default: {available_methods()[0]})")
    ev.add_argument("--protocol", choices=("photo", "dub"), default="photo",
                    help="reconstruction from the first frame (photo) or from the clip's own frames (dub)")
    ev.add_argument("--references", type=int, default=None, help="renderer reference frames" + _used("references"))
    ev.add_argument("--mouth", choices=MOUTHS, default=None, help="the warp renderer's mouth (default: learned)"
                    + _used("mouth"))
    ev.add_argument("--keep", type=Path, default=None, metavar="DIR",
                    help="--reconstruct: keep the generated videos in this folder")
    ev.add_argument("--audio", type=Path, default=None,
                    help="driving speech: a file, or a folder of files named like the generated videos "
                         "(default: each generated video's own audio track)")
    ev.add_argument("--syncnet", type=Path, default=None, help="SyncNet checkpoint (default: the shipped one)")
    _checkpoint_option(ev)
    ev.add_argument("-o", "--output", type=Path, default=None, help="write the results as JSON")
    ev.add_argument("-q", "--quiet", action="store_true")

    ts = sub.add_parser("train-syncnet", help="train the lip-sync expert (SyncNet) on preprocessed datasets",
                        description="Contrastive (InfoNCE) or binary (Wav2Lip's) SyncNet, trained with PyTorch "
                                    "Lightning on the datasets' train splits (GPUs and DDP when present).")
    ts.add_argument("datasets", nargs="+", type=Path, help="preprocessed dataset folders")
    ts.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write (.pt)")
    ts.add_argument("--objective", choices=("contrastive", "binary"), default="contrastive")
    ts.add_argument("--visual", choices=("image", "mesh"), default="image",
                    help="what the visual stream sees: mouth crops or lip/jaw mesh points (default: image)")
    ts.add_argument("--speech", choices=("mel", "phones", "whisper", "whisper3"), default="mel",  # SPEECH_INPUTS
                    help="what the audio stream reads: mel windows, or 5-frame windows of phone one-hots or Whisper "
                         "tiny.en encoder features (whisper: the last layer, whisper3: the third block) (default: "
                         "mel; the sync losses of training need mel)")
    ts.add_argument("--steps", type=int, default=2000)
    ts.add_argument("--minutes", type=float, default=None, help="stop after this long (the steps so far are saved)")
    ts.add_argument("--batch", type=int, default=32)
    ts.add_argument("--negatives", type=int, default=4, help="shifted audio windows per item (default: 4)")
    ts.add_argument("--lr", type=float, default=1e-3)
    ts.add_argument("--augment", action="store_true",
                    help="augment training items (mesh motion scale and noise / mirrored, brightened crops; mel level)")
    ts.add_argument("--tiny", action="store_true", help="the tiny CPU test configuration")
    ts.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    ts.add_argument("--devices", default="auto", help="Lightning devices (e.g. 4 for four GPUs)")
    ts.add_argument("-q", "--quiet", action="store_true")

    sv = sub.add_parser("serve", help="a local web page to make talking-head videos",
                        description="Serve the web app: upload (or record) speech and a face, pick the method and "
                                    "options, follow the progress, play the result. Listens on 127.0.0.1 only "
                                    "unless --host says otherwise.")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    sv.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    sv.add_argument("--workdir", type=Path, default=None,
                    help="folder for uploads and results (default: a temporary folder, deleted at exit)")
    sv.add_argument("--keep-minutes", type=float, default=60.0, metavar="M",
                    help="delete a finished job's uploads and video this long after it ends (default: 60)")
    sv.add_argument("--max-queued", type=int, default=20, metavar="N",
                    help="videos waiting or being made at once; more are refused until one ends (default: 20)")
    sv.add_argument("--max-streams", type=int, default=2, metavar="N",
                    help="live streams (ws://HOST:PORT/api/live) at once; more are refused until one ends (default: 2)")
    _checkpoint_option(sv)

    card = sub.add_parser("datacard", help="counts, durations, identities and per-split statistics of datasets")
    card.add_argument("datasets", nargs="+", type=Path, help="preprocessed dataset folders")
    card.add_argument("-o", "--output", type=Path, default=None,
                      help="writes OUTPUT.md and OUTPUT.json (default: DATACARD in the first dataset)")

    fit = sub.add_parser("fit-face-model", help="fit the face coefficient model (identity + expression PCA)",
                         description="Fit on the train splits of preprocessed datasets; the round-trip error is "
                                     "measured on their val/test splits.")
    fit.add_argument("datasets", nargs="+", type=Path, help="preprocessed dataset folders")
    fit.add_argument("-o", "--output", type=Path, required=True, help="model file (.npz)")
    fit.add_argument("--expression", type=int, default=64, help="expression components (default: 64)")
    fit.add_argument("--identity", type=int, default=16, help="identity components (default: 16)")
    fit.add_argument("--reencode", action="store_true", help="rewrite the datasets' coefficients with the new model")
    fit.add_argument("-q", "--quiet", action="store_true")

    for ref in commands():  # the families' own subcommands; only the one asked for is imported
        p = sub.add_parser(ref.name, help=ref.help)
        if ref.name == chosen:
            command = load_command(ref)
            p.description = command.description
            command.arguments(p)
            p.set_defaults(run=command.run)
    return parser


def _output_options(p: argparse.ArgumentParser, *, size_help: str) -> None:
    """Options shared by generate and dub."""
    p.add_argument("--audio", metavar="SPEECH", required=True, help="speech (wav, mp3, m4a, mp4, ...)")
    p.add_argument("-o", "--output", metavar="OUT.mp4", required=True, help="video to write")
    photo = p.prog.endswith("generate")
    names = [m for m in available_methods() if photo or get_method(m).video]  # dub: the methods that take a video
    p.add_argument("--method", choices=names, default=names[0], metavar="METHOD",
                   help="; ".join(f"{m}: {get_method(m).summary}" for m in names) + f" (default: {names[0]})")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS, help="output frame rate (default: 25)")
    p.add_argument("--size", type=int, default=None, help=size_help)
    p.add_argument("--face-index", type=int, default=0, metavar="N",
                   help="which face when there are several, 0 = largest (default: 0)")
    p.add_argument("--language", choices=("auto", "en", "other"), default="auto",
                   help="speech language: auto-detect English, force English, or other (default: auto)")
    p.add_argument("--renderer", choices=available_renderers(), default=None,
                   help="; ".join(f"{r}: {get_renderer(r).summary}" for r in available_renderers())
                   + " (default: the method's own)")
    p.add_argument("--references", type=int, default=None, metavar="N",
                   help="renderer reference frames (default: 1/5 of the video's frames, at most 25)"
                   + _used("references"))
    p.add_argument("--mouth", choices=MOUTHS, default=None,
                   help="the mouth's inside: learned (a small network trained on real mouths paints teeth, tongue "
                        "and cavity) or painted (drawn teeth bands, no weights) (default: learned)" + _used("mouth"))
    _checkpoint_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes")


def _used(option: str) -> str:
    """" (methods: ...)": the methods that take an option, for its help."""
    return f" (methods: {', '.join(methods_taking(option))})"


def _checkpoint_option(p: argparse.ArgumentParser) -> None:
    """``--checkpoint ROLE=PATH`` (repeatable), its help listing every registered role."""
    roles = checkpoint_roles()
    p.add_argument("--checkpoint", action="append", default=[], metavar="ROLE=PATH", type=_role,
                   help="a checkpoint replacing the shipped one or one that does not ship (repeatable); ROLE: "
                        + "; ".join(f"{r}: {h}" for r, h in roles.items()))


def _role(text: str) -> tuple[str, str]:
    """``ROLE=PATH`` -> (role, path)."""
    role, sep, path = text.partition("=")
    if not (sep and role and path):
        raise argparse.ArgumentTypeError(f"a checkpoint is ROLE=PATH (e.g. renderer=model.pt), not {text!r}")
    return role.strip(), path


def _preprocess(args: argparse.Namespace) -> int:
    import json

    from talkinghead.data.preprocess import preprocess

    summary = preprocess(args.src, args.dst, layout=args.layout, workers=args.workers, quiet=args.quiet,
                         limit=args.limit, executor=args.executor, address=args.address)
    print(json.dumps({k: v for k, v in summary.items() if k != "skipped"}, indent=1))
    for clip_id, reason in summary["skipped"].items():
        print(f"skipped {clip_id}: {reason}", file=sys.stderr)
    return 0


def _synth(args: argparse.Namespace) -> int:
    import json

    from talkinghead.train.synth import synth

    for folder in args.faces:
        if not folder.is_dir():
            raise TalkingHeadError(f"{folder}: faces folder not found")
    summary = synth(args.dst, clips=args.clips, faces=args.faces, seed=args.seed, workers=args.workers,
                    quiet=args.quiet)
    print(json.dumps(summary, indent=1))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from talkinghead.evaluation import reconstruction
    from talkinghead.metrics.evaluate import evaluate, table, write_json

    if args.reconstruct is not None:
        checkpoints = dict(args.checkpoint)
        result = reconstruction(args.reconstruct, method=args.method, protocol=args.protocol,
                                references=args.references, mouth=args.mouth, checkpoints=checkpoints,
                                syncnet=args.syncnet, keep=args.keep,
                                quiet=args.quiet)
    elif args.generated is not None and args.reference is not None:
        result = evaluate(args.generated, args.reference, audio=args.audio, syncnet=args.syncnet, quiet=args.quiet)
    else:
        raise TalkingHeadError("give --generated and --reference, or --reconstruct CLIPS_DIR")
    print(table(result["pairs"], result["mean"]))
    if args.output is not None:
        write_json(result, args.output)
    return 0


def _train_syncnet(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from talkinghead.sync.model import SyncNetConfig
    from talkinghead.train.syncnet import MESH, TINY, train_syncnet

    base = TINY if args.tiny else MESH if args.visual == "mesh" else SyncNetConfig()
    config = replace(base, objective=args.objective, visual=args.visual, speech=args.speech)
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    metrics = train_syncnet(args.datasets, args.output, config=config, max_steps=args.steps, batch=args.batch,
                            negatives=args.negatives, augment=args.augment, workers=args.workers, lr=args.lr,
                            minutes=args.minutes, devices=devices, quiet=args.quiet)
    print(json.dumps(metrics, indent=1))
    return 0


def _datacard(args: argparse.Namespace) -> int:
    from talkinghead.data.card import markdown, write_datacard

    card = write_datacard(args.datasets, args.output or args.datasets[0] / "DATACARD")
    print(markdown(card))
    return 0


def _fit_face_model(args: argparse.Namespace) -> int:
    import json

    from talkinghead.data.facefit import fit, reencode

    model = fit(args.datasets, args.output, n_expression=args.expression, n_identity=args.identity)
    print(json.dumps({k: v for k, v in model.card.items() if k != "sources"}, indent=1))
    if args.reencode:
        reencode(args.datasets, model, quiet=args.quiet)
    return 0


def _edit(text: str) -> tuple[str, float]:
    """``NAME=STRENGTH`` -> (name, strength)."""
    try:
        return parse_edit(text)
    except TalkingHeadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _generate(args: argparse.Namespace) -> int:
    from talkinghead.api import generate

    photo = args.command == "generate"
    result = generate(
        image=args.image if photo else None, video=args.video, audio=args.audio, output=args.output,
        method=args.method, fps=args.fps, size=args.size, face_index=args.face_index, language=args.language,
        references=args.references, mouth=args.mouth, renderer=args.renderer, checkpoints=dict(args.checkpoint),
        quiet=args.quiet,
        **({"seed": args.seed, "still": args.still, "expression_scale": args.expression_scale,
            "pose_from": args.pose_from, "blink": args.blink, "style": args.style,
            "style_intensity": args.style_intensity, "motion_from": args.motion_from,
            "invert_steps": args.invert_steps, "edits": dict(args.edit)} if photo else {}),
    )
    if not args.quiet:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        print(f"wrote {result.output} ({result.frames} frames, {result.size[0]}x{result.size[1]}, "
              f"{result.duration:.2f}s; {result.method}, {result.renderer} renderer; phonemes: "
              f"{result.phoneme_method}; {stages})", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from talkinghead.io.paths import require_file
    from talkinghead.web.app import serve

    if not 1 <= args.port <= 65535:
        raise TalkingHeadError(f"--port must be between 1 and 65535, not {args.port}")
    if not args.keep_minutes > 0:
        raise TalkingHeadError(f"--keep-minutes must be above 0, not {args.keep_minutes:g}")
    if args.max_queued < 1:
        raise TalkingHeadError(f"--max-queued must be at least 1, not {args.max_queued}")
    if args.max_streams < 1:
        raise TalkingHeadError(f"--max-streams must be at least 1, not {args.max_streams}")
    roles = checkpoint_roles()
    for role, path in args.checkpoint:  # checked now, not at the first video that needs it
        if role not in roles:
            raise TalkingHeadError(f"unknown checkpoint role {role!r} (roles: {', '.join(roles)})")
        require_file(path)
    serve(host=args.host, port=args.port, workdir=args.workdir, keep_minutes=args.keep_minutes,
          max_queued=args.max_queued, max_streams=args.max_streams,
          checkpoints={role: Path(path) for role, path in args.checkpoint})
    return 0


class _Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so partial outputs are removed on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


def _one_line(message: object) -> str:
    """A message on one line (line breaks become spaces; file names keep their own spacing)."""
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Warnings on one line each (an input that looks truncated, ...)."""
    print(f"talkinghead: warning: {_one_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``talkinghead`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = _parser(chosen).parse_args(argv)
    handlers = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", InputWarning)
            warnings.showwarning = _warning
            commands = {"generate": _generate, "dub": _generate, "preprocess": _preprocess, "synth": _synth,
                        "fit-face-model": _fit_face_model, "datacard": _datacard, "evaluate": _evaluate,
                        "train-syncnet": _train_syncnet, "serve": _serve}
            if hasattr(args, "run"):
                return args.run(args)
            return commands[args.command](args)
    except TalkingHeadError as exc:
        print(f"talkinghead: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("talkinghead: interrupted", file=sys.stderr)
        return 130
    except _Stopped as exc:
        print(f"talkinghead: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:  # noqa: BLE001 - one line for users; TALKINGHEAD_DEBUG=1 shows the traceback
        if os.environ.get("TALKINGHEAD_DEBUG"):
            traceback.print_exc()
        print(f"talkinghead: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(set TALKINGHEAD_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
