"""Work in a background thread: the few places where two stages can overlap on a laptop's cores."""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class _Failed:
    """The producer's exception, on its way to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def ahead(items: Iterable[T], *, depth: int = 8, waited: list[float] | None = None) -> Iterator[T]:
    """The items of ``items``, made in a background thread (in a copy of the caller's context, so progress
    listeners carry over) up to ``depth`` items ahead of the consumer, so that the producer (a renderer, Whisper:
    OpenCV, NumPy, torch and CTranslate2 release the GIL) and the consumer (the encoder, the aligner) use both cores.

    An exception in the producer is raised here; when the consumer stops early (an error while encoding, an
    interrupt) the producer stops after the item it is making and closes ``items`` (when it is a generator: its
    ``finally`` blocks run now, in the producer's thread), and this waits for that. ``waited[0]`` (when given)
    grows by the seconds the consumer waited for items.
    """
    done = object()
    made: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                made.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failed(exc))
        finally:  # a generator left suspended would keep what it runs (another ahead's thread) until collected
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=contextvars.copy_context().run, args=(produce,), name="talkinghead-ahead",
                              daemon=True)
    worker.start()
    try:
        while True:
            start = time.perf_counter()
            item = made.get()
            if waited is not None:
                waited[0] += time.perf_counter() - start
            if item is done:
                return
            if isinstance(item, _Failed):
                error, item = item.error, None
                try:
                    raise error
                finally:  # the traceback holds this frame: no cycle through it keeps the producer's leftovers
                    del error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()  # after the item in hand: no thread left running into the interpreter's exit


class Background(Generic[T]):
    """``work()`` running in a background thread (in a copy of the caller's context) while the caller does
    something else.

    The thread is a daemon: when the caller fails first, the program can exit without waiting for it.
    """

    def __init__(self, work: Callable[[], T], *, name: str = "talkinghead-background") -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._seconds = 0.0
        self._finished = threading.Event()
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run, work), name=name,
                                        daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        start = time.perf_counter()
        try:
            self._value = work()
        except BaseException as exc:  # raised in the caller by result()
            self._error = exc
        finally:
            self._seconds = time.perf_counter() - start
            self._finished.set()

    def result(self, poll: Callable[[], object] | None = None) -> tuple[T, float]:
        """Wait for the work, calling ``poll()`` (when given) about ten times a second meanwhile: (its value, the
        seconds it took); its exception is raised here, once (the object then lets go of it: its traceback holds
        the object)."""
        # not Thread.join: interrupted by a signal (Ctrl-C, SIGTERM), Python 3.11 marks the thread as ended while
        # it still runs, and a later join returns at once (CPython gh-90882)
        while not self._finished.wait(0.1):
            if poll is not None:
                poll()
        if self._error is not None:
            error, self._error = self._error, None  # its traceback holds this object: no cycle keeps it
            raise error
        return self._value, self._seconds  # type: ignore[return-value]  # set: the work returned
