"""What a platform team's security review reads: the image runs unprivileged from pinned
dependencies that satisfy the project's bounds; the command says its version."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            out[canonicalize_name(name)] = version
    return out


def test_the_lock_pins_every_runtime_dependency_within_the_projects_bounds() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = pins()
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in requirements.lock"
        assert req.specifier.contains(locked[name]), f"{req.name}=={locked[name]} is outside {req.specifier}"
        for extra in req.extras:  # redis[hiredis]
            assert canonicalize_name(extra) in locked, extra


def test_the_image_runs_unprivileged_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile  # nothing resolved past the lock
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim$", dockerfile, re.M)  # the base pinned too
    assert (ROOT / "LICENSE").read_text().strip()


def test_tierstream_says_its_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = subprocess.run([sys.executable, "-m", "streams.cli", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == f"tierstream {version}"
