"""Credential redaction for URLs, in every form redis-py accepts.

redis-py reads a password from the userinfo (`redis://user:pw@host`,
`redis://:pw@host`, and a bare `redis://pw@host` is a username some people
use as one) and from the query string (`?password=pw`, and any other keyword it
passes to the connection, e.g. `ssl_password`; names are matched percent-decoded,
as redis-py reads them: `?%70assword=pw` is a password too). `redact_url` masks all of them,
keeping the scheme, host, port, path and harmless parameters readable, so
`stats`, `dev` and the log redactor can name the Redis they tried without
leaking how they logged in.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import SplitResult, unquote_plus, urlsplit

from tgworkers.secrets import MASK

SENSITIVE_PARAM: Final = re.compile(r"(?i)(pass|pwd|secret|token|auth|credential|key)")
URL_IN_TEXT: Final = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+")


def _netloc(netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return netloc
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"


def _query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        # redis-py decodes the name (`?%70assword=` is a password), so match it decoded
        sensitive = SENSITIVE_PARAM.search(unquote_plus(name))
        parts.append(f"{name}={MASK}" if eq and sensitive else item)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """`url` with every credential replaced by `***`; anything unparsable is masked whole."""
    try:
        parts: SplitResult = urlsplit(url)
    except ValueError:
        return MASK
    netloc = _netloc(parts.netloc)
    query = _query(parts.query) if parts.query else ""
    # a password may also hide in a malformed URL's path (`redis://h/0&password=x`)
    path = _query(parts.path) if "=" in parts.path else parts.path
    fragment = MASK if parts.fragment else ""
    return SplitResult(parts.scheme, netloc, path, query, fragment).geturl()


def redact_urls_in(text: str) -> str:
    """Every URL inside free text, redacted (the log redactor's URL rule)."""
    return URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
