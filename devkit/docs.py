"""The generated documents: ``docs/configuration.md`` from the settings, and
``docs/asyncapi.yaml`` (AsyncAPI 3.0) from the topic registry and the JSON Schema files.
``tierstream-dev docs`` writes them; a test checks the committed ones are what this makes."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from schemas import topics
from schemas.topics import Role, Topic
from streams.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMA_FORMAT = "application/schema+json;version=2020-12"


def configuration() -> str:
    rows = "\n".join(
        f"| `{name}` | {meaning} | {f'`{default}`' if default else ''} |"
        for name, default, meaning in Settings.documented()
    )
    return (
        "# Configuration\n\n"
        "Every setting of a worker and of the `tierstream` command, from the environment only.\n"
        "`tierstream config` prints each effective value and whether it came from the environment or\n"
        "the default, secrets masked. Generated from `streams/settings.py` by `tierstream-dev docs`.\n\n"
        "| variable | meaning | default |\n|---|---|---|\n" + rows + "\n"
    )


def _message(name: str, title: str, summary: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": payload},
    }


def _schema(topic: Topic) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(topic.schema_path.read_text())
    return schema


def _kafka_channel(topic: Topic) -> dict[str, Any]:
    key = "keyed by customer_id" if topic.keyed_by_customer else "written to every partition"
    return {
        "address": "{topicPrefix}" + topic.name,
        "title": topic.name,
        "description": f"Kafka topic `{topic.name}` ({topic.role.value}, {key}). {_schema(topic)['description']}",
        "servers": [{"$ref": "#/servers/kafka"}],
        "parameters": {"topicPrefix": {"$ref": "#/components/parameters/topicPrefix"}},
        "messages": {topic.name: {"$ref": f"#/components/messages/{topic.name}"}},
    }


def _redis_channel(topic: Topic, kind: str, address: str) -> dict[str, Any]:
    message = f"{topic.name}-stream-entry" if kind == "stream" else topic.name
    text = (
        f"Redis stream: an entry per `{topic.name}` record (fields `event_id`, `json`), trimmed to about "
        "TIERSTREAM_STREAM_MAXLEN entries; read it with a consumer group"
        if kind == "stream"
        else f"Redis pub/sub channel: each `{topic.name}` record as a message, for live listeners"
    )
    return {
        "address": "{redisPrefix}" + address,
        "title": f"{address} ({kind})",
        "description": text + ". Added only for a sequence newer than the customer's stored one.",
        "servers": [{"$ref": "#/servers/redis"}],
        "parameters": {"redisPrefix": {"$ref": "#/components/parameters/redisPrefix"}},
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
    }


def _operation_id(action: str, channel: str) -> str:
    return action + "".join(part.capitalize() for part in channel.replace(":", "-").split("-"))


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: every Kafka topic, Redis stream and pub/sub channel."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in topics.ALL:
        schema = _schema(topic)
        channels[topic.name] = _kafka_channel(topic)
        messages[topic.name] = _message(topic.name, schema["title"], schema["description"], schema)
        action = "receive" if topic.role is Role.INPUT else "send"
        operations[_operation_id(action, topic.name)] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "summary": f"tierstream {'reads' if action == 'receive' else 'writes'} `{topic.name}`.",
        }
        for kind, address in (("stream", topic.redis_stream), ("pubsub", topic.redis_channel)):
            if address is None:
                continue
            name = f"redis-{kind}-{address}"
            channels[name] = _redis_channel(topic, kind, address)
            operations[_operation_id("send", name)] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{name}"},
                "summary": f"tierstream adds each `{topic.name}` record here.",
            }
            if kind == "stream":
                entry = {
                    "type": "object",
                    "required": ["event_id", "json"],
                    "properties": {
                        "event_id": {"type": "string", "description": "the record's event_id"},
                        "json": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "description": f"the `{topic.name}` value, as on Kafka",
                        },
                    },
                }
                messages[f"{topic.name}-stream-entry"] = _message(
                    f"{topic.name}-stream-entry", f"{topic.name} stream entry", f"A `{address}` stream entry.", entry
                )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "tierstream",
            "version": version("tierstream"),
            "description": "Streaming customer tiering for banks: the topics tierstream reads and writes, and "
            "the Redis streams and channels it feeds. The contract's prose is docs/contract.md.",
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "Apache Kafka (TIERSTREAM_BROKER); PLAINTEXT, SSL or SASL (TIERSTREAM_KAFKA_*)",
                "variables": {"bootstrap": {"default": "localhost:9092"}},
            },
            "redis": {
                "host": "{redis}",
                "protocol": "redis",
                "description": "Redis (TIERSTREAM_REDIS_URL), redis:// or rediss://",
                "variables": {"redis": {"default": "localhost:6379"}},
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "parameters": {
                "topicPrefix": {"description": "TIERSTREAM_TOPIC_PREFIX", "default": ""},
                "redisPrefix": {"description": "TIERSTREAM_REDIS_PREFIX", "default": "tier:"},
            },
            "messages": messages,
        },
    }


def asyncapi_yaml() -> str:
    header = "# Generated by `tierstream-dev docs` from schemas/topics.py and schemas/json/: do not edit.\n"
    return header + yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True, width=100)


def write(docs: Path = DOCS) -> list[Path]:
    docs.mkdir(exist_ok=True)
    written = [docs / "configuration.md", docs / "asyncapi.yaml"]
    written[0].write_text(configuration())
    written[1].write_text(asyncapi_yaml())
    return written
