"""Architecture and loss weights of StyleTalk (stored inside its checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

from talkinghead.audio.phonemes import PHONES


@dataclass
class StyleTalkConfig:
    """StyleTalk's defaults (Ma et al., AAAI 2023, and its released configuration): phoneme windows of
    w = 5 frames each side, d_model 256, 8 heads, 3 layers in each of the content encoder, style
    encoder and both decoders, feed-forward 1024, dynamic FFN with K = 8 kernels (attention MLP ratio 4,
    softmax temperature 30), 64 expression coefficients split into a lower-face and an upper-face group."""

    n_phones: int = len(PHONES)
    window: int = 5
    """w: phonemes on each side of a frame (2w + 1 tokens per frame)."""
    speech: str = "phones"
    """Each content token's input (:data:`talkinghead.audio.speech.SPEECH_INPUTS`): the frame's phone label (the
    paper), its Whisper tiny.en encoder features, or its 16x80 log-mel window (:func:`talkinghead.audio.speech.
    frame_vectors`), the last two through a linear layer in place of the phone embedding."""
    input_dropout: float = 0.0
    """Dropout on the frame rows (Whisper or log-mel) entering the content encoder, in training only; 0 for the phone
    labels, which have no values to drop. Our addition, as VAST's and IP_LAP's, which over-fitted ``train/``'s
    speakers and gained from 0.3; StyleTalk's shipped recipe did not (see the README), so it ships with 0."""
    phone_embed: int = 128
    d_model: int = 256
    heads: int = 8
    content_layers: int = 3
    style_layers: int = 3
    decoder_layers: int = 3
    feedforward: int = 1024
    dropout: float = 0.1
    n_expression: int = 64
    lower_face: list[int] = field(default_factory=list)
    """Coefficients decoded by the lower-face decoder (the face model's mouth-related group); the rest
    by the upper-face decoder."""
    max_style_frames: int = 256
    """Longest style clip (frames) the style encoder reads; longer clips are cut."""
    style_head_motion: bool = False
    """The style encoder also reads the style clip's head motion (:func:`talkinghead.face.pose.head_motion`, 3
    values a frame after the K coefficients). Our addition, off in the paper's configuration: StyleTalk's style
    encoder reads expression only, but how much a speaker moves the head is part of a speaking style, and the
    size of a mouth's movement is relative to each face, so expression alone cannot tell a new face's
    neutral from subdued speech (see the README)."""
    dynamic_k: int = 8
    """K kernels of the dynamic FFN (0: plain FFN, the paper's ablation)."""
    dynamic_ratio: int = 4
    dynamic_temperature: float = 30.0
    n_styles: int = 0
    """Style classes of the training data (the style discriminator's outputs)."""
    reconstruction_weight: float = 88.0
    """Weight of the coefficient L1. The loss weights are our defaults (StyleTalk's could not be checked
    offline): with coefficients in canonical units the weighted terms start at similar sizes."""
    vertex_weight: float = 1.0
    """Weight of the L1 between mouth vertices (canonical units x 10, as SyncNet sees them)."""
    triplet_weight: float = 1.0
    triplet_margin: float = 5.0
    sync_weight: float = 1.0
    style_weight: float = 1.0
    temporal_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.input_dropout < 1:
            raise ValueError(f"input_dropout must be in [0, 1), not {self.input_dropout}")
        if self.input_dropout and self.speech == "phones":
            raise ValueError("input_dropout needs frame rows (speech whisper, whisper3 or mel), not phone labels")

    @property
    def style_width(self) -> int:
        """Values a frame of a style clip has: K coefficients (+ 3 of head motion)."""
        return self.n_expression + 3 * self.style_head_motion

    @property
    def upper_face(self) -> list[int]:
        lower = set(self.lower_face)
        return [i for i in range(self.n_expression) if i not in lower]
