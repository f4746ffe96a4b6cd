"""tgworkers: the background-worker service of the Telegram Mini App platform.

An asyncio job engine over Redis Streams (`tgworkers.engine`), typed peer clients
(`tgworkers.peers`) and the platform's jobs (`tgworkers.jobs`).
"""

__version__ = "0.1.0"
