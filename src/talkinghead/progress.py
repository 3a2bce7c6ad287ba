"""Progress bars on stderr (tqdm), silenced by ``quiet``, and reported to a listener when one is set.

The web app (:mod:`talkinghead.web`) sets a listener around a generation with :func:`report_to`; every bar
then also calls it with its description and the fraction done, whether or not the bar is shown.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm import tqdm

Listener = Callable[[str, float], None]
_listener: ContextVar[Listener | None] = ContextVar("talkinghead_progress_listener", default=None)


class _Reporting(tqdm):
    """A tqdm that also reports (description, fraction done) to a listener, even when disabled."""

    def __init__(self, *, listener: Listener, desc: str, total: int | None, **kwargs: object) -> None:
        super().__init__(desc=desc, total=total, **kwargs)  # type: ignore[arg-type]
        self._listener, self._desc, self._total, self._done = listener, desc, total, 0.0
        listener(desc, 0.0)

    def update(self, n: float | None = 1) -> bool | None:
        self._done += n or 0
        if self._total:
            self._listener(self._desc, min(1.0, self._done / self._total))
        return super().update(n)


def bar(total: int | None, desc: str, *, quiet: bool = False, unit: str = "frame") -> tqdm:
    """A tqdm progress bar on stderr; disabled when ``quiet``; reported to the current listener if any."""
    kwargs = {"total": total, "desc": desc, "unit": unit, "disable": quiet, "file": sys.stderr, "leave": False,
              "dynamic_ncols": True, "mininterval": 0.2}
    listener = _listener.get()
    return _Reporting(listener=listener, **kwargs) if listener else tqdm(**kwargs)  # type: ignore[arg-type]


@contextmanager
def report_to(listener: Listener) -> Iterator[None]:
    """Within the block, every :func:`bar` also calls ``listener(description, fraction done)``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
