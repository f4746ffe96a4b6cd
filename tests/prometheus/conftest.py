"""Fixtures: the jobs tests' fake peers and service key (one server per session)."""

from tests.integration.jobs.conftest import fake, fake_server, jwk_text  # noqa: F401
