"""The spiders: feeds (polling), archive (recrawl backfill), articles (full text)."""

from __future__ import annotations

from typing import Protocol

from twisted.python.failure import Failure


class Progress(Protocol):
    """What a spider reports to a progress bar: a phase starts, more units of work are planned, units are done."""

    def phase(self, name: str) -> None: ...
    def plan(self, units: int) -> None: ...
    def done(self, units: int) -> None: ...


class NoProgress:
    def phase(self, name: str) -> None:
        pass

    def plan(self, units: int) -> None:
        pass

    def done(self, units: int) -> None:
        pass


def describe_failure(failure: Failure) -> str:
    """A failed request in one line: the exception's name and the first line of its message (or its doc)."""
    exc = failure.value
    message = str(exc).strip() or exc.__class__.__doc__ or ""
    return f"{type(exc).__name__}: {message.splitlines()[0] if message else ''}".rstrip(": ")
