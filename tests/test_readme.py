"""The README is the operator's manual: its configuration table must name exactly the settings
the app reads from the environment, and `make bench` must run every benchmark it reports."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from marketplace import config

ROOT = Path(__file__).resolve().parent.parent


class RecordingEnviron(Mapping[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _section(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {name}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README has no '## {name}' section"
    return match.group(1)


def _documented_settings() -> set[str]:
    names: set[str] = set()
    for line in _section("Configuration").splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def test_configuration_table_lists_exactly_the_settings_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environ = RecordingEnviron()
    monkeypatch.setattr(os, "environ", environ)
    config.instance_path_from_env()
    config.load_config(str(tmp_path))
    monkeypatch.undo()

    documented = _documented_settings()
    assert environ.asked - documented == set(), "read but not in the README's table"
    assert documented - environ.asked == set(), "in the README's table but never read"


def test_make_bench_runs_every_benchmark_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    scripts = {path.name for path in (ROOT / "bench").glob("*_bench.py")}
    assert scripts, "no benchmarks found"
    assert {name for name in scripts if f"bench/{name}" not in recipe} == set()
