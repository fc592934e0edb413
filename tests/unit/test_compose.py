"""docker-compose.yml is a valid compose file, and its monitoring profile (Prometheus, Grafana's
dashboard) hangs together, checked offline (no Docker engine here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_workers_are_healthy_when_ready_and_scrapable_from_other_containers() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for worker in ("worker-1", "worker-2"):
        assert "/ready" in " ".join(services[worker]["healthcheck"]["test"])
        assert services[worker]["environment"]["TIERSTREAM_WEB_HOST"] == "0.0.0.0"


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "monitoring/grafana/dashboards/tierstream.json").read_text())
    return doc


def dashboard_metrics() -> set[str]:
    """The tierstream metric families the dashboard's queries read (a counter's ``_total``, a
    histogram's ``_bucket``, ``_count`` and ``_sum`` taken off)."""
    exprs = " ".join(t["expr"] for p in dashboard()["panels"] for t in p["targets"])
    return {re.sub(r"_(total|bucket|count|sum)$", "", m) for m in re.findall(r"tierstream_\w+", exprs)}


def test_the_monitoring_profile_scrapes_every_worker_into_grafanas_dashboard() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            assert (ROOT / volume.split(":")[0]).exists(), volume
    prometheus = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    workers = {n: s for n, s in services.items() if s.get("command") == ["worker"]}
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [
        f"{n}:{s['environment']['TIERSTREAM_WEB_PORT']}" for n, s in workers.items()
    ]
    source = yaml.safe_load((ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text())
    (datasource,) = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert p["datasource"]["uid"] == datasource["uid"] and p["targets"], p["title"]
        assert {"h", "w", "x", "y"} <= p["gridPos"].keys()
        for t in p["targets"]:
            assert t["datasource"]["uid"] == datasource["uid"] and t["expr"] and t["refId"]
    # every family it reads is one the worker exports (tests/integration/test_operations.py
    # checks them against a running worker's /metrics)
    exported = set(re.findall(r'"(tierstream_\w+)"', (ROOT / "streams/monitoring.py").read_text()))
    assert dashboard_metrics() <= exported
    assert len(dashboard_metrics()) >= 10
