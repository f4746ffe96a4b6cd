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


class ConflictError(InputError):
    """The change conflicts with state the caller does not own (HTTP 409); exit status 2."""


class OperationError(TgworkersError):
    """An operation could not be carried out (e.g. Redis is down); exit status 1."""

    exit_status = 1


class RedisUnavailableError(OperationError):
    """Redis could not be reached or answered with a connection-level error."""


class PayloadError(InputError):
    """A payload that does not fit its job type; carries where, what, and what was expected.

    `expected` maps each payload field (wire name) to `{"type": …, "required": bool}`,
    taken from the job type's schema, so the CLI and the admin API (422) can say
    what a correct payload looks like, not only what was wrong.
    """

    def __init__(
        self, job: str, problem: str, path: str, expected: dict[str, dict[str, object]]
    ) -> None:
        self.job = job
        self.problem = problem
        self.path = path
        self.expected = expected
        fields = ", ".join(
            f"{name} ({spec['type']}{', required' if spec['required'] else ''})"
            for name, spec in expected.items()
        )
        where = f" at {path}" if path and path != "$" else ""
        super().__init__(
            f"{job}: invalid payload: {problem}{where}; expected fields: {fields or 'none'}"
        )

    def body(self) -> dict[str, object]:
        """The structured 422 answer of the admin API."""
        return {
            "error": str(self),
            "path": self.path,
            "problem": self.problem,
            "expected": self.expected,
        }
