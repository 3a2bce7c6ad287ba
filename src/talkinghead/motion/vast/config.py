"""Architecture and loss weights of VAST (stored inside its checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

from talkinghead.audio.posteriorgram import speech_dim

LOSSES = ("asymmetric", "mse")


@dataclass
class VastConfig:
    """VAST (Chen et al., ICCV 2023 workshops) on our face coefficient model.

    VAST's own sizes (233 expression parameters, 256-wide encoders) were chosen for its 3D face model; ours
    follow its layout at the size of our 64-coefficient model. The loss weights are our defaults (the paper
    gives none we could check offline)."""

    speech: str = "ppg"
    """Speech representation: "ppg" (phone posteriorgram), "whisper" or "whisper3" (Whisper tiny.en's encoder: its last
    layer, or its third block)."""
    n_expression: int = 64
    strong: list[int] = field(default_factory=list)
    """Speech-strongly-related coefficients (decoded non-autoregressively); the rest are weakly related
    (decoded autoregressively). Computed by :func:`talkinghead.motion.vast.split.strong_coefficients`."""
    d_model: int = 256
    heads: int = 4
    style_conv_layers: int = 2
    style_dim: int = 128
    """Width of the style vector z."""
    max_style_frames: int = 256
    enhancer: bool = True
    """Variational style enhancer (False: the style vector is the encoder's output, the paper's ablation)."""
    flow_steps: int = 4
    """K Householder reflections (0: a plain Gaussian posterior, the paper's ablation)."""
    nar_layers: int = 3
    feedforward: int = 1024
    ar_hidden: int = 256
    ar_layers: int = 2
    input_dropout: float = 0.0
    """Dropout on the speech features entering the speech encoder (training only; our addition: on ``train/``'s
    ~100 speakers VAST fits its training clips far better than new speakers)."""
    speech_dropout: float = 0.5
    """Dropout on the speech features of the autoregressive decoder (VAST: weakly related motion should
    not lean on speech alone)."""
    ar_input_noise: float = 0.1
    """Gaussian noise (in units of the coefficient's std) on the teacher-forced previous frame in training."""
    dropout: float = 0.1
    loss: str = "asymmetric"
    """Reconstruction loss: "asymmetric" or "mse" (see :func:`talkinghead.motion.vast.model.reconstruction_loss`)."""
    asymmetry: float = 2.0
    """Weight of errors that shrink a coefficient towards zero relative to those that exaggerate it."""
    reconstruction_weight: float = 10.0
    kl_weight: float = 0.01
    mouth_gain: float = 1.0
    """Factor on the generated lower-face coefficients at inference
    (:func:`talkinghead.motion.vast.infer.vast_expression`; ``train-vast --mouth-gain``): the warp renderer and the
    face mesher lose small openings, so a mouth opened more might follow the speech better on screen. Choose it on
    speakers the model never saw (``benchmarks/vast_gain.py``); 1 (the default, older checkpoints and the shipped
    model, where the benchmark kept it) leaves the mouth as predicted."""

    def __post_init__(self) -> None:
        speech_dim(self.speech)
        if not 0 <= self.input_dropout < 1:
            raise ValueError(f"input_dropout must be in [0, 1), not {self.input_dropout}")
        if self.mouth_gain <= 0:
            raise ValueError(f"mouth_gain must be positive, not {self.mouth_gain}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if sorted(set(self.strong)) != sorted(self.strong) or not set(self.strong) <= set(range(self.n_expression)):
            raise ValueError("strong must list distinct coefficient indices below n_expression")

    @property
    def speech_dim(self) -> int:
        return speech_dim(self.speech)

    @property
    def weak(self) -> list[int]:
        strong = set(self.strong)
        return [i for i in range(self.n_expression) if i not in strong]
