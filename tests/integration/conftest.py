"""Real brokers and a real Redis, started on free ports for the session; workers are real
``tierstream worker`` processes. Apache Kafka runs through testcontainers where Docker
answers, and those tests skip cleanly where it does not."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit import devstack
from streams.web import free_port

ROOT = Path(__file__).resolve().parents[2]
_names = itertools.count(1)
_servers: dict[str, Any] = {}  # bootstrap -> the Tansu server or the Kafka container behind it


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session", params=["tansu", "kafka"])
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(bootstrap host:port, flavor) of a broker for the whole session."""
    if request.param == "tansu":
        server = devstack.start_tansu(tmp_path_factory.mktemp("tansu"))
        _servers[f"127.0.0.1:{server.port}"] = server
        yield f"127.0.0.1:{server.port}", "tansu"
        server.stop()
        return
    if not docker_available():
        pytest.skip("no Docker engine here: Apache Kafka through testcontainers is skipped")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as kafka:
        _servers[kafka.get_bootstrap_server()] = kafka
        yield kafka.get_bootstrap_server(), "kafka"


@pytest.fixture
def broker_away(broker: tuple[str, str]) -> Callable[[str], contextlib.AbstractContextManager[None]]:
    """A context in which the broker is away, ``how``: "frozen" (Tansu's process stopped by
    SIGSTOP, or Kafka's container paused: it goes on where it was) or "restarted" (Kafka's
    container stopped, and started again on leaving; Tansu keeps its topics in memory, so
    a restart would lose them all: the test skips it there, before it starts)."""
    server = _servers[broker[0]]

    @contextlib.contextmanager
    def away(how: str) -> Iterator[None]:
        if isinstance(server, devstack.Server):
            assert how == "frozen", "Tansu keeps its topics in memory: a restart would lose them all"
            os.kill(server.pid, signal.SIGSTOP)
            try:
                yield
            finally:
                os.kill(server.pid, signal.SIGCONT)
            return
        container, port = server.get_wrapped_container(), server.get_exposed_port(server.port)
        (container.pause if how == "frozen" else container.stop)()
        try:
            yield
        finally:
            (container.unpause if how == "frozen" else container.start)()
        if server.get_exposed_port(server.port) != port:  # its advertised listener names the old one
            pytest.skip("Docker published the restarted broker on another port")

    return away


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = devstack.start_valkey(tmp_path_factory.mktemp("valkey"))
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture
def names() -> dict[str, str]:
    """Fresh topic, app and Redis prefixes: tests share the broker but nothing else."""
    n = next(_names)
    stamp = int(time.time() * 1000) % 10**8
    return {"topics": f"it{stamp}-{n}-", "app": f"it{stamp}-{n}", "redis": f"it{stamp}-{n}:"}


class WorkerProcess:
    """One ``tierstream worker`` subprocess."""

    def __init__(self, env: dict[str, str], log: Path, loglevel: str) -> None:
        self.port = free_port()
        self.log = log
        self.env = {**env, "TIERSTREAM_WEB_PORT": str(self.port)}
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--loglevel", loglevel],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def counters(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/counters", timeout=2) as r:
                body: dict[str, Any] = json.loads(r.read())
                return body
        except OSError:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def start_worker(broker: tuple[str, str], redis_url: str, names: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    workers: list[WorkerProcess] = []

    def start(
        partitions: int = 4,
        store: Path | None = None,
        hold: int | None = None,
        instance: str | None = None,
        loglevel: str | None = None,
        **env_extra: str,
    ) -> WorkerProcess:
        """A worker; ``store``: with a RocksDB state store there (a cache of 50 customers,
        so most reads go to the store) and its log at INFO (it says what it recovered);
        ``hold``: its TIERSTREAM_HOLD_RECORDS (back-pressure's bound); ``instance``: its
        TIERSTREAM_INSTANCE_ID (static group membership); ``loglevel``: its log level (default
        TS_LOGLEVEL, else WARNING); ``env_extra``: more of its environment."""
        bootstrap, flavor = broker
        env = {
            **os.environ,
            "TIERSTREAM_BROKER": f"kafka://{bootstrap}",
            "TIERSTREAM_BROKER_FLAVOR": flavor,
            "TIERSTREAM_REDIS_URL": redis_url,
            "TIERSTREAM_TOPIC_PREFIX": names["topics"],
            "TIERSTREAM_REDIS_PREFIX": names["redis"],
            "TIERSTREAM_APP_ID": names["app"],
            "TIERSTREAM_PARTITIONS": str(partitions),
            "TIERSTREAM_DATA_DIR": str(tmp_path / f"w{len(workers)}"),
        }
        if hold is not None:
            env["TIERSTREAM_HOLD_RECORDS"] = str(hold)
        if instance is not None:
            env["TIERSTREAM_INSTANCE_ID"] = instance
        env.update(env_extra)
        loglevel = loglevel or os.environ.get("TS_LOGLEVEL", "WARNING")
        if store is not None:
            env.update(TIERSTREAM_STATE_STORE="rocksdb", TIERSTREAM_STATE_DIR=str(store), TIERSTREAM_STATE_CACHE="50")
            loglevel = "INFO"
        w = WorkerProcess(env, tmp_path / f"worker{len(workers)}.log", loglevel)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.kill()
    for w in workers:
        if w.proc.returncode not in (None, 0, -signal.SIGKILL):
            print(w.log.read_text()[-5000:])
