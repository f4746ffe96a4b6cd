"""Which job types a test runs: the installed jobs, a list of processors, or `module:ATTR`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tgworkers.cli.app import load_processors
from tgworkers.engine.registry import JobType, Processor, Registry

AppSource = Registry | Sequence[Processor] | str | None
"""A `Registry`, processors, a `"module:ATTR"` spec (like `run --app`), or None (installed)."""


def load_app(app: AppSource, *, extra: JobType[Any] | None = None) -> Registry:
    """The registry for `app`; `extra` (a job type not in it) gets a processor of its own."""
    if isinstance(app, Registry):
        registry = app
    elif app is None or isinstance(app, str):
        registry = Registry(load_processors(app))
    else:
        registry = Registry(app)
    if extra is None or extra.name in registry.job_types:
        return registry
    own = Processor(name=extra.name, job_types=(extra,))
    return Registry((*registry.processors.values(), own))
