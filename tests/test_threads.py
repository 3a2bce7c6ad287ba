"""Background work: items made ahead in a thread, and work running beside the caller."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from talkinghead.threads import Background, ahead


def test_ahead_keeps_the_order_and_runs_in_another_thread() -> None:
    makers: set[str] = set()

    def made() -> Iterator[int]:
        for i in range(50):
            makers.add(threading.current_thread().name)
            yield i

    waited = [0.0]
    assert list(ahead(made(), depth=4, waited=waited)) == list(range(50))
    assert makers == {"talkinghead-ahead"} and waited[0] >= 0.0


def test_ahead_raises_the_producers_error_after_its_items() -> None:
    def made() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("frame 3 failed")

    got = []
    with pytest.raises(ValueError, match="frame 3 failed"):
        for item in ahead(made()):
            got.append(item)
    assert got == [1, 2]


def test_ahead_stops_the_producer_when_the_consumer_stops() -> None:
    produced = []

    def made() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    items = ahead(made(), depth=2)
    assert next(items) == 0
    items.close()  # the consumer stops early: the producer finishes the item in hand and ends
    assert not any(t.name == "talkinghead-ahead" for t in threading.enumerate())
    assert len(produced) <= 5


def test_a_stopped_consumer_has_the_producer_close_its_source() -> None:
    """The source's ``finally`` (another ahead's thread stopping, PyTorch's threads restored) runs in the producer's
    thread before ``close()`` returns, not whenever the source happens to be collected."""
    closed = []

    def made() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.append(threading.current_thread().name)

    items = ahead(made(), depth=2)
    assert next(items) == 0
    items.close()
    assert closed == ["talkinghead-ahead"]


def test_an_interrupted_wait_still_waits_for_the_work() -> None:
    """A signal raising in the caller while it waits (Ctrl-C, SIGTERM) leaves the work running, and a second wait
    (the caller stopping the work on its way out) waits for it: Thread.join would take it for ended."""

    class Interrupted(Exception):
        pass

    def interrupt(*_: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        work = Background(lambda: time.sleep(0.6) or 42)
        signal.setitimer(signal.ITIMER_REAL, 0.15)
        with pytest.raises(Interrupted):
            work.result()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert work.result()[0] == 42


def test_background_returns_the_value_and_its_time_or_raises() -> None:
    polls = []
    work = Background(lambda: time.sleep(0.25) or 42)
    value, seconds = work.result(poll=lambda: polls.append(1))
    assert value == 42 and 0.2 < seconds < 2.0 and polls

    def fail() -> None:
        raise RuntimeError("no face found")

    with pytest.raises(RuntimeError, match="no face found"):
        Background(fail).result()
