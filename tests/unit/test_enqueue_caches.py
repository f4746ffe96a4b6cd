"""What a bulk enqueue caches per call site: partition keys per settings, ids per process."""

from __future__ import annotations

import os

from tests.conftest import make_settings

from tgworkers.engine import Processor
from tgworkers.engine.client import new_job_id
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live


def test_partition_keys_follow_a_reload_of_the_partition_count():
    proc = Processor(name="test.cache", job_types=())
    settings = Live(make_settings("redis://localhost:1"))
    layout = Layout(settings)
    assert layout.partition_for(proc, "k") is layout.partition_for(proc, "k")  # cached
    assert layout.partition_count(proc) == 1
    settings.value = make_settings("redis://localhost:1", PARTITIONS_TEST_CACHE="8")
    assert layout.partition_count(proc) == 8
    assert {layout.partition_for(proc, str(i)).partition for i in range(64)} == set(range(8))


def test_a_forked_child_never_hands_out_the_parents_ids():
    new_job_id()  # the parent holds a buffer of random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids, then out
        os.write(write, " ".join(new_job_id() for _ in range(8)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = set(os.read(read, 4096).decode().split())
    parent = {new_job_id() for _ in range(8)}
    assert len(child) == 8
    assert not child & parent
