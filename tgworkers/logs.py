"""Structured logging: structlog JSON lines (a console renderer on a terminal).

Events are `noun.past_verb` with snake_case fields. The redaction processor runs
last before rendering and masks anything that looks like a secret: the private
JWK (its `d`), bearer tokens, `Authorization` values and passwords in Redis URLs,
whatever field they arrive in.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Final

import structlog

from tgworkers.engine.telemetry.recorder import add_job_context
from tgworkers.redact import redact_urls_in
from tgworkers.secrets import MASK, Secret

_LEVELS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_SENSITIVE_KEYS: Final = frozenset(
    {"authorization", "token", "admin_token", "metrics_token", "password", "jwk",
     "private_jwk", "service_jwt_private_jwk", "secret", "d", "access_token", "id_token",
     "refresh_token", "api_key", "client_secret", "cookie", "set-cookie", "passwd"}
)  # fmt: skip
_PATTERNS: Final = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(eyJ[A-Za-z0-9_-]{4,}\.)[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+()"),  # a JWT's claims
    re.compile(r"(\"d\"\s*:\s*\")[^\"]+(\")"),
)


_MIN_SECRET_CHARS: Final = 6


def _mask_match(m: re.Match[str]) -> str:
    tail = m.group(2) if (m.lastindex or 0) > 1 else ""
    return m.group(1) + MASK + tail


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value and len(value) >= _MIN_SECRET_CHARS:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(_mask_match, text)
    return redact_urls_in(text)  # userinfo and ?password= in every URL


class Redactor:
    """A structlog processor masking secrets in every field of every event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(s for s in secrets if s)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if (key.lower() in _SENSITIVE_KEYS and value is not None) or isinstance(value, Secret):
                event[key] = MASK
            elif isinstance(value, str):
                event[key] = _scrub(value, self.secrets)
            elif isinstance(value, list | tuple | dict):
                event[key] = _scrub(repr(value), self.secrets) if self._leaks(value) else value
        return event

    def _leaks(self, value: object) -> bool:
        text = repr(value)
        return _scrub(text, self.secrets) != text


def configure_logging(
    level: str = "info", *, fmt: str = "auto", secrets: Iterable[str] = (), stream: Any = None
) -> None:
    """Configure structlog once per process (idempotent)."""
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_job_context,  # job id, name, attempt, queue, trace id of the run
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            Redactor(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=out)
