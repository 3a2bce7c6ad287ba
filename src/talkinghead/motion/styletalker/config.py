"""StyleTalker's architecture (stored inside its checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass

MOUTH_AXES = ("probe", "generator")
"""The ways training fits StyleTalker's mouth direction (``StyleTalkerConfig.mouth_axis``)."""


@dataclass
class StyleTalkerConfig:
    """StyleTalker (Min et al., 2022) on the compact generator's W+ (``n_latents`` vectors of ``w_dim``).

    The first ``manipulated`` style vectors (StyleTalker: the first half, the coarse and middle layers that hold
    pose and mouth shape) get one StyleTalker block each; the rest stay the reference's."""

    w_dim: int = 256
    n_latents: int = 12
    manipulated: int = 6
    speech: str = "mel"
    """The audio encoder's input (:data:`talkinghead.audio.speech.SPEECH_INPUTS`): mel windows into the paper's
    SE-ResNet, or a 5-frame window of phone one-hots or Whisper tiny.en encoder features into a small MLP
    (:class:`talkinghead.nn.encoders.WindowEncoder`; our addition)."""
    n_mels: int = 80
    mel_frames: int = 16
    """Mel window per video frame: 0.2 s (IP_LAP's mel settings, 80 frames/s)."""
    speech_dropout: float = 0.0
    """Dropout on the speech inputs while training (each feature of each frame; our addition, against the audio
    encoder learning the training speakers: a linear probe of Whisper features reads a new speaker's mouth better
    than the encoder did without it)."""
    mouth_gain: float = 1.0
    """At inference (prior samples and ``--motion-from``), each frame's offset from the reference's codes along the
    mouth direction (``StyleTalker.mouth_direction``, see ``mouth_axis``) is multiplied by this (our addition: the
    feature-path generator draws a mouth at about a quarter of the opening the codes say); 1: off, and no direction
    is stored unless ``mouth_window`` needs one."""
    mouth_axis: str = "probe"
    """How training fits the mouth direction: ``probe``, the read-out direction of the mouth probe (ridge from the
    manipulated codes to the mesh's mouth opening); ``generator``, the direction along which the generator opens
    the mouth it draws (the drawn opening's gradient, by finite differences from reference photos:
    ``talkinghead.train.styletalker.fit_generator_mouth``; our addition)."""
    mouth_window: int = 0
    """At inference, the mouth's motion along the mouth direction from a linear map of the speech (our addition,
    :meth:`StyleTalker.speak_mouth`): ridge regression over +-``mouth_window`` frames of the speech's frame
    vectors to the mouth opening, fitted in training; the decoded codes keep their mean along the direction and
    take the map's changes. 0: off (the decoder's mouth). Needs a frame-level speech input (not ``mel``)."""
    audio_channels: int = 32
    """Width of the audio encoder's first stage (doubling over three stages)."""
    audio_dim: int = 128
    audio_features: int = 32
    """Each block's audio vectors (a fully connected layer of the encoder's; the paper: 32)."""
    w_features: int = 32
    """The posterior encoder's two fully connected layers' output (the paper: hidden 128, output 32)."""
    z_dim: int = 16
    """Motion latent per manipulated layer."""
    hidden: int = 128
    """The posterior LSTM's, the smoothing module's and the manipulation's width (the paper: 128)."""
    smoothing_sigma: float = 1.0
    """Gaussian smoothing of the block's motion and audio inputs over time, in frames."""
    prior_hidden: int = 256
    """Both prior LSTMs (the paper: 256)."""
    flow_steps: int = 4
    flow_hidden: int = 128

    def __post_init__(self) -> None:
        if not 1 <= self.manipulated <= self.n_latents:
            raise ValueError(f"manipulated must be 1..{self.n_latents}, not {self.manipulated}")
        if self.mouth_gain <= 0:
            raise ValueError(f"mouth_gain must be positive, not {self.mouth_gain}")
        if self.mouth_axis not in MOUTH_AXES:
            raise ValueError(f"mouth_axis must be one of {', '.join(MOUTH_AXES)}, not {self.mouth_axis!r}")
        if self.mouth_window < 0:
            raise ValueError(f"mouth_window must be 0 or more, not {self.mouth_window}")
        if self.mouth_window and self.speech == "mel":
            raise ValueError("the speech's mouth map (mouth_window) needs frame-level speech inputs, not mel windows")
        if self.z_dim < 2:
            raise ValueError("each block's flow needs z_dim >= 2")

    @property
    def stores_mouth_direction(self) -> bool:
        """Whether the model holds a mouth direction (``mouth_gain`` not 1, or a ``mouth_window``)."""
        return self.mouth_gain != 1.0 or self.mouth_window > 0

    @property
    def motion_dim(self) -> int:
        """Size of the whole motion latent of a frame (all blocks)."""
        return self.manipulated * self.z_dim
