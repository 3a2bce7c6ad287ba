"""talkinghead: one face + speech audio -> a talking-head video.

Nothing runs at import time; the public API lives in :mod:`talkinghead.api`.
"""

__version__ = "0.1.0"
