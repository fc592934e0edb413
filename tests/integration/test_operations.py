"""A running worker as the platform team sees it: Redis through TLS with an ACL user, the
pages (``/ready``, ``/metrics``, nothing else), its log lines, ``tierstream config``, and
no secret it was given anywhere it shows."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import redis
import trustme
from prometheus_client.parser import text_string_to_metric_families

from devkit import devstack
from tests.integration.conftest import ROOT
from tests.integration.test_pipeline import Feeder, days_of, scenario_bank, verify, wait_for_assignment
from tests.integration.tls_proxy import tls_front
from tests.unit.test_compose import dashboard_metrics
from tests.unit.test_operations import parse_logfmt

REDIS_SECRET = "s3cret-redis-Pa55"
KAFKA_SECRET = "s3cret-kafka-Pa55"  # given, unused on a PLAINTEXT broker: shown nowhere all the same
USER = "tierstream-writer"
WORKER_COMMANDS = ("hset", "hmget", "sadd", "srem", "scard", "xadd", "publish", "eval", "evalsha", "script", "ping")


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the worker's /metrics: (name, labels) -> value; the families the
    dashboard reads are all there."""
    status, text = get(port, "/metrics")
    assert status == 200
    families = list(text_string_to_metric_families(text))
    assert dashboard_metrics() <= {f.name for f in families}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_a_worker_behind_tls_and_an_acl_user_serves_readiness_and_metrics_and_shows_no_secret(
    broker: tuple[str, str], names: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    bootstrap, _ = broker
    valkey = devstack.start_valkey(tmp_path / "valkey")
    admin = redis.Redis(port=valkey.port)
    # the worker's user may run what README's "Redis security" lists, on its prefix only
    admin.acl_setuser(
        USER,
        enabled=True,
        passwords=[f"+{REDIS_SECRET}"],
        keys=[f"{names['redis']}*"],
        channels=[f"{names['redis']}*"],
        commands=[f"+{c}" for c in WORKER_COMMANDS],
    )
    admin.acl_setuser("checker", enabled=True, passwords=["+checker"], keys=["*"], channels=["*"], commands=["+@all"])
    admin.acl_setuser("default", enabled=False)  # the worker gets in as its ACL user, or not at all
    direct = f"redis://checker:checker@127.0.0.1:{valkey.port}/0"
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    secrets = {
        "TIERSTREAM_REDIS_USERNAME": USER,
        "TIERSTREAM_REDIS_PASSWORD": REDIS_SECRET,
        "TIERSTREAM_REDIS_CA_FILE": str(ca_file),
        "TIERSTREAM_KAFKA_SASL_PASSWORD": KAFKA_SECRET,
    }
    try:
        with tls_front(ca, valkey.port) as tls_port:
            worker = start_worker(
                4, loglevel="INFO", TIERSTREAM_REDIS_URL=f"rediss://127.0.0.1:{tls_port}/0", **secrets
            )
            wait_for_assignment([worker], 4)
            feeder = Feeder(bootstrap, names["topics"], 4, [worker])
            for phases, eod in list(days_of(scenario_bank(80, 12).records())):
                feeder.send_day(phases, eod)
            feeder.drain()

            # the pages: what a bank would keep closed is not there
            for path in ("/table/", f"/table/{names['app']}-customer-state/R000001/", "/router/", "/"):
                assert get(worker.port, path)[0] == 404, path
            status, body = get(worker.port, "/ready")
            assert (status, json.loads(body)["checks"]) == (
                200,
                {"assigned": True, "recovered": True, "redis": True, "progressing": True},
            )

            # /metrics: Prometheus' format, the same figures as /counters and Redis
            counters = worker.counters()
            assert counters is not None
            m = metrics(worker.port)
            taken = {k: v for k, v in m.items() if k[0] == "tierstream_input_records_total"}
            assert sum(taken.values()) == counters["records_in"] > 0
            assert {dict(k[1])["topic"] for k in taken} == {"customers", "balances", "transactions", "eod"}
            for reason, n in counters["dead_letters"].items():
                assert m[("tierstream_dead_letters_total", (("reason", reason),))] == n
            for kind, n in counters["outputs"].items():
                assert m[("tierstream_outputs_total", (("type", kind),))] == n
            assert m[("tierstream_routed_partitions", ())] == 4
            assert all(m[("tierstream_consumer_lag_records", k[1])] == 0 for k in m if "lag" in k[0])
            closed = [v for k, v in m.items() if k[0] == "tierstream_closed_day_timestamp_seconds"]
            assert len(closed) == 4 and len(set(closed)) == 1  # every partition closed the last day
            tiers = sum(v for k, v in m.items() if k[0] == "tierstream_customers")
            reader = redis.Redis.from_url(direct)
            assert tiers == len(list(reader.scan_iter(f"{names['redis']}customer:*"))) > 0
            assert m[("tierstream_redis_write_seconds_count", ())] > 0

            # Redis frozen: not ready, and it says why; back: ready again
            os.kill(valkey.pid, signal.SIGSTOP)
            try:
                body = wait_for("not ready", lambda: (s := get(worker.port, "/ready"))[0] == 503 and s[1])
                assert json.loads(body)["checks"]["redis"] is False
            finally:
                os.kill(valkey.pid, signal.SIGCONT)
            wait_for("ready again", lambda: get(worker.port, "/ready")[0] == 200)
            verify(bootstrap, direct, names, feeder)  # everything arrived, through TLS, as the ACL user
            shown = [get(worker.port, p)[1] for p in ("/health", "/ready", "/metrics", "/counters")]
    finally:
        valkey.stop()

    config = subprocess.run(
        [sys.executable, "-m", "streams.cli", "config"], env=worker.env, cwd=ROOT, capture_output=True, text=True
    )
    assert config.returncode == 0, config.stderr
    assert re.search(r"TIERSTREAM_REDIS_PASSWORD\s+environment\s+\*\*\*$", config.stdout, re.M), config.stdout
    worker.proc.send_signal(signal.SIGTERM)  # its stop is logged too
    worker.proc.wait(30)
    log = worker.log.read_text()
    for text in (log, config.stdout, config.stderr, *shown):
        assert REDIS_SECRET not in text and KAFKA_SECRET not in text
    lines = log.splitlines()
    assert len(lines) > 20 and "event=day_closed" in log
    for line in lines:  # ours and the libraries', one format
        assert parse_logfmt(line)["ts"].endswith("Z"), line


def test_log_lines_can_be_json(broker: tuple[str, str], start_worker: Any) -> None:
    worker = start_worker(2, loglevel="INFO", TIERSTREAM_LOG_FORMAT="json")
    wait_for_assignment([worker], 2)
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.wait(30)
    lines = [json.loads(line) for line in worker.log.read_text().splitlines()]
    assert any(line.get("event") == "recovered" for line in lines)
    assert any(line["logger"].startswith("aiokafka") and "msg" in line for line in lines)
    assert all(line["ts"].endswith("Z") for line in lines)
