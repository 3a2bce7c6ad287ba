"""IP_LAP's transformer audio-to-landmark generator (Zhong et al., CVPR 2023, §3.1).

Landmarks are 2D points in face-crop coordinates scaled to [0, 1] (x right, y down). Tokens:
N_l reference tokens (131 points each), T audio tokens (16x80 mel windows as the paper, or, with
``LandmarkConfig.speech``, windows of phone one-hots or Whisper encoder features) and T pose tokens
(74 upper-face points); each token type has a learned type embedding, audio and pose tokens a
sinusoidal position. A pre-norm transformer encoder mixes the N_l + 2T tokens; an MLP head reads the
40 lip points of frame t from audio token t and another the 17 jaw points from pose token t
(as offsets from an anchor shape with ``LandmarkConfig.residual``, our default).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.motion.iplap.config import LandmarkConfig
from talkinghead.nn.checkpoint import CheckpointModel
from talkinghead.nn.encoders import PointEncoder, speech_encoder
from talkinghead.nn.layers import sinusoid

REFERENCE, AUDIO, POSE = 0, 1, 2
"""Token type ids."""


def _head(d: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, out))


class LandmarkGenerator(CheckpointModel):
    """speech (B, T, *input_shape(config.speech)) (mels: (B, T, 16, 80)), pose (B, T, 74, 2), references
    (B, N_l, 131, 2) -> content (B, T, 57, 2):
    40 lip points then 17 jaw points (``face.indices.IPLAP_CONTENT`` order)."""

    config_class = LandmarkConfig
    default_checkpoint = Path(__file__).parent / "assets" / "iplap_landmarks_v4.pt"
    """The landmark generator shipped with the package (Whisper's third block, ``whisper3``, with input dropout 0.3; its
    data card: ``iplap_landmarks_v4.json`` beside it; v3, without the dropout, v2, on the last layer, and v1, on mel
    windows, are in the git history, the cards of v3 and v1 (``iplap_v1.json``) beside it)."""

    def __init__(self, config: LandmarkConfig) -> None:
        super().__init__()
        self.config = c = config
        d = c.d_model
        if c.speech == "mel":  # the attribute name of the checkpoints made before the speech switch
            self.mel_encoder = speech_encoder(c.speech, d, width=c.width)
        else:
            self.speech_encoder = speech_encoder(c.speech, d, width=c.width)
        self.input_dropout = nn.Dropout(c.input_dropout) if c.input_dropout else nn.Identity()
        self.pose_encoder = PointEncoder(c.n_pose, d, width=c.width)
        self.reference_encoder = PointEncoder(c.n_reference, d, width=c.width)
        self.norm = nn.LayerNorm(d)
        if c.sequence == "transformer":
            self.types = nn.Embedding(3, d)
            self.register_buffer("positions", sinusoid(c.frames, d), persistent=False)
            layer = nn.TransformerEncoderLayer(d, c.heads, c.feedforward, c.dropout, batch_first=True, norm_first=True)
            self.mixer: nn.Module = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
            self.final_norm = nn.LayerNorm(d)
        elif c.sequence == "bilstm":
            self.fuse = nn.Linear(3 * d, d)
            self.mixer = nn.LSTM(d, d // 2, c.layers, batch_first=True, bidirectional=True, dropout=c.dropout)
        else:
            raise ValueError(f"unknown sequence model {c.sequence!r}")
        self.lip_head, self.jaw_head = _head(d, 2 * c.n_lips), _head(d, 2 * c.n_jaw)
        if c.residual:  # start from the anchor
            for head in (self.lip_head, self.jaw_head):
                nn.init.zeros_(head[-1].weight)
                nn.init.zeros_(head[-1].bias)

    def forward(self, speech: torch.Tensor, pose: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        b, t = speech.shape[:2]
        n = references.shape[1]
        encoder = self.mel_encoder if self.config.speech == "mel" else self.speech_encoder
        audio = self.norm(encoder(self.input_dropout(speech).flatten(0, 1))).view(b, t, -1)
        pose_e = self.norm(self.pose_encoder(pose.flatten(0, 1))).view(b, t, -1)
        ref = self.norm(self.reference_encoder(references.flatten(0, 1))).view(b, n, -1)
        if self.config.sequence == "transformer":
            pos = self.positions[:t]
            tokens = torch.cat([ref + self.types.weight[REFERENCE], audio + pos + self.types.weight[AUDIO],
                                pose_e + pos + self.types.weight[POSE]], 1)
            out = self.final_norm(self.mixer(tokens))
            lip_tokens, jaw_tokens = out[:, n:n + t], out[:, n + t:]
        else:
            fused = self.fuse(torch.cat([audio, pose_e, ref.mean(1, keepdim=True).expand(-1, t, -1)], -1))
            lip_tokens = jaw_tokens = self.mixer(fused)[0]
        lips = self.lip_head(lip_tokens).view(b, t, -1, 2)
        jaw = self.jaw_head(jaw_tokens).view(b, t, -1, 2)
        out = torch.cat([lips, jaw], 2)
        return out + self.anchor(pose, references) if self.config.residual else out

    def anchor(self, pose: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """(B, T, 57, 2): the references' mean content points shifted by each frame's pose-centroid offset."""
        n_pose = self.config.n_pose
        mean_ref = references.mean(1)
        shift = pose.mean(2, keepdim=True) - mean_ref[:, None, :n_pose].mean(2, keepdim=True)
        return mean_ref[:, None, n_pose:] + shift

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L1 landmark loss + continuity_weight x L1 between frame-to-frame differences; pred, target (B, T, 57, 2)."""
        l1 = F.l1_loss(pred, target)
        cont = F.l1_loss(pred.diff(dim=1), target.diff(dim=1))
        return l1 + self.config.continuity_weight * cont, {"l1": l1.detach(), "continuity": cont.detach()}
