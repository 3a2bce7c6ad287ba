"""StyleTalk (Ma et al., AAAI 2023): one-shot talking heads with a speaking style taken from a style clip.

- Content encoder: per frame, the phoneme labels of the 2w + 1 frames around it, embedded and mixed
  by a transformer encoder -> articulation features (B, N, 2w + 1, D). Our addition: the tokens may instead be
  the frames' Whisper encoder features or log-mel windows (``StyleTalkConfig.speech``), linearly projected.
- Style encoder: a transformer encoder over the style clip's expression coefficients (and, our addition,
  optionally its head motion), pooled by additive self-attention -> the style code s (B, D).
- Style-controllable dynamic decoders (one for the lower-face coefficients, one for the upper): the
  queries are style tokens (s repeated 2w + 1 times + positional encodings), the keys and values the
  articulation features; the first feed-forward layer of every block is a dynamic linear layer whose
  K kernels are mixed by an attention computed from s. The middle output token of each frame's window
  gives that frame's coefficients.

Coefficients are the face model's expression coefficients (``talkinghead.face.model``), frames at 25 fps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkinghead.audio.phonemes import phone_windows
from talkinghead.audio.speech import around, frame_dim
from talkinghead.motion.styletalk.config import StyleTalkConfig
from talkinghead.nn.checkpoint import CheckpointModel
from talkinghead.nn.layers import sinusoid
from talkinghead.nn.transformer import AttentionPooling, DynamicDecoderLayer, PosEncoder


class ContentEncoder(nn.Module):
    """speech (B, N, 2w + 1) int64 phone ids, or (B, N, 2w + 1, S) frame rows (``config.speech`` whisper or mel:
    :func:`content_inputs`; ``input_dropout`` on them while training) -> articulation features (B, N, 2w + 1, D)."""

    def __init__(self, c: StyleTalkConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(c.n_phones, c.phone_embed) if c.speech == "phones" else \
            nn.Linear(frame_dim(c.speech), c.phone_embed)
        self.input_dropout = nn.Dropout(c.input_dropout) if c.input_dropout else nn.Identity()
        self.project = nn.Linear(c.phone_embed, c.d_model)
        self.encoder = PosEncoder(c.d_model, c.heads, c.feedforward, c.dropout, c.content_layers)
        self.register_buffer("pos", sinusoid(2 * c.window + 1, c.d_model), persistent=False)

    def forward(self, speech: torch.Tensor) -> torch.Tensor:
        b, n, w = speech.shape[:3]
        x = self.project(self.embed(self.input_dropout(speech.reshape(b * n, w, *speech.shape[3:]))))
        return self.encoder(x, self.pos[:w]).view(b, n, w, -1)


def content_inputs(config: StyleTalkConfig, phone_ids: np.ndarray, rows: np.ndarray | None, start: int = 0,
                   length: int | None = None) -> np.ndarray:
    """The content encoder's input for frames ``start .. start + length`` (default: all) of an utterance: windows
    of 2w + 1 phone ids (``SIL`` past the ends), or of its :func:`talkinghead.audio.speech.frame_vectors` ``rows``
    (the edge frames repeated)."""
    if config.speech == "phones":
        ids = phone_windows(phone_ids, config.window)
        return ids[start:None if length is None else start + length]
    return around(rows, config.window, start, length)  # type: ignore[arg-type]  # rows are given for these kinds


class StyleEncoder(nn.Module):
    """style clip (B, L, K) coefficients (+ 3 of head motion, see ``style_head_motion``) + padding (B, L) bool
    (True = padding) -> style code (B, D)."""

    def __init__(self, c: StyleTalkConfig) -> None:
        super().__init__()
        self.max_frames = c.max_style_frames
        self.project = nn.Linear(c.style_width, c.d_model)
        self.encoder = PosEncoder(c.d_model, c.heads, c.feedforward, c.dropout, c.style_layers)
        self.pool = AttentionPooling(c.d_model)
        self.register_buffer("pos", sinusoid(c.max_style_frames, c.d_model), persistent=False)

    def forward(self, style: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        style = style[:, :self.max_frames]
        padding = None if padding is None else padding[:, :self.max_frames]
        h = self.encoder(self.project(style), self.pos[:style.shape[1]], padding)
        return self.pool(h, padding)


class StyleDecoder(nn.Module):
    """articulation features (B, N, W, D) + style code (B, D) -> (B, N, out) coefficients of one face part."""

    def __init__(self, c: StyleTalkConfig, out: int) -> None:
        super().__init__()
        d = c.d_model
        self.layers = nn.ModuleList(
            DynamicDecoderLayer(d, c.heads, c.feedforward, c.dropout, k=c.dynamic_k, ratio=c.dynamic_ratio,
                                temperature=c.dynamic_temperature) for _ in range(c.decoder_layers))
        self.norm = nn.LayerNorm(d)
        self.tail = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, d // 2), nn.ReLU(),
                                  nn.Linear(d // 2, out))
        self.register_buffer("pos", sinusoid(2 * c.window + 1, d), persistent=False)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, n, w, d = content.shape
        memory = content.reshape(b * n, w, d)
        s = style.repeat_interleave(n, 0)
        x = s[:, None] + self.pos[:w]  # style tokens: the style code repeated + positions
        for layer in self.layers:
            x = layer(x, memory, s)
        return self.tail(self.norm(x[:, w // 2])).view(b, n, -1)


class StyleTalk(CheckpointModel):
    """speech (:func:`content_inputs`), style clip (B, L, K) (+ padding) -> expression coefficients (B, N, K).

    ``neutral_style`` (D,) is the style code of neutral speech (set after training from the clips
    labelled neutral, else the mean code); :meth:`scaled_style` interpolates towards it.
    """

    config_class = StyleTalkConfig
    default_checkpoint = Path(__file__).parent / "assets" / "styletalk_v5.pt"
    """The StyleTalk model shipped with the package (its data card: ``styletalk_v5.json`` beside it)."""

    def __init__(self, config: StyleTalkConfig) -> None:
        super().__init__()
        self.config = c = config
        if sorted(set(c.lower_face)) != sorted(c.lower_face) or not set(c.lower_face) <= set(range(c.n_expression)):
            raise ValueError("lower_face must list distinct coefficient indices below n_expression")
        self.content = ContentEncoder(c)
        self.style_encoder = StyleEncoder(c)
        self.lower = StyleDecoder(c, len(c.lower_face))
        self.upper = StyleDecoder(c, len(c.upper_face))
        self.register_buffer("neutral_style", torch.zeros(c.d_model))
        self.register_buffer("lower_index", torch.tensor(c.lower_face, dtype=torch.long), persistent=False)
        self.register_buffer("upper_index", torch.tensor(c.upper_face, dtype=torch.long), persistent=False)

    def encode_style(self, style: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        return self.style_encoder(style, padding)

    def scaled_style(self, code: torch.Tensor, intensity: float) -> torch.Tensor:
        """Style code moved towards (intensity < 1) or past (> 1) the neutral style: n + intensity (s - n)."""
        return self.neutral_style + intensity * (code - self.neutral_style)

    def decode(self, speech: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """speech (B, N, 2w + 1[, S]) + style code (B, D) -> (B, N, K) coefficients."""
        content = self.content(speech)
        b, n = speech.shape[:2]
        out = content.new_zeros(b, n, self.config.n_expression)
        out[..., self.lower_index] = self.lower(content, code)
        out[..., self.upper_index] = self.upper(content, code)
        return out

    def forward(self, speech: torch.Tensor, style: torch.Tensor, padding: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(coefficients (B, N, K), style code (B, D))."""
        code = self.encode_style(style, padding)
        return self.decode(speech, code), code
