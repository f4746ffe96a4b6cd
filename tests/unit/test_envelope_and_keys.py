from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, strategies as st

from tgworkers.engine.wire.envelope import (
    Envelope,
    HistoryEntry,
    MalformedEntryError,
    fields_from_json,
    fields_json,
    from_fields,
    to_fields,
)
from tgworkers.engine.wire.keys import PartitionKeys, partition_of

texts = st.text(min_size=1, max_size=40)


@given(
    job_id=texts, name=texts, attempt=st.integers(1, 50), key=st.none() | texts,
    history=st.lists(st.builds(HistoryEntry, attempt=st.integers(1, 9), at_ms=st.integers(0, 2**45),
                               kind=texts, message=st.text(max_size=50)), max_size=3),
)  # fmt: skip
def test_envelope_round_trips_through_stream_fields_and_delayed_json(
    job_id, name, attempt, key, history
):
    env = Envelope(id=job_id, name=name, payload=b'{"a":1}', enqueued_ms=5, attempt=attempt,
                   key=key, history=tuple(history))  # fmt: skip
    flat = to_fields(env)
    as_redis = {flat[i].encode() if isinstance(flat[i], str) else flat[i]:
                flat[i + 1].encode() if isinstance(flat[i + 1], str) else flat[i + 1]
                for i in range(0, len(flat), 2)}  # fmt: skip
    assert from_fields(as_redis, entry_ms=1) == env
    assert from_fields(fields_from_json(fields_json(flat)), entry_ms=1) == env


def test_the_common_entry_and_one_with_optional_fields_decode_alike():
    """Entries with only the required fields skip the optional lookups: same result."""
    common = {b"id": b"j", b"name": b"x", b"payload": '{"é":1}'.encode(), b"auto_id": b"1"}
    env = from_fields(common, entry_id=b"1700000000123-7")
    assert env == Envelope(id="j", name="x", payload=common[b"payload"], enqueued_ms=1700000000123,
                           auto_id=True)  # fmt: skip
    with_key = from_fields({**common, b"key": b"k", b"attempt": b"3"}, entry_id=b"5-0")
    assert with_key == msgspec.structs.replace(env, key="k", attempt=3, enqueued_ms=5)
    with pytest.raises(MalformedEntryError, match="'payload' is not UTF-8"):
        from_fields({**common, b"payload": b"\xff"}, entry_ms=0)


_field_values = st.sampled_from([b"", b"0", b"1", b"-3", b"7", b"1_0", b" 2", b"x", b"\xff",
                                  b"{}", '{"\u00e9":1}'.encode(), b"1700000000123"])  # fmt: skip


_field_names = st.sampled_from([b"id", b"name", b"payload", b"attempt", b"enqueued_ms",
                                 b"auto_id", b"key", b"due_ms", b"other"])  # fmt: skip


@given(st.dictionaries(_field_names, _field_values))
def test_the_one_step_reading_of_the_common_entry_agrees_with_the_field_by_field_one(fields):
    """`from_fields` reads our producers' entry in one step: whatever the bytes, the same
    envelope as reading each field on its own, or the same error."""
    from tgworkers.engine.wire.envelope import _read_fields

    def outcome(read):
        try:
            return read()
        except MalformedEntryError as exc:
            return str(exc)

    expected = outcome(lambda: _read_fields(fields, None, b"1700000000999-0"))
    assert outcome(lambda: from_fields(fields, entry_id=b"1700000000999-0")) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({b"name": b"x", b"payload": b"{}"}, "missing field 'id'"),
        (
            {b"id": b"1", b"name": b"x", b"payload": b"{}", b"attempt": b"two"},
            "'attempt' is not an integer",
        ),
        ({b"id": b"\xff", b"name": b"x", b"payload": b"{}"}, "'id' is not UTF-8"),
    ],
)
def test_malformed_entries_name_the_problem(fields, message):
    with pytest.raises(MalformedEntryError, match=message):
        from_fields(fields, entry_ms=0)


def test_every_key_of_a_partition_shares_one_hash_tag():
    pk = PartitionKeys("tgw", "escrow", 3, ":dead")
    keys = [
        pk.ready,
        pk.delayed,
        pk.delayed_jobs,
        pk.jobs,
        pk.done,
        pk.dlq,
        pk.stats,
        pk.steps,
        pk.lock("e_1"),
    ]
    assert {k[: k.index("}") + 1] for k in keys} == {"{tgw:escrow:3}"}
    assert pk.dlq == "{tgw:escrow:3}:dead"


@given(st.text(max_size=30), st.integers(1, 64))
def test_partition_is_stable_and_in_range(key, n):
    p = partition_of(key, n)
    assert 0 <= p < n
    assert p == partition_of(key, n)


def test_partition_formula_is_the_documented_one():
    # sha256("escrow-a")[:4] big-endian mod 7, as docs/wire-format.md says
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"escrow-a").digest()[:4], "big") % 7
    assert partition_of("escrow-a", 7) == expected
    assert msgspec.json.encode(1)  # msgspec importable in the unit env


def test_a_job_key_shares_the_partition_tag_and_never_an_engine_key() -> None:
    pk = PartitionKeys("tgw", "cfb.price.sample", 0)
    assert pk.job_key("bars") == "{tgw:cfb.price.sample:0}:bars"
    for taken in ("ready", "delayed:jobs", "steps", "lock:k", "dlq", ""):
        with pytest.raises(ValueError, match="engine's own keys"):
            pk.job_key(taken)
