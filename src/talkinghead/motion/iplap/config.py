"""Architecture of the IP_LAP audio-to-landmark generator (stored inside its checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass

from talkinghead.face import indices as ix


@dataclass
class LandmarkConfig:
    """IP_LAP's defaults (paper §3.1 and released code): T = 5 frames, N_l = 15 references,
    d_model 512, 4 pre-norm layers, 4 heads, feed-forward 1024, continuity weight 1."""

    frames: int = 5
    """T: frames predicted together (their mel windows and pose landmarks are T tokens each)."""
    references: int = 15
    """N_l: reference landmark sets (one token each)."""
    d_model: int = 512
    layers: int = 4
    heads: int = 4
    feedforward: int = 1024
    dropout: float = 0.1
    input_dropout: float = 0.0
    """Dropout on the speech input before its encoder, in training only (ours, not the paper's; 0: none)."""
    width: float = 1.0
    """Channel multiplier of the mel and landmark encoders (1 = the paper's)."""
    speech: str = "mel"
    """The audio tokens' input (:data:`talkinghead.audio.speech.SPEECH_INPUTS`): "mel" (the paper's 16x80 mel
    windows), "phones", "whisper" or "whisper3" (a 5-frame window of phone one-hots or Whisper tiny.en encoder
    features: its last layer, or its third block)."""
    sequence: str = "transformer"
    """"transformer" (the paper) or "bilstm" (the ablation of paper Table 3)."""
    residual: bool = True
    """Predict offsets from an anchor: the references' mean lip/jaw shape moved by the shift of the
    pose landmarks' centroid (False: absolute coordinates, as the paper). With a few minutes of data
    the absolute heads did worse on held-out clips (2.2 px) than the anchor alone (1.6 px)."""
    continuity_weight: float = 1.0
    """lambda_c: weight of the L1 loss on frame-to-frame landmark motion."""
    n_pose: int = len(ix.IPLAP_POSE)
    n_lips: int = len(ix.IPLAP_LIPS)
    n_jaw: int = len(ix.IPLAP_JAW)

    @property
    def n_reference(self) -> int:
        return self.n_pose + self.n_lips + self.n_jaw
