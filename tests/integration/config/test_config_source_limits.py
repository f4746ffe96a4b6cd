"""`CONFIG_URL` is read as named: no redirect followed, no body past the cap read."""

from __future__ import annotations

import json

import pytest
from tests.support.config_server import ConfigServer

from tgworkers.bootstrap.config_sources import HttpSource, SourceUnavailableError

ONE_MIB = 1024 * 1024


async def test_a_redirect_is_not_followed() -> None:
    elsewhere = ConfigServer({"PAUSED_QUEUES": "test.work"})
    server = ConfigServer({})
    server.redirect = elsewhere.url
    source = HttpSource(server.url)
    try:
        with pytest.raises(SourceUnavailableError, match="redirect"):
            await source.fetch()
        assert elsewhere.requests == 0
    finally:
        await source.aclose()
        server.stop()
        elsewhere.stop()


async def test_a_body_over_the_cap_is_refused_without_reading_it_whole() -> None:
    server = ConfigServer(json.dumps({"PAD": "x" * (ONE_MIB + 10)}))
    source = HttpSource(server.url)
    try:
        with pytest.raises(SourceUnavailableError, match="larger than"):
            await source.fetch()
        server.set({"PAUSED_QUEUES": "test.work"})  # a document of a sane size still reads
        fetched = await source.fetch()
        assert fetched is not None and b"PAUSED_QUEUES" in fetched.body
    finally:
        await source.aclose()
        server.stop()
