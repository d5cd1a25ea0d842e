"""Secrets kept out of logs: a filter on every log handler that masks them in each record."""

from __future__ import annotations

import logging
from collections.abc import Callable


def log_handlers() -> list[logging.Handler]:
    """Every handler configured so far, on the root logger and on any named one."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    return [h for logger in [logging.root, *loggers] for h in getattr(logger, "handlers", [])]


class _Redactor(logging.Filter):
    def __init__(self, redact: Callable[[str], str]):
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_redactor(redact: Callable[[str], str] | None) -> None:
    """Mask with ``redact`` in every log record any handler writes (console, Prefect's API),
    in place of any redactor installed before; None removes them."""
    masker = _Redactor(redact) if redact else None
    for handler in log_handlers():
        for stale in [f for f in handler.filters if isinstance(f, _Redactor)]:
            handler.removeFilter(stale)
        if masker:
            handler.addFilter(masker)
