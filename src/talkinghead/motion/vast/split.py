"""VAST's split of the expression coefficients into speech-strongly-related and weakly-related groups.

VAST measures, for every expression parameter, how far it moves the mouth vertices, and decodes the
parameters that move them most non-autoregressively from speech. Here the offset of coefficient k is the
mean distance the lip and jaw mesh points move under a change of one standard deviation (the face
model's own spread of k in its training data), in canonical units (outer eye-corner distance = 1).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.face import indices as ix
from talkinghead.face.model import FaceModel
from talkinghead.io.paths import require_file
from talkinghead.spec import Command

STRONG_SHARE = 0.1
"""A coefficient is speech-strongly-related when its mouth offset is at least this share of the largest."""
MOUTH_POINTS = np.unique(np.concatenate([ix.LIPS_ALL, ix.JAW]))


def mouth_offsets(face_model: FaceModel, n_expression: int | None = None) -> np.ndarray:
    """(K,) mean lip + jaw point displacement (canonical units) of each coefficient at one standard deviation."""
    k = n_expression or face_model.n_expression
    moved = face_model.expression_basis[:k] * face_model.expression_std[:k, None, None]
    return np.linalg.norm(moved[:, MOUTH_POINTS], axis=-1).mean(1)


def strong_coefficients(face_model: FaceModel, n_expression: int | None = None, *, share: float = STRONG_SHARE
                        ) -> list[int]:
    """Indices of the speech-strongly-related coefficients (see :data:`STRONG_SHARE`)."""
    offsets = mouth_offsets(face_model, n_expression)
    return [int(i) for i in np.nonzero(offsets >= share * offsets.max())[0]]


def split_report(face_model: FaceModel, n_expression: int | None = None, *, share: float = STRONG_SHARE) -> dict:
    """The split with every coefficient's offset, as ``talkinghead vast-split`` prints it."""
    offsets = mouth_offsets(face_model, n_expression)
    strong = strong_coefficients(face_model, n_expression, share=share)
    return {"face_model": face_model.card.get("name", ""), "share": share, "strong": strong,
            "weak": [i for i in range(len(offsets)) if i not in strong],
            "mouth_offset": [round(float(o), 5) for o in offsets]}


def _arguments(vs: argparse.ArgumentParser) -> None:
    vs.add_argument("--face-model", type=Path, default=None, help="face model (.npz; default: the shipped one)")
    vs.add_argument("--share", type=float, default=None,
                    help="strong when the offset is at least this share of the largest (default: 0.1)")


def _run(args: argparse.Namespace) -> int:
    from talkinghead.face.model import FaceModel, default_face_model

    if args.face_model is not None:
        require_file(args.face_model)
    share = STRONG_SHARE if args.share is None else args.share
    if not 0.0 < share <= 1.0:
        raise TalkingHeadError(f"--share must be in (0, 1], not {share:g}")
    model = FaceModel.load(args.face_model) if args.face_model else default_face_model()
    print(json.dumps(split_report(model, share=share), indent=1))
    return 0


COMMAND = Command(description="Print, as JSON, every face-model coefficient's mean lip + jaw point offset at one "
                              "standard deviation and the speech-strongly-related group it gives.",
                  arguments=_arguments, run=_run)
