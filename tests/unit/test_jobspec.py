"""What `jobs --json` publishes for producers: templates and schemas that rebuild the payloads."""

from __future__ import annotations

import msgspec
import pytest

from tgworkers.engine.jobspec import render, spec_of, template_of
from tgworkers.engine.registry import Registry
from tgworkers.errors import InputError
from tgworkers.jobs import PROCESSORS
from tgworkers.producer.catalogue import registry_from_specs
from tgworkers.producer.schema import SchemaError, struct_from_schema

REGISTRY = Registry(PROCESSORS)
SPECS = [
    spec_of(jt, REGISTRY.processor_of[name], 3) for name, jt in sorted(REGISTRY.job_types.items())
]


def test_templates_of_the_platforms_job_types():
    by_name = {s.name: s for s in SPECS}
    assert by_name["cfb.settle"].job_id == "cfb.settle:{betId}"
    assert by_name["cfb.settle"].partition_key == "{betId}"
    assert by_name["escrow.adjudicate"].job_id == "escrow.adjudicate:{escrowId}"
    assert by_name["dlq.replay"].job_id is None
    assert not by_name["dlq.replay"].job_id_from_payload


def test_a_derivation_that_is_not_a_template_publishes_none():
    jt = REGISTRY.job_types["cfb.settle"]
    assert template_of(jt, lambda p: p.bet_id.upper()) is None
    assert template_of(jt, lambda p: str(len(p.bet_id))) is None
    assert template_of(jt, None) is None


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_schema_rebuilds_a_struct_with_the_same_wire_shape(spec):
    jt = REGISTRY.job_types[spec.name]
    rebuilt = struct_from_schema(spec.schema)
    assert (
        msgspec.json.schema(rebuilt)["$defs"][jt.payload.__name__]["properties"]
        == (spec.schema["$defs"][jt.payload.__name__]["properties"])
    )


def test_rebuilt_job_types_derive_the_same_ids_and_refuse_the_same_payloads():
    rebuilt = registry_from_specs(SPECS)
    jt = rebuilt.job_types["escrow.adjudicate"]
    good = {"escrowId": "e_1", "decision": "split", "splitBps": 10, "moderatorId": "m"}
    value = msgspec.convert(good, jt.payload)
    assert jt.job_id is not None
    assert jt.job_id(value) == "escrow.adjudicate:e_1"
    assert rebuilt.processors["escrow"].partitions == 3
    for bad in ({**good, "decision": "maybe"}, {**good, "extra": 1}, {"escrowId": "e_1"}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, jt.payload)


def test_an_id_derived_in_code_must_be_passed_explicitly():
    (spec,) = [s for s in SPECS if s.name == "cfb.settle"]
    opaque = msgspec.structs.replace(spec, job_id=None)
    jt = registry_from_specs([opaque]).job_types["cfb.settle"]
    assert jt.job_id is not None
    with pytest.raises(InputError, match="job id is derived in code"):
        jt.job_id(msgspec.convert({"betId": "b"}, jt.payload))


def test_render_and_unsupported_schemas():
    assert render("a:{x}:{y}", {"x": "1", "y": 2}) == "a:1:2"
    with pytest.raises(SchemaError, match="no top-level"):
        struct_from_schema({"type": "object"})
