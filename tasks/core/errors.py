"""The errors a user can cause: bad data, a wrong URI, a refused registry call. One base class,
so the `mlops` command prints every one of them as one line."""

from __future__ import annotations

from collections.abc import Iterator


class PlatformError(Exception):
    """Something the user can fix; its message says what is wrong and what to do."""


def first_line(exc: BaseException, limit: int = 500) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it, and so on down the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__
