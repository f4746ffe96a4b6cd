"""Test support: a real redis-server, waiting on conditions, worker subprocesses."""
