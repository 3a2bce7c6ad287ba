"""Media input/output: images, videos and audio in; mp4 (h264 + aac) out."""

from talkinghead.io.audio import load_audio
from talkinghead.io.image import read_image, resize_longer
from talkinghead.io.video import VideoClip, read_video, write_video

__all__ = ["VideoClip", "load_audio", "read_image", "read_video", "resize_longer", "write_video"]
