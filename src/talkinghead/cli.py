"""Command line: the only place that parses arguments.

    talkinghead generate --image FACE.jpg --audio SPEECH.wav -o out.mp4
    talkinghead dub --video FACE.mp4 --audio SPEECH.wav -o dubbed.mp4 --method iplap
    talkinghead generate --image FACE.jpg --audio SPEECH.wav --style STYLE.mp4 --method styletalk -o out.mp4
    talkinghead generate --video TEMPLATE.mp4 --audio SPEECH.wav --style PROMPT.mp4 --method vast -o out.mp4
    talkinghead calibrate ../shared/media/talking
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from talkinghead import __version__
from talkinghead.audio.posteriorgram import SPEECH_KINDS
from talkinghead.constants import DEFAULT_FPS, METHODS, RENDERERS
from talkinghead.errors import TalkingHeadError


def _parser() -> argparse.ArgumentParser:
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
    gen.add_argument("--still", action="store_true", help="no generated head motion")
    gen.add_argument("--expression-scale", type=float, default=1.0, metavar="X",
                     help="mouth motion amplitude (default: 1.0)")
    gen.add_argument("--pose-from", metavar="VIDEO", help="copy head motion from the face in this video")
    gen.add_argument("--blink", action=argparse.BooleanOptionalAction, default=None,
                     help="generate eye blinks (default: on for a photo, off for a video)")
    gen.add_argument("--style", metavar="STYLE_CLIP", help="styletalk, vast: copy the speaking style of the face in "
                                                           "this video (default: styletalk neutral; vast the "
                                                           "template video's own)")
    gen.add_argument("--style-intensity", type=float, default=1.0, metavar="X",
                     help="styletalk: 0 = neutral, 1 = the style clip's style, up to 1.5 = exaggerated (default: 1.0)")
    gen.add_argument("--styletalk-checkpoint", type=Path, default=None, help="styletalk: model (.pt)")
    gen.add_argument("--vast-checkpoint", type=Path, default=None, help="vast: motion model (.pt)")
    gen.add_argument("--motion-from", metavar="VIDEO", help="styletalker: head motion and blinks from the face in "
                                                            "this video (default: sampled from the prior, --seed); "
                                                            "styleheat: head pose and upper face from it (default: "
                                                            "a still head)")
    gen.add_argument("--invert-steps", type=int, default=0, metavar="N",
                     help="styletalker, styleheat: optimisation steps refining the photo's latent code after the "
                          "encoder (default: 0)")
    gen.add_argument("--edit", action="append", default=[], metavar="NAME=STRENGTH", type=_edit,
                     help="styleheat: move an attribute gradually over the video, e.g. smile=+1.0 (standard "
                          "deviations, -3..3; names: smile, mouth_open, pc0..pc3; repeatable)")
    gen.add_argument("--styletalker-checkpoint", type=Path, default=None, help="styletalker: model (.pt)")
    gen.add_argument("--styleheat-checkpoint", type=Path, default=None, help="styleheat: model (.pt)")
    gen.add_argument("--stylegan", type=Path, default=None, metavar="DIR",
                     help="styletalker, styleheat: generator.pt and encoder.pt of this train-stylegan folder")
    gen.add_argument("--vast-renderer", type=Path, default=None,
                     help="vast: person-specific renderer trained on the --video template (train-vast-renderer)")

    dub = sub.add_parser("dub", help="dub a face video: its mouth follows new speech, everything else is kept",
                         description="Lip-sync a face video to speech (mp4, h264 + aac). With --method iplap only "
                                     "the lower face is regenerated (IP_LAP); the video loops back and forth when "
                                     "the speech is longer.")
    dub.add_argument("--video", metavar="FACE_VIDEO", required=True, help="face video to dub")
    _output_options(dub, size_help="longer side of the output in pixels (default: the video's own up to 1280)")

    cal = sub.add_parser("calibrate", help="fit the viseme engine's mouth shapes from talking-face videos",
                         description="Mesh and align real talking clips and fit the canonical mesh and the "
                                     "viseme calibration (writes the package assets by default).")
    cal.add_argument("clips", nargs="+", metavar="CLIP_OR_DIR", help="videos with their own speech, or folders of them")
    pkg = Path(__file__).parent
    cal.add_argument("--canonical-out", type=Path, default=pkg / "face" / "assets" / "canonical_mesh_v1.npz")
    cal.add_argument("--calibration-out", type=Path, default=pkg / "motion" / "viseme" / "assets" / "visemes_v1.npz")
    cal.add_argument("-q", "--quiet", action="store_true")

    pre = sub.add_parser("preprocess", help="preprocess a corpus of talking-face videos for training",
                         description="Every clip -> 25 fps face crops, mesh, pose, coefficients, blink, mel, "
                                     "phonemes, loudness/voice activity and identity embedding (resumable).")
    pre.add_argument("src", type=Path, help="corpus folder")
    pre.add_argument("dst", type=Path, help="output dataset folder (re-runs skip finished clips)")
    pre.add_argument("--layout", choices=("folder", "voxceleb2", "lrs2", "lrs3", "hdtf", "mead"), default="folder")
    pre.add_argument("--workers", type=int, default=1, help="parallel worker processes (default: 1)")
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
    ev.add_argument("--method", choices=METHODS, default="viseme")
    ev.add_argument("--protocol", choices=("photo", "dub"), default="photo",
                    help="reconstruction from the first frame (photo) or from the clip's own frames (dub)")
    ev.add_argument("--references", type=int, default=None, help="iplap: renderer reference frames")
    ev.add_argument("--audio", type=Path, default=None,
                    help="driving speech: a file, or a folder of files named like the generated videos "
                         "(default: each generated video's own audio track)")
    ev.add_argument("--syncnet", type=Path, default=None, help="SyncNet checkpoint (default: the shipped one)")
    ev.add_argument("--checkpoint", action="append", default=[], metavar="ROLE=PATH",
                    help="reconstruction: a checkpoint replacing a shipped one, ROLE one of landmarks, renderer, "
                         "styletalk, vast, vast_renderer, styletalker, styleheat, generator, encoder (repeatable)")
    ev.add_argument("-o", "--output", type=Path, default=None, help="write the results as JSON")
    ev.add_argument("-q", "--quiet", action="store_true")

    ts = sub.add_parser("train-syncnet", help="train the lip-sync expert (SyncNet) on preprocessed datasets",
                        description="Contrastive (StyleTalker) or binary (Wav2Lip) SyncNet, trained with PyTorch "
                                    "Lightning on the datasets' train splits (GPUs and DDP when present).")
    ts.add_argument("datasets", nargs="+", type=Path, help="preprocessed dataset folders")
    ts.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write (.pt)")
    ts.add_argument("--objective", choices=("contrastive", "binary"), default="contrastive")
    ts.add_argument("--visual", choices=("image", "mesh"), default="image",
                    help="what the visual stream sees: mouth crops or lip/jaw mesh points (default: image)")
    ts.add_argument("--steps", type=int, default=2000)
    ts.add_argument("--batch", type=int, default=32)
    ts.add_argument("--negatives", type=int, default=4, help="shifted mel windows per item (default: 4)")
    ts.add_argument("--lr", type=float, default=1e-3)
    ts.add_argument("--augment", action="store_true",
                    help="augment training items (mesh motion scale and noise / mirrored, brightened crops; mel level)")
    ts.add_argument("--tiny", action="store_true", help="the tiny CPU test configuration")
    ts.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    ts.add_argument("--devices", default="auto", help="Lightning devices (e.g. 4 for four GPUs)")
    ts.add_argument("-q", "--quiet", action="store_true")

    ti = sub.add_parser("train-iplap", help="train IP_LAP's landmark generator or renderer on preprocessed datasets",
                        description="Stage 1 (--stage landmarks: audio -> lip/jaw landmarks) or stage 2 (--stage "
                                    "renderer: landmark sketches + references -> face), PyTorch Lightning on the "
                                    "datasets' train splits (GPUs, DDP across devices and nodes when present).")
    _training_options(ti)
    ti.add_argument("--stage", choices=("landmarks", "renderer"), required=True)
    ti.add_argument("--config", choices=("tiny", "small", "paper"), default="small",
                    help="sizes: tiny (tests), small (the shipped CPU checkpoints), paper (IP_LAP's; GPUs)")
    ti.add_argument("--sequence", choices=("transformer", "bilstm"), default="transformer",
                    help="landmarks: token mixer (bilstm = the paper's ablation)")
    ti.add_argument("--augment", action="store_true",
                    help="landmarks: random similarity transform of each item's landmarks and mel level shift")
    ti.add_argument("--no-warp", dest="warp", action="store_false", help="renderer: the ablation without warping")
    ti.add_argument("--size", type=int, default=None, help="renderer: face crop side in pixels (default: 128)")
    ti.add_argument("--references", type=int, default=3, help="renderer: reference frames per item (default: 3)")
    ti.add_argument("--warmup", type=int, default=None,
                    help="renderer: warping-loss-only steps (default: a quarter of --steps)")
    ti.add_argument("--steps", type=int, default=3000)
    ti.add_argument("--batch", type=int, default=None, help="batch size (default: 32 landmarks, 8 renderer)")
    ti.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4, IP_LAP's)")

    tt = sub.add_parser("train-styletalk", help="train StyleTalk on preprocessed datasets",
                        description="StyleTalk (style encoder + style-controllable dynamic decoders) with PyTorch "
                                    "Lightning on the datasets' train splits; style classes are the clips' style "
                                    "labels (synthetic corpus), else speaker + emotion, else speaker.")
    _training_options(tt)
    tt.add_argument("--config", choices=("tiny", "small", "paper"), default="small",
                    help="sizes: tiny (tests), small (the shipped CPU checkpoint), paper (StyleTalk's; GPUs)")
    tt.add_argument("--no-dynamic", dest="dynamic", action="store_false",
                    help="plain feed-forward layers in the decoders (the paper's ablation)")
    _style_training_options(tt, window=32, style_length=64)

    tv = sub.add_parser("train-vast", help="train VAST's motion model on preprocessed datasets",
                        description="VAST (conv + GRU style encoder, variational style enhancer with a Householder "
                                    "flow, hybrid AR/NAR expression decoder) with PyTorch Lightning on the datasets' "
                                    "train splits.")
    _training_options(tv)
    tv.add_argument("--config", choices=("tiny", "small", "paper"), default="small",
                    help="sizes: tiny (tests), small (the shipped CPU checkpoint), paper (VAST's layout; GPUs)")
    tv.add_argument("--speech", choices=SPEECH_KINDS, default="ppg",
                    help="speech features: ppg (phone posteriorgram, default) or whisper (Whisper tiny.en encoder)")
    tv.add_argument("--no-enhancer", dest="enhancer", action="store_false",
                    help="no variational style enhancer (the paper's ablation)")
    tv.add_argument("--flow-steps", type=int, default=None,
                    help="Householder reflections (default: 4; 0 = plain Gaussian posterior, the paper's ablation)")
    tv.add_argument("--loss", choices=("asymmetric", "mse"), default="asymmetric", help="reconstruction loss")
    _style_training_options(tv, window=64, style_length=128)

    tg = sub.add_parser("train-stylegan", help="train the style-based generator, its encoder and the identity student",
                        description="Three stages on single face crops of the datasets' train splits (PyTorch "
                                    "Lightning): the identity student of dlib's embedding, the StyleGAN2-style "
                                    "generator against its discriminator, then the pSp-style encoder into W+. "
                                    "Writes identity.pt, generator.pt, discriminator.pt and encoder.pt; a stage "
                                    "with 0 steps reuses its file from the output folder.")
    _training_options(tg, output_help="folder to write the four checkpoints to")
    tg.add_argument("--config", choices=("tiny", "cpu", "small", "paper"), default="small",
                    help="sizes: tiny (tests, 32 px), cpu (64 px, the shipped models), small (128 px), paper "
                         "(1024 px; GPUs)")
    tg.add_argument("--identity-steps", type=int, default=2000)
    tg.add_argument("--gan-steps", type=int, default=20000)
    tg.add_argument("--encoder-steps", type=int, default=10000)
    tg.add_argument("--batch", type=int, default=16)
    tg.add_argument("--gan-lr", type=float, default=0.002, help="Adam learning rate of G and D (default: 0.002)")
    tg.add_argument("--r1-gamma", type=float, default=1.0, help="R1 weight (default: 1.0)")
    tg.add_argument("--encoder-lr", type=float, default=1e-4, help="encoder learning rate (default: 1e-4)")
    tg.add_argument("--generator-lr", type=float, default=0.0,
                    help="tune the generator with the encoder's loss at this rate (default: 0 = frozen, as pSp)")
    tg.add_argument("--stage-minutes", type=float, default=None, help="stop each stage after this many minutes")

    tk = sub.add_parser("train-styletalker", help="train StyleTalker on a trained generator and encoder",
                        description="StyleTalker (audio encoder, per-layer posterior blocks with smoothing and two-way "
                                    "manipulation, autoregressive flow prior) with PyTorch Lightning on windows of "
                                    "the datasets' train splits, with the generator, encoder and identity student "
                                    "of a train-stylegan folder and an image SyncNet for the sync loss.")
    _training_options(tk)
    _generator_training_inputs(tk)
    tk.add_argument("--config", choices=("tiny", "cpu", "small", "paper"), default="small",
                    help="sizes: tiny (tests), cpu (the shipped checkpoint), small, paper (wider; GPUs)")
    tk.add_argument("--steps", type=int, default=5000)
    tk.add_argument("--batch", type=int, default=8)
    tk.add_argument("--window", type=int, default=16, help="frames per item (default: 16; at least 10 for sync)")
    tk.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    tk.add_argument("--minutes", type=float, default=None, help="stop after this many minutes")

    th = sub.add_parser("train-styleheat", help="train StyleHEAT on a trained generator, encoder and discriminator",
                        description="StyleHEAT's video- and audio-driven motion generators and calibration network "
                                    "with PyTorch Lightning in two stages (warp, then calibrate) on windows of the "
                                    "datasets' train splits, with the generator, encoder and discriminator of a "
                                    "train-stylegan folder and an image SyncNet for the sync loss; then the edit "
                                    "directions (smile, mouth_open from the meshes; pc0..pc3 from GANSpace).")
    _training_options(th)
    _generator_training_inputs(th)
    th.add_argument("--config", choices=("tiny", "cpu", "small", "paper"), default="small",
                    help="sizes: tiny (tests), cpu (64 px generator), small (128 px), paper (StyleHEAT's; GPUs)")
    th.add_argument("--warp-steps", type=int, default=5000, help="steps of the warp stage (0: skip it and "
                                                                   "continue the model in --output)")
    th.add_argument("--calibrate-steps", type=int, default=5000, help="steps of the calibration stage")
    th.add_argument("--batch", type=int, default=4)
    th.add_argument("--frames", type=int, default=12, help="target frames per item (default: 12; at least 10 "
                                                           "for sync)")
    th.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    th.add_argument("--stage-minutes", type=float, default=None, help="stop each stage after this many minutes")

    tr = sub.add_parser("train-vast-renderer", help="train VAST's person-specific renderer on a template video",
                        description="U-Net + LSTM cGAN (mesh sketch + eroded background in, speech features at the "
                                    "bottleneck) trained on one video of the target person with speech; the last "
                                    "tenth is held out. Use it with generate --method vast --video TEMPLATE "
                                    "--vast-renderer OUTPUT.")
    tr.add_argument("video", type=Path, help="template video of the target person speaking")
    tr.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write (.pt)")
    tr.add_argument("--config", choices=("tiny", "small", "paper"), default="small",
                    help="sizes: tiny (tests), small (128 px, minutes on a CPU), paper (256 px; GPUs)")
    tr.add_argument("--speech", choices=SPEECH_KINDS, default="ppg", help="speech features (default: ppg)")
    tr.add_argument("--steps", type=int, default=600)
    tr.add_argument("--batch", type=int, default=2, help="runs of --frames consecutive frames per step (default: 2)")
    tr.add_argument("--frames", type=int, default=4, help="consecutive frames per run (default: 4)")
    tr.add_argument("--lr", type=float, default=2e-4)
    tr.add_argument("--devices", default="auto", help="Lightning devices (e.g. 4 for four GPUs)")
    tr.add_argument("-q", "--quiet", action="store_true")

    sv = sub.add_parser("serve", help="a local web page to make talking-head videos",
                        description="Serve the web app: upload (or record) speech and a face, pick the method and "
                                    "options, follow the progress, play the result. Listens on 127.0.0.1 only "
                                    "unless --host says otherwise.")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    sv.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    sv.add_argument("--workdir", type=Path, default=None, help="folder for uploads and results (default: a temp folder)")

    vs = sub.add_parser("vast-split", help="VAST's split of the expression coefficients by mouth-vertex offset",
                        description="Print, as JSON, every face-model coefficient's mean lip + jaw point offset at "
                                    "one standard deviation and the speech-strongly-related group it gives.")
    vs.add_argument("--face-model", type=Path, default=None, help="face model (.npz; default: the shipped one)")
    vs.add_argument("--share", type=float, default=None,
                    help="strong when the offset is at least this share of the largest (default: 0.1)")

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
    return parser


def _training_options(p: argparse.ArgumentParser, *, output_help: str = "checkpoint to write (.pt)") -> None:
    """Options shared by the train-* commands of the learned families (Lightning: GPUs and DDP when present)."""
    p.add_argument("datasets", nargs="+", type=Path, help="preprocessed dataset folders")
    p.add_argument("-o", "--output", type=Path, required=True, help=output_help)
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--devices", default="auto", help="Lightning devices per node (e.g. 8)")
    p.add_argument("--nodes", type=int, default=1, help="Lightning nodes (DDP)")
    p.add_argument("-q", "--quiet", action="store_true")


def _generator_training_inputs(p: argparse.ArgumentParser) -> None:
    """Inputs shared by train-styletalker and train-styleheat: the trained generator folder and the image SyncNet."""
    p.add_argument("--stylegan", type=Path, required=True, help="train-stylegan output folder")
    p.add_argument("--syncnet", type=Path, default=None,
                   help="image SyncNet for the sync loss (train-syncnet --visual image); without it no sync loss")


def _style_training_options(p: argparse.ArgumentParser, *, window: int, style_length: int) -> None:
    """Run options shared by train-styletalk and train-vast (decoded window and style clip per item)."""
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--window", type=int, default=window, help=f"frames decoded per item (default: {window})")
    p.add_argument("--style-length", type=int, default=style_length,
                   help=f"style clip frames per item (default: {style_length})")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")


def _output_options(p: argparse.ArgumentParser, *, size_help: str) -> None:
    """Options shared by generate and dub."""
    p.add_argument("--audio", metavar="SPEECH", required=True, help="speech (wav, mp3, m4a, mp4, ...)")
    p.add_argument("-o", "--output", metavar="OUT.mp4", required=True, help="video to write")
    p.add_argument("--method", choices=METHODS if p.prog.endswith("generate") else ("viseme", "iplap"),
                   default="viseme", help="viseme: default engine, no weights; iplap: IP_LAP; styletalk (photos): "
                                          "StyleTalk with --style; vast: VAST with --style (learned methods: shipped "
                                          "small checkpoints); styletalker, styleheat (photos): StyleTalker, "
                                          "StyleHEAT with the style-based generator (your models: --stylegan, "
                                          "--styletalker-checkpoint / --styleheat-checkpoint)")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS, help="output frame rate (default: 25)")
    p.add_argument("--size", type=int, default=None, help=size_help)
    p.add_argument("--face-index", type=int, default=0, metavar="N",
                   help="which face when there are several, 0 = largest (default: 0)")
    p.add_argument("--language", choices=("auto", "en", "other"), default="auto",
                   help="speech language: auto-detect English, force English, or other (default: auto)")
    p.add_argument("--renderer", choices=RENDERERS, default=None,
                   help="warp (no weights), iplap (IP_LAP's renderer draws the lower face) or vast (with "
                        "--vast-renderer); default: iplap for --method iplap, vast with --vast-renderer, else warp")
    p.add_argument("--references", type=int, default=None, metavar="N",
                   help="iplap: renderer reference frames (default: 1/5 of the video's frames, at most 25)")
    p.add_argument("--landmark-checkpoint", type=Path, default=None, help="iplap: landmark generator (.pt)")
    p.add_argument("--renderer-checkpoint", type=Path, default=None, help="iplap: renderer (.pt)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes")


def _preprocess(args: argparse.Namespace) -> int:
    import json

    from talkinghead.data.preprocess import preprocess

    summary = preprocess(args.src, args.dst, layout=args.layout, workers=args.workers, quiet=args.quiet,
                         limit=args.limit)
    print(json.dumps({k: v for k, v in summary.items() if k != "skipped"}, indent=1))
    for clip_id, reason in summary["skipped"].items():
        print(f"skipped {clip_id}: {reason}", file=sys.stderr)
    return 0


def _synth(args: argparse.Namespace) -> int:
    import json

    from talkinghead.data.synth import synth

    for folder in args.faces:
        if not folder.is_dir():
            raise TalkingHeadError(f"{folder}: faces folder not found")
    summary = synth(args.dst, clips=args.clips, faces=args.faces, seed=args.seed, workers=args.workers,
                    quiet=args.quiet)
    print(json.dumps(summary, indent=1))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from talkinghead.metrics.evaluate import evaluate, reconstruction, table, write_json

    if args.reconstruct is not None:
        checkpoints = dict(item.split("=", 1) for item in args.checkpoint if "=" in item)
        if len(checkpoints) != len(args.checkpoint):
            raise TalkingHeadError("--checkpoint takes ROLE=PATH")
        result = reconstruction(args.reconstruct, method=args.method, protocol=args.protocol,
                                references=args.references, checkpoints=checkpoints, syncnet=args.syncnet,
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
    config = replace(base, objective=args.objective, visual=args.visual)
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    metrics = train_syncnet(args.datasets, args.output, config=config, max_steps=args.steps, batch=args.batch,
                            negatives=args.negatives, augment=args.augment, workers=args.workers, lr=args.lr,
                            devices=devices, quiet=args.quiet)
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
    name, sep, value = text.partition("=")
    try:
        if not (sep and name):
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an edit is NAME=STRENGTH (e.g. smile=+1.0), not {text!r}") from None


def _generate(args: argparse.Namespace) -> int:
    from talkinghead.api import generate

    photo = args.command == "generate"
    checkpoints = {"landmarks": args.landmark_checkpoint, "renderer": args.renderer_checkpoint,
                   "styletalk": getattr(args, "styletalk_checkpoint", None),
                   "vast": getattr(args, "vast_checkpoint", None),
                   "vast_renderer": getattr(args, "vast_renderer", None),
                   "styletalker": getattr(args, "styletalker_checkpoint", None),
                   "styleheat": getattr(args, "styleheat_checkpoint", None)}
    if getattr(args, "stylegan", None) is not None:
        checkpoints.update(generator=args.stylegan / "generator.pt", encoder=args.stylegan / "encoder.pt")
    result = generate(
        image=args.image if photo else None, video=args.video, audio=args.audio, output=args.output,
        method=args.method, fps=args.fps, size=args.size, face_index=args.face_index, language=args.language,
        references=args.references, renderer=args.renderer,
        checkpoints={k: v for k, v in checkpoints.items() if v is not None},
        quiet=args.quiet, **({"seed": args.seed, "still": args.still, "expression_scale": args.expression_scale,
                              "pose_from": args.pose_from, "blink": args.blink, "style": args.style,
                              "style_intensity": args.style_intensity, "motion_from": args.motion_from,
                              "invert_steps": args.invert_steps, "edits": dict(args.edit)}
                           if photo else {}),
    )
    if not args.quiet:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        print(f"wrote {result.output} ({result.frames} frames, {result.size[0]}x{result.size[1]}, "
              f"{result.duration:.2f}s; {result.method}; phonemes: {result.phoneme_method}; {stages})",
              file=sys.stderr)
    return 0


def _train_iplap(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from talkinghead.train.iplap import LANDMARK_CONFIGS, RENDERER_CONFIGS, train_landmarks, train_renderer

    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    common = {"max_steps": args.steps, "lr": args.lr, "workers": args.workers, "devices": devices,
              "nodes": args.nodes, "quiet": args.quiet}
    if args.stage == "landmarks":
        config = replace(LANDMARK_CONFIGS[args.config], sequence=args.sequence)
        metrics = train_landmarks(args.datasets, args.output, config=config, batch=args.batch or 32,
                                  augment=args.augment, **common)
    else:
        rconfig = replace(RENDERER_CONFIGS[args.config], warp=args.warp,
                          size=args.size or RENDERER_CONFIGS[args.config].size)
        metrics = train_renderer(args.datasets, args.output, config=rconfig, batch=args.batch or 8,
                                 references=args.references, warmup=args.warmup, **common)
    print(json.dumps(metrics, indent=1))
    return 0


def _train_styletalk(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from talkinghead.train.styletalk import DISC_CHANNELS, STYLETALK_CONFIGS, train_styletalk

    config = STYLETALK_CONFIGS[args.config]
    if not args.dynamic:
        config = replace(config, dynamic_k=0)
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    metrics = train_styletalk(args.datasets, args.output, config=config, max_steps=args.steps, batch=args.batch,
                              window=args.window, style_length=args.style_length, lr=args.lr,
                              disc_channels=DISC_CHANNELS[args.config], workers=args.workers, devices=devices,
                              nodes=args.nodes, quiet=args.quiet)
    print(json.dumps(metrics, indent=1))
    return 0


def _train_stylegan(args: argparse.Namespace) -> int:
    import json

    from talkinghead.train.stylegan import STYLEGAN_CONFIGS, train_stylegan

    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    metrics = train_stylegan(args.datasets, args.output, configs=STYLEGAN_CONFIGS[args.config],
                             identity_steps=args.identity_steps, gan_steps=args.gan_steps,
                             encoder_steps=args.encoder_steps, batch=args.batch, gan_lr=args.gan_lr,
                             r1_gamma=args.r1_gamma, encoder_lr=args.encoder_lr, generator_lr=args.generator_lr,
                             stage_minutes=args.stage_minutes, workers=args.workers, devices=devices,
                             nodes=args.nodes, quiet=args.quiet)
    print(json.dumps(metrics, indent=1))
    return 0


def _train_styletalker(args: argparse.Namespace) -> int:
    import json

    from talkinghead.train.styletalker import DISC_CHANNELS, STYLETALKER_CONFIGS, train_styletalker

    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    metrics = train_styletalker(args.datasets, args.output, stylegan=args.stylegan, syncnet=args.syncnet,
                                config=STYLETALKER_CONFIGS[args.config], max_steps=args.steps, batch=args.batch,
                                window=args.window, lr=args.lr, disc_channels=DISC_CHANNELS[args.config],
                                max_minutes=args.minutes, workers=args.workers, devices=devices, nodes=args.nodes,
                                quiet=args.quiet)
    print(json.dumps(metrics, indent=1))
    return 0


def _train_styleheat(args: argparse.Namespace) -> int:
    import json

    from talkinghead.train.styleheat import STYLEHEAT_CONFIGS, train_styleheat

    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    metrics = train_styleheat(args.datasets, args.output, stylegan=args.stylegan, syncnet=args.syncnet,
                              config=STYLEHEAT_CONFIGS[args.config], warp_steps=args.warp_steps,
                              calibrate_steps=args.calibrate_steps, batch=args.batch, frames=args.frames, lr=args.lr,
                              stage_minutes=args.stage_minutes, workers=args.workers, devices=devices,
                              nodes=args.nodes, quiet=args.quiet)
    print(json.dumps(metrics, indent=1))
    return 0


def _train_vast(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from talkinghead.train.vast import VAST_CONFIGS, train_vast

    config = VAST_CONFIGS[args.config]
    config = replace(config, speech=args.speech, enhancer=args.enhancer, loss=args.loss,
                     flow_steps=config.flow_steps if args.flow_steps is None else args.flow_steps)
    if config.flow_steps < 0:
        raise TalkingHeadError("--flow-steps must be 0 or more")
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    metrics = train_vast(args.datasets, args.output, config=config, max_steps=args.steps, batch=args.batch,
                         window=args.window, style_length=args.style_length, lr=args.lr, workers=args.workers,
                         devices=devices, nodes=args.nodes, quiet=args.quiet)
    print(json.dumps(metrics, indent=1))
    return 0


def _train_vast_renderer(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from talkinghead.io.paths import require_file
    from talkinghead.train.vast import RENDERER_CONFIGS, train_vast_renderer

    require_file(args.video)
    if args.steps < 1 or args.batch < 1 or args.frames < 1:
        raise TalkingHeadError("--steps, --batch and --frames must be at least 1")
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    metrics = train_vast_renderer(args.video, args.output, config=replace(RENDERER_CONFIGS[args.config],
                                                                          speech=args.speech),
                                  max_steps=args.steps, batch=args.batch, frames=args.frames, lr=args.lr,
                                  devices=devices, quiet=args.quiet)
    print(json.dumps(metrics, indent=1))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from talkinghead.web.app import serve

    if not 1 <= args.port <= 65535:
        raise TalkingHeadError(f"--port must be between 1 and 65535, not {args.port}")
    print(f"talkinghead: serving on http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    serve(host=args.host, port=args.port, workdir=args.workdir)
    return 0


def _vast_split(args: argparse.Namespace) -> int:
    import json

    from talkinghead.face.model import FaceModel, default_face_model
    from talkinghead.motion.vast.split import STRONG_SHARE, split_report

    from talkinghead.io.paths import require_file

    if args.face_model is not None:
        require_file(args.face_model)
    share = STRONG_SHARE if args.share is None else args.share
    if not 0.0 < share <= 1.0:
        raise TalkingHeadError(f"--share must be in (0, 1], not {share:g}")
    model = FaceModel.load(args.face_model) if args.face_model else default_face_model()
    print(json.dumps(split_report(model, share=share), indent=1))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import json

    from talkinghead.motion.viseme.calibrate import calibrate

    card = calibrate(args.clips, canonical_out=args.canonical_out, calibration_out=args.calibration_out,
                     quiet=args.quiet)
    print(json.dumps(card, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``talkinghead`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        commands = {"generate": _generate, "calibrate": _calibrate, "preprocess": _preprocess, "synth": _synth,
                    "fit-face-model": _fit_face_model, "datacard": _datacard, "evaluate": _evaluate,
                    "train-syncnet": _train_syncnet, "dub": _generate, "train-iplap": _train_iplap,
                    "train-styletalk": _train_styletalk, "train-vast": _train_vast,
                    "train-stylegan": _train_stylegan, "train-styletalker": _train_styletalker,
                    "train-styleheat": _train_styleheat,
                    "train-vast-renderer": _train_vast_renderer, "vast-split": _vast_split, "serve": _serve}
        return commands[args.command](args)
    except TalkingHeadError as exc:
        print(f"talkinghead: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("talkinghead: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for users; TALKINGHEAD_DEBUG=1 shows the traceback
        if os.environ.get("TALKINGHEAD_DEBUG"):
            traceback.print_exc()
        print(f"talkinghead: internal error: {type(exc).__name__}: {exc} "
              "(set TALKINGHEAD_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
