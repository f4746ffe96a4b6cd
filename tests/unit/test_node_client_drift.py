"""The TypeScript client (clients/node) still matches the Python package's wire format.

Fails when enqueue.lua, the partition formula, the entry's field set or the job
types change without the Node client changing too. The fix: review
clients/node/src/client.ts against the change (then update its `WRITTEN_FOR`), and
regenerate with `cd clients/node && npm run generate`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from tgworkers.cli.jobs import describe
from tgworkers.config import load_settings
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.keys import WIRE_FORMAT_VERSION, Field, partition_of
from tgworkers.engine.wire.scripts import script_text
from tgworkers.jobs import PROCESSORS

NODE = Path(__file__).resolve().parents[2] / "clients" / "node"
REGENERATE = "run `cd clients/node && npm run generate`"


def _const(path: Path, name: str) -> object:
    """The JSON value of `export const NAME... = <json>;` in a generated file."""
    text = path.read_text(encoding="utf-8")
    m = re.search(rf"export const {name}\b[^=]*= (.*?)(?: as const)?;\n(?:\n|\Z)", text, re.S)
    assert m, f"{name} not found in {path}"
    return json.loads(m.group(1))


def _fields() -> dict[str, str]:
    return {k: v for k, v in vars(Field).items() if k.isupper()}


def test_the_client_was_reviewed_against_this_enqueue_script_and_field_set():
    client = (NODE / "src" / "client.ts").read_text(encoding="utf-8")
    sha = hashlib.sha256(script_text("enqueue").encode()).hexdigest()
    assert f'enqueueLuaSha256: "{sha}"' in client, (
        "tgworkers/engine/wire/lua/enqueue.lua changed: review the KEYS/ARGV layout in "
        f"clients/node/src/client.ts, set WRITTEN_FOR.enqueueLuaSha256 to {sha}, and {REGENERATE}"
    )
    written = re.search(r"fields: \[(.*?)\]", client, re.S)
    assert written, "WRITTEN_FOR.fields not found in clients/node/src/client.ts"
    assert set(re.findall(r'"(\w+)"', written.group(1))) == set(_fields().values()), (
        "the entry's field set (keys.py Field) changed: review what clients/node/src/client.ts "
        f"writes, update WRITTEN_FOR.fields, and {REGENERATE}"
    )


def test_the_generated_wire_constants_are_the_packages():
    wire = NODE / "src" / "generated" / "wire.ts"
    assert _const(wire, "ENQUEUE_LUA") == script_text("enqueue"), (
        f"enqueue.lua changed: {REGENERATE}"
    )
    assert _const(wire, "FIELD") == _fields(), f"Field names changed: {REGENERATE}"


def test_the_partition_vectors_are_the_python_formulas():
    vectors = json.loads((NODE / "test" / "partition-vectors.json").read_text(encoding="utf-8"))
    assert len(vectors) > 400
    wrong = [(k, n, p) for k, n, p in vectors if partition_of(k, n) != p]
    assert not wrong, f"the partition formula changed ({len(wrong)} vectors differ): {REGENERATE}"


def test_the_generated_job_specs_are_what_jobs_json_publishes():
    published = describe(Registry(PROCESSORS), load_settings({}, None))["jobs"]
    keys = (
        "queue",
        "partitions",
        "jobId",
        "jobIdFromPayload",
        "partitionKey",
        "partitionKeyFromPayload",
    )
    expected = {j["name"]: {k: j[k] for k in keys} for j in published}
    generated = _const(NODE / "src" / "generated" / "jobs.ts", "JOB_SPECS")
    assert generated == expected, f"job types changed: {REGENERATE}"
    schemas = {j["name"]: j["schema"] for j in published}
    canonical = json.dumps(schemas, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sha = hashlib.sha256(canonical.encode()).hexdigest()
    assert _const(NODE / "src" / "generated" / "jobs.ts", "SCHEMAS_SHA256") == sha, (
        f"payload schemas changed: {REGENERATE}"
    )


def test_the_packages_major_version_is_the_wire_format_version():
    package = json.loads((NODE / "package.json").read_text(encoding="utf-8"))
    major = int(package["version"].split(".")[0])
    assert (major, package["tgworkers"]["wireFormat"]) == (WIRE_FORMAT_VERSION,) * 2, (
        f"clients/node/package.json: version {package['version']} and tgworkers.wireFormat must "
        f"follow WIRE_FORMAT_VERSION = {WIRE_FORMAT_VERSION} (a new major version for a new format)"
    )
    wire = (NODE / "src" / "generated" / "wire.ts").read_text(encoding="utf-8")
    assert f"export const WIRE_FORMAT_VERSION = {WIRE_FORMAT_VERSION};" in wire, REGENERATE
