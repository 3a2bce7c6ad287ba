"""User-facing errors: one line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class TalkingHeadError(Exception):
    """An error caused by the user's input or environment; the CLI prints it on one line."""


class InputError(TalkingHeadError):
    """A named input file is missing, unreadable or unusable."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class InputWarning(UserWarning):
    """An input was used but something about it looks wrong (a truncated file); the CLI prints it on one line."""
