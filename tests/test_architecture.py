"""Conventions that no linter checks for us (DESIGN.md §3)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ["app", "exchange", "executor", "risk", "database", "strategies", "config"]


def _sources() -> list[Path]:
    return [p for d in CODE for p in (ROOT / d).rglob("*.py")]


def test_only_config_reads_the_environment() -> None:
    pattern = re.compile(r"os\.environ|os\.getenv|getenv\(")
    offenders = [
        str(p.relative_to(ROOT))
        for p in _sources()
        if p.parts[len(ROOT.parts)] != "config" and pattern.search(p.read_text())
    ]
    assert offenders == []


def test_decisions_never_read_the_wall_clock() -> None:
    pattern = re.compile(r"datetime\.now\(|time\.time\(|datetime\.utcnow\(")
    decision_packages = ("strategies", "risk", "executor")
    offenders = [
        str(p.relative_to(ROOT))
        for p in _sources()
        if p.parts[len(ROOT.parts)] in decision_packages and pattern.search(p.read_text())
    ]
    assert offenders == []


def test_no_bare_create_task_outside_the_supervisor() -> None:
    # One TaskGroup owns every long-lived task; fire-and-forget tasks swallow errors.
    offenders = [
        str(p.relative_to(ROOT))
        for p in _sources()
        if "asyncio.create_task(" in p.read_text() or "ensure_future(" in p.read_text()
    ]
    assert offenders == []
