"""Producers: enqueue jobs from another Python service without the worker's settings.

See `Producer` and docs/producers.md; other languages: docs/wire-format.md.
"""

from tgworkers.producer.producer import Job, Producer

__all__ = ["Job", "Producer"]
