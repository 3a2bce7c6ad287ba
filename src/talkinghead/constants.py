"""Named constants shared by every stage (defined once, imported everywhere)."""

SAMPLE_RATE = 16_000
"""Audio sample rate (Hz) used by every analysis stage: audio is mono float32 at this rate."""

DEFAULT_FPS = 25.0
"""Default output video frame rate (frames per second)."""

DEFAULT_SIZE = 512
"""Default longer side (pixels) of a video generated from a photo."""

MAX_AUDIO_SECONDS = 3600.0
"""Longest speech input accepted (seconds); longer input is rejected as too large."""

MAX_IMAGE_PIXELS = 64_000_000
"""Largest image accepted (pixels)."""

MIN_IMAGE_SIDE = 16
"""Smallest image or video side accepted (pixels); a face needs more, but smaller input is refused outright."""

MAX_FRAME_BYTES = 6 * 1024**3
"""Largest decoded video (bytes of RGB frames at the working size) held in memory."""

MAX_FACES = 4
"""Faces looked for in one image; the largest is used unless a face index is given (0 .. MAX_FACES - 1)."""

MAX_SEED = 2**32 - 1
"""Seeds are 32-bit (0 .. MAX_SEED)."""

SILENCE_PEAK = 1e-4
"""Audio whose absolute peak stays below this is treated as silent (float samples in [-1, 1])."""
DATA_FPS = 25.0
"""Frame rate (frames per second) of preprocessed clips and of every learned model's frames."""

CROP_SIZE = 256
"""Side (pixels) of the face crops of preprocessed clips, and of the crops the generator methods paste back."""
