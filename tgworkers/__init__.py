"""tgworkers: the background-worker service of the Telegram Mini App platform.

An asyncio job engine over Redis Streams (`tgworkers.engine`), typed peer clients
(`tgworkers.peers`), the platform's jobs (`tgworkers.jobs`), a producer for other
services (`tgworkers.Producer`) and a testing toolkit for job authors
(`tgworkers.testing`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tgworkers.producer import Producer

__version__ = "0.1.0"
__all__ = ["Producer", "__version__"]


def __getattr__(name: str) -> Any:
    # lazy: `import tgworkers` (peers read `__version__`) must not load the engine
    if name == "Producer":
        from tgworkers.producer import Producer  # noqa: PLC0415

        return Producer
    raise AttributeError(f"module 'tgworkers' has no attribute {name!r}")
