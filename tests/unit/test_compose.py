"""docker-compose.yml is a valid compose file, checked offline (no Docker engine here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_matches_the_compose_spec() -> None:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    result = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_kafka_redis_two_healthy_workers_and_a_producer() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"kafka", "redis", "worker-1", "worker-2", "producer"} <= services.keys()
    for name in ("kafka", "redis", "worker-1", "worker-2"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    for worker in ("worker-1", "worker-2"):
        env = services[worker]["environment"]
        assert env["TIERSTREAM_BROKER"] == "kafka://kafka:9092" and env["TIERSTREAM_BROKER_FLAVOR"] == "kafka"
