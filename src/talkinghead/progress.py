"""Progress bars on stderr (tqdm), silenced by ``quiet``."""

from __future__ import annotations

import sys

from tqdm import tqdm


def bar(total: int | None, desc: str, *, quiet: bool = False, unit: str = "frame") -> tqdm:
    """A tqdm progress bar on stderr; disabled when ``quiet``."""
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr, leave=False,
                dynamic_ncols=True, mininterval=0.2)
