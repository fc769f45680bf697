"""Structured logging: one line per event, `key=value` pairs, never secrets."""

from __future__ import annotations

import logging
import re
import sys


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=info logger=... msg="..." key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        parts = [f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}",
                 f"level={record.levelname.lower()}", f"logger={record.name}",
                 f"msg={_quote(record.getMessage())}"]
        parts += [f"{key}={_quote(str(value))}" for key, value in fields.items()]
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


# Characters a terminal or log viewer would take as a line break or a control sequence:
# written as escapes, so a value from a request cannot forge or hide a log line.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _quote(text: str) -> str:
    if text and not any(char in text for char in ' "=') and not _UNSAFE.search(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _UNSAFE.sub(_escape, escaped) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\n" if char == "\n" else f"\\u{ord(char):04x}"


# HTTP client libraries that log each request's URL at INFO (alert destinations' URLs are
# secrets, e.g. Slack webhook URLs): kept at WARNING whatever the root logger's level.
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore")


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_WARNINGS_ONLY = _WarningsOnly()


def quiet_http_client_logs() -> None:
    """Keep httpx/httpcore from logging request URLs.

    A filter as well as a level: whoever sets these loggers' level later (a test harness,
    an embedding application) still cannot make them log a URL at INFO or DEBUG.
    """
    for name in HTTP_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
        if _WARNINGS_ONLY not in logger.filters:
            logger.addFilter(_WARNINGS_ONLY)


def setup_logging(level: str = "info") -> None:
    """Send trailguard's structured logs to stderr."""
    quiet_http_client_logs()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger("trailguard")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def log_fields(logger: logging.Logger, level: int, message: str, **fields: object) -> None:
    """Log `message` with structured `fields`."""
    logger.log(level, message, extra={"fields": fields})
