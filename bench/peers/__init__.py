"""The comparison with the other Python Redis job queues: `python -m bench.peers`."""
