"""Structured logs: every line of a run carries its correlation id.

In Azure, `extra` fields become customDimensions in Application Insights; locally the
JsonFormatter prints one JSON object per line.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import MutableMapping
from typing import Any

from .domain.pii import scrub


class Run(logging.LoggerAdapter):
    """A logger bound to one run's correlation id (and any other fixed fields)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = {**(self.extra or {}), **kwargs.get("extra", {})}
        # Extra fields become customDimensions, which the record factory below never sees: scrubbed here.
        # Ids and counts are most of them; scrub() passes those at its pre-check (~0.2 µs a field).
        kwargs["extra"] = {k: scrub(v) if isinstance(v, str) else v for k, v in extra.items()}
        return msg, kwargs


def bind(logger: logging.Logger, correlation_id: str, **fields: Any) -> Run:
    return Run(logger, {"correlationId": correlation_id, **fields})


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_FORMATTER = logging.Formatter()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z", "level": record.levelname, "logger": record.name,
                "msg": record.getMessage()}
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, default=str)


_installed = False


def install_scrubber() -> None:
    """Scrub e-mail addresses, IBANs and phone numbers from every log line of this process (message and
    exception), whatever handler writes it (the Functions worker's in Azure, the JSON formatter locally)."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if record.exc_info and record.exc_info[0] is not None:
            # An exception's text may quote a value ("expected a number, got '+49 89 1234567'"). Formatters,
            # the Functions worker's included, use exc_text when it is set instead of formatting again.
            record.exc_text = scrub(_FORMATTER.formatException(record.exc_info))
        try:
            text = record.getMessage()
        except Exception:  # a bad format string is the caller's bug; leave the record as it was
            return record
        cleaned = scrub(text)
        if cleaned != text:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
