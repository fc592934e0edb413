"""Configuration: one frozen Settings, built once from an environment mapping.

The entry points pass ``os.environ`` in (``Settings.from_env``); nothing else reads the
environment, and nothing here reads a file: everything else receives a Settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class SettingsError(ValueError):
    """A configuration that cannot work; the message says which variable."""


@dataclass(frozen=True)
class Settings:
    broker: str  # kafka://host:port
    redis_url: str
    rules_path: str | None
    topic_prefix: str
    redis_prefix: str
    app_id: str
    partitions: int
    broker_flavor: str  # "kafka" or "tansu" (the development broker: see faust_config)
    web_port: int
    data_dir: Path
    close_wait_warning: int = 60  # seconds a close may wait before it is logged as a warning
    state_store: str = "memory"  # "memory" or "rocksdb" (streams.table)
    state_dir: Path | None = None  # the local store's directory (rocksdb); None: data_dir/state
    state_cache: int = 20_000  # decoded customers a rocksdb store keeps in memory
    instance_id: str | None = None  # the consumer's static group membership (kafka_config)
    crash_after_outputs: int | None = None  # tests only: the outbox fault (Runtime._crash_armed)
    hold_records: int = 50_000  # records routed ahead of a waiting close before inputs pause (gate.Ahead)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        broker = env.get("TIERSTREAM_BROKER", "")
        redis_url = env.get("TIERSTREAM_REDIS_URL", "")
        hint = ' (for the development stack: eval "$(tierstream-dev up)")'
        if not broker:
            raise SettingsError("TIERSTREAM_BROKER is not set" + hint)
        if not redis_url:
            raise SettingsError("TIERSTREAM_REDIS_URL is not set" + hint)
        if not broker.startswith("kafka://"):
            broker = "kafka://" + broker
        flavor = env.get("TIERSTREAM_BROKER_FLAVOR") or "kafka"
        if flavor not in ("kafka", "tansu"):
            raise SettingsError("TIERSTREAM_BROKER_FLAVOR must be kafka or tansu")
        store = env.get("TIERSTREAM_STATE_STORE") or "memory"
        if store not in ("memory", "rocksdb"):
            raise SettingsError("TIERSTREAM_STATE_STORE must be memory or rocksdb")
        return cls(
            broker=broker,
            redis_url=redis_url,
            rules_path=env.get("TIERSTREAM_RULES") or None,
            topic_prefix=env.get("TIERSTREAM_TOPIC_PREFIX", ""),
            redis_prefix=env.get("TIERSTREAM_REDIS_PREFIX", "tier:"),
            app_id=env.get("TIERSTREAM_APP_ID", "tierstream"),
            partitions=_int(env, "TIERSTREAM_PARTITIONS", 8, low=1),
            broker_flavor=flavor,
            web_port=_int(env, "TIERSTREAM_WEB_PORT", 6066, low=0),
            data_dir=Path(env.get("TIERSTREAM_DATA_DIR", "./.tierstream")),
            close_wait_warning=_int(env, "TIERSTREAM_CLOSE_WAIT_WARNING", 60, low=1),
            state_store=store,
            state_dir=Path(env["TIERSTREAM_STATE_DIR"]) if env.get("TIERSTREAM_STATE_DIR") else None,
            state_cache=_int(env, "TIERSTREAM_STATE_CACHE", 20_000, low=1),
            instance_id=env.get("TIERSTREAM_INSTANCE_ID") or None,
            crash_after_outputs=_int(env, "TIERSTREAM_TEST_CRASH_AFTER_OUTPUTS", 0, low=1) or None,
            hold_records=_int(env, "TIERSTREAM_HOLD_RECORDS", 50_000, low=0),
        )

    @property
    def local_store_path(self) -> Path:
        """Where a rocksdb state store lives: one directory per worker (RocksDB locks it)."""
        return self.state_dir if self.state_dir is not None else self.data_dir / "state"

    @property
    def bootstrap(self) -> str:
        """host:port for clients that do not take the kafka:// URL."""
        return self.broker.removeprefix("kafka://")


def _int(env: Mapping[str, str], name: str, default: int, low: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise SettingsError(f"{name} must be >= {low}")
    return value
