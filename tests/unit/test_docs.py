"""The documents a reader of the repository has: the contract's prose, the generated
configuration table and AsyncAPI document (up to date, and a valid AsyncAPI 3.0 document
describing every topic and Redis stream), and no reference to anything outside it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from devkit import docs
from schemas import topics
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# AsyncAPI 3.0.0's JSON Schema, from the npm package @asyncapi/specs 6.11.1 (Apache-2.0)
ASYNCAPI_SCHEMA = Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json"


def test_the_generated_documents_are_up_to_date() -> None:
    assert (ROOT / "docs/configuration.md").read_text() == docs.configuration(), "run: tierstream-dev docs"
    assert (ROOT / "docs/asyncapi.yaml").read_text() == docs.asyncapi_yaml(), "run: tierstream-dev docs"


def asyncapi_errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text()))
    return [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]


def test_the_asyncapi_document_is_valid_and_describes_every_topic_and_redis_stream() -> None:
    doc = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())
    assert asyncapi_errors(doc) == []
    addresses = {c["address"] for c in doc["channels"].values()}
    assert {"{topicPrefix}" + t.name for t in topics.ALL} <= addresses
    redis = {"{redisPrefix}" + t.redis_stream for t in topics.OUTPUTS if t.redis_stream}
    assert redis | {"{redisPrefix}" + t.redis_channel for t in topics.OUTPUTS if t.redis_channel} <= addresses
    assert len(redis) == 3
    for message in doc["components"]["messages"].values():
        jsonschema.Draft202012Validator.check_schema(message["payload"]["schema"])
    actions = {op["channel"]["$ref"].rsplit("/", 1)[1]: op["action"] for op in doc["operations"].values()}
    assert all(actions[t.name] == ("receive" if t.role is topics.Role.INPUT else "send") for t in topics.ALL)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d.pop("info"),
        lambda d: d["operations"][next(iter(d["operations"]))].update(action="publish"),  # AsyncAPI 2's verb
        lambda d: d["channels"]["balances"].update(address=7),
    ],
)
def test_the_validation_refuses_a_broken_document(break_it: Any) -> None:
    doc = docs.asyncapi()
    break_it(doc)
    assert asyncapi_errors(doc)


def test_every_setting_is_documented() -> None:
    rows = Settings.documented()
    assert all(meaning for _, _, meaning in rows), [name for name, _, meaning in rows if not meaning]
    text = (ROOT / "docs/configuration.md").read_text()
    assert all(f"`{name}`" in text for name, _, _ in rows)


def test_every_input_and_output_field_is_described_in_its_schema() -> None:
    for topic in topics.ALL:
        schema = json.loads(topic.schema_path.read_text())
        missing = [name for name, prop in schema["properties"].items() if not prop.get("description")]
        assert not missing, f"{topic.schema}: {missing}"


def test_the_repository_refers_to_nothing_outside_it() -> None:
    texts = [p for p in ROOT.rglob("*") if p.suffix in {".md", ".py", ".yaml", ".yml", ".toml", ".json"} and _ours(p)]
    outside = re.compile(r"\.\./shared|SPEC\.md|INFRA\.md|DOMAIN\.md|PERF\.md|STYLE\.md|SPEC section")
    found = [f"{p.relative_to(ROOT)}:{m.group(0)}" for p in texts for m in outside.finditer(p.read_text())]
    assert not found, found


def _ours(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    hidden = any(part.startswith(".") or part in {"node_modules", "__pycache__"} for part in parts)
    return not hidden and path.name != "test_docs.py"
