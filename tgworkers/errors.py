"""The error tree of tgworkers, by category, and the exit status each maps to.

Foreign exceptions (redis, httpx, msgspec) are translated once, at the adapter that
met them; everything above the adapters sees only these classes. Messages name the
bad input and never hold a secret's value.
"""


class TgworkersError(Exception):
    """Root of every error tgworkers raises on purpose."""

    exit_status = 1


class ConfigError(TgworkersError):
    """A setting is missing or malformed; start-up stops with exit status 2."""

    exit_status = 2


class InputError(TgworkersError):
    """Bad user input (unknown queue, bad payload, bad flag); exit status 2."""

    exit_status = 2


class OperationError(TgworkersError):
    """An operation could not be carried out (e.g. Redis is down); exit status 1."""

    exit_status = 1


class RedisUnavailableError(OperationError):
    """Redis could not be reached or answered with a connection-level error."""
