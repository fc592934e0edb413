"""Configuration: one frozen Settings, built once from an environment mapping.

The entry points pass ``os.environ`` in (``Settings.from_env``); nothing else reads the
environment, and nothing here reads a file: everything else receives a Settings. Every
setting is a field of ``Settings`` that names its variable, default, parser, and whether it
is a secret, so ``tierstream config`` can show each effective value and where it came
from, secrets masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class SettingsError(ValueError):
    """A configuration that cannot work; the message says which variable."""


MASK = "***"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _text(name: str, raw: str) -> str:
    return raw


def _broker(name: str, raw: str) -> str:
    return raw if raw.startswith("kafka://") else "kafka://" + raw


def _path(name: str, raw: str) -> Path:
    return Path(raw)


def _int_at_least(low: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < low:
            raise SettingsError(f"{name} must be >= {low}")
        return value

    return parse


def _one_of(*choices: str, upper: bool = False) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.upper() if upper else raw
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _var(
    default: Any, parse: Callable[[str, str], Any] = _text, secret: bool = False, env: str | None = None, doc: str = ""
) -> Any:
    """A setting's field: its default, how its variable's text is read, whether it is a
    secret (never shown), the variable's name if not TIERSTREAM_ + the field's, and what it
    means (``docs/configuration.md`` is made of these)."""
    return field(default=default, metadata={"parse": parse, "secret": secret, "env": env, "doc": doc})


@dataclass(frozen=True, repr=False)
class Settings:
    """Every setting, with its default; the variable is TIERSTREAM_ and the name in capitals
    (but ``rules_path``: TIERSTREAM_RULES, ``crash_after_outputs``: TIERSTREAM_TEST_CRASH_AFTER_OUTPUTS)."""

    broker: str = _var("", _broker, doc="Kafka bootstrap servers, kafka://host:port[,host:port] (required)")
    redis_url: str = _var("", doc="redis:// or rediss:// (TLS) URL; a password in it is masked when shown (required)")
    rules_path: str | None = _var(None, env="RULES", doc="the rules file (YAML); unset: the shipped default rules")
    topic_prefix: str = _var("", doc="put in front of every topic name")
    redis_prefix: str = _var("tier:", doc="put in front of every Redis key")
    app_id: str = _var("tierstream", doc="the consumer group, and the internal topics' names")
    partitions: int = _var(8, _int_at_least(1), doc="partitions of the topics tierstream creates")
    broker_flavor: str = _var(
        "kafka", _one_of("kafka", "tansu"), doc="kafka, or tansu: the development broker's workarounds"
    )
    web_host: str = _var("127.0.0.1", doc="the pages' bind address; 0.0.0.0 to be scraped from other hosts")
    web_port: int = _var(6066, _int_at_least(0), doc="the pages' port (/health, /ready, /metrics); 0: any free one")
    data_dir: Path = _var(Path("./.tierstream"), _path, doc="the worker's local directory")
    close_wait_warning: int = _var(60, _int_at_least(1), doc="seconds a day close may wait before it is logged")
    state_store: str = _var("memory", _one_of("memory", "rocksdb"), doc="where customer states live: memory or rocksdb")
    state_dir: Path | None = _var(None, _path, doc="the RocksDB store's directory; unset: DATA_DIR/state")
    state_cache: int = _var(20_000, _int_at_least(1), doc="decoded customers a RocksDB store keeps in memory")
    instance_id: str | None = _var(None, doc="static group membership: a restart under this id keeps the partitions")
    crash_after_outputs: int | None = _var(
        None, _int_at_least(1), env="TEST_CRASH_AFTER_OUTPUTS", doc="tests only: the outbox fault injection"
    )
    hold_records: int = _var(
        50_000, _int_at_least(0), doc="records routed ahead of a waiting close before the inputs pause"
    )
    stream_maxlen: int = _var(100_000, _int_at_least(1), doc="entries each Redis stream keeps, approximately")
    log_format: str = _var("logfmt", _one_of("logfmt", "json"), doc="log lines: logfmt or json")
    kafka_security_protocol: str = _var(
        "PLAINTEXT", _one_of(*SECURITY_PROTOCOLS, upper=True), doc="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str | None = _var(
        None, _one_of(*SASL_MECHANISMS, upper=True), doc="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_*)"
    )
    kafka_sasl_username: str | None = _var(None, doc="the SASL user (SASL_*)")
    kafka_sasl_password: str | None = _var(None, secret=True, doc="the SASL password (SASL_*); never shown")
    kafka_ssl_cafile: str | None = _var(None, doc="CA bundle the brokers are checked against; unset: the system's")
    kafka_ssl_certfile: str | None = _var(None, doc="client certificate for mutual TLS (with the key file)")
    kafka_ssl_keyfile: str | None = _var(None, doc="the client certificate's private key")
    kafka_ssl_key_password: str | None = _var(None, secret=True, doc="the private key's password; never shown")
    redis_username: str | None = _var(None, doc="the Redis ACL user, if not in the URL")
    redis_password: str | None = _var(None, secret=True, doc="the Redis password, if not in the URL; never shown")
    redis_ca_file: str | None = _var(None, doc="CA bundle a rediss:// server is checked against; unset: the system's")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        settings = cls(**{f.name: _read(f, env) for f in fields(cls)})
        settings.check()
        return settings

    def check(self) -> None:
        """Settings that cannot work together; the message names the variable."""
        hint = ' (for the development stack: eval "$(tierstream-dev up)")'
        if not self.broker.removeprefix("kafka://"):
            raise SettingsError("TIERSTREAM_BROKER is not set" + hint)
        if not self.redis_url:
            raise SettingsError("TIERSTREAM_REDIS_URL is not set" + hint)
        if self.kafka_security_protocol.startswith("SASL_"):
            for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"):
                if getattr(self, name) is None:
                    raise SettingsError(f"{variable(name)} is required with {self.kafka_security_protocol}")
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "redis_ca_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise SettingsError(f"{variable(name)}: no such file {path}")
        if self.redis_ca_file is not None and not self.redis_url.startswith("rediss://"):
            raise SettingsError("TIERSTREAM_REDIS_CA_FILE needs a rediss:// TIERSTREAM_REDIS_URL (TLS)")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise SettingsError("TIERSTREAM_KAFKA_SSL_CERTFILE and TIERSTREAM_KAFKA_SSL_KEYFILE go together")

    def __repr__(self) -> str:
        """Secrets masked: a settings object that reaches a log or a traceback shows none."""
        return f"Settings({', '.join(f'{f.name}={self._shown(f.name)!r}' for f in fields(self))})"

    def _shown(self, name: str) -> str:
        value = getattr(self, name)
        return "" if value is None else MASK if _FIELDS[name].metadata["secret"] else masked_url(str(value))

    @property
    def local_store_path(self) -> Path:
        """Where a rocksdb state store lives: one directory per worker (RocksDB locks it)."""
        return self.state_dir if self.state_dir is not None else self.data_dir / "state"

    @property
    def bootstrap(self) -> str:
        """host:port for clients that do not take the kafka:// URL."""
        return self.broker.removeprefix("kafka://")

    @staticmethod
    def documented() -> list[tuple[str, str, str]]:
        """(variable, default as shown, meaning) of every setting."""
        return [
            (variable(f.name), "" if f.default is None else str(f.default), f.metadata["doc"]) for f in fields(Settings)
        ]

    def describe(self, env: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """(variable, value as shown, where it came from) for every setting, secrets masked."""
        names = [(variable(f.name), f.name) for f in fields(self)]
        return [(var, self._shown(name), "environment" if env.get(var) else "default") for var, name in names]


def masked_url(url: str) -> str:
    """``url`` with any password in it replaced by ``***`` (redis://user:***@host)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    netloc = parts.netloc.replace(f":{password}@", f":{MASK}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --- reading the variables -------------------------------------------------------------


def variable(name: str) -> str:
    """The environment variable of setting ``name``."""
    f = _FIELDS[name]
    return "TIERSTREAM_" + (f.metadata["env"] or name.upper())


def _read(f: Field[Any], env: Mapping[str, str]) -> Any:
    name = variable(f.name)
    raw = env.get(name)
    return f.default if raw is None or raw == "" else f.metadata["parse"](name, raw)


_FIELDS = {f.name: f for f in fields(Settings)}
