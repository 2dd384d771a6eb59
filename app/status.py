"""`tradebus status`: read the heartbeat, judge it, and print it for a person.

Healthy means: the file exists and parses, it is fresher than `stale_after_s` (taken from the
heartbeat itself unless the caller overrides it), the daemon is in phase `running`, and the
daemon reported no problems. `now` is a parameter so the verdict can be tested with an injected
clock instead of by waiting.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_STALE_AFTER_S = 20.0


@dataclass(frozen=True)
class StatusReport:
    healthy: bool
    reasons: tuple[str, ...]
    heartbeat: dict[str, Any] | None
    age_s: float | None
    stale_after_s: float


def read_status(path: Path, *, now: datetime, stale_after_s: float | None = None) -> StatusReport:
    # Whatever the file holds, the answer is a verdict, never a traceback.
    try:
        heartbeat = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(heartbeat, dict):
            raise ValueError("not a JSON object")
        written = datetime.fromisoformat(str(heartbeat["timestamp"]).replace("Z", "+00:00"))
        if written.tzinfo is None:
            raise ValueError("timestamp has no time zone")
        limit = stale_after_s or float(heartbeat.get("stale_after_s") or DEFAULT_STALE_AFTER_S)
        if not (math.isfinite(limit) and limit > 0):
            raise ValueError("stale_after_s is not a positive number")
        age = (now - written).total_seconds()
    except FileNotFoundError:
        limit = stale_after_s or DEFAULT_STALE_AFTER_S
        return StatusReport(False, (f"no heartbeat at {path}",), None, None, limit)
    except (OSError, ValueError, KeyError, TypeError, OverflowError) as exc:
        limit = stale_after_s or DEFAULT_STALE_AFTER_S
        return StatusReport(False, (f"unreadable heartbeat {path}: {exc}",), None, None, limit)
    reasons: list[str] = []
    if age > limit:
        reasons.append(f"stale: last heartbeat {age:.1f}s ago (limit {limit:g}s)")
    if heartbeat.get("phase") != "running":
        exit_code = heartbeat.get("exit_code")
        suffix = f" (exit code {exit_code})" if exit_code is not None else ""
        reasons.append(f"daemon is {heartbeat.get('phase')}{suffix}")
    if heartbeat.get("healthy") is not True:
        own_phase = f"daemon is {heartbeat.get('phase')}"  # already said above, with exit code
        problems = heartbeat.get("problems") or ["daemon reported unhealthy"]
        if not isinstance(problems, list):
            problems = [problems]
        reasons.extend(str(p) for p in problems if p != own_phase)
    return StatusReport(not reasons, tuple(reasons), heartbeat, age, limit)


def format_status(report: StatusReport) -> str:
    beat = report.heartbeat
    verdict = "HEALTHY" if report.healthy else "UNHEALTHY"
    if beat is None:
        return f"tradebus: {verdict}\n" + "".join(f"  - {r}\n" for r in report.reasons)
    lines = [
        f"tradebus {beat.get('version')} · instance {beat.get('instance')} · "
        f"mode {beat.get('mode')} · pid {beat.get('pid')} — {verdict}",
        f"  heartbeat   {report.age_s or 0.0:.1f}s ago (stale after {report.stale_after_s:g}s)",
        f"  phase       {beat.get('phase')}, up {_duration(_number(beat.get('uptime_s')))}",
        f"  trading     {beat.get('trading_state') or 'no risk gate has reported'}",
    ]
    lag = _mapping(beat.get("loop_lag_ms"))
    lines.append(f"  loop lag    p50 {lag.get('p50', 0)} ms, p99 {lag.get('p99', 0)} ms")
    for reason in report.reasons:
        lines.append(f"  ! {reason}")
    components = _mapping(beat.get("components"))
    if components:
        lines.append("  components")
        for name, value in components.items():
            info = _mapping(value)
            state, restarts = info.get("state", "?"), info.get("restarts", 0)
            pending, age = info.get("pending", 0), _number(info.get("last_progress_age_s"))
            lines.append(
                f"    {name:<24} {state!s:<11} restarts {restarts!s:<3} "
                f"pending {pending!s:<6} progress {age:.1f}s ago"
            )
    queues = _mapping(beat.get("queues"))
    if queues:
        lines.append("  queues")
        for name, value in queues.items():
            info = _mapping(value)
            lines.append(
                f"    {name:<40} {info.get('depth', 0)}/{info.get('capacity', 0)} "
                f"dropped {info.get('dropped', 0)} conflated {info.get('conflated', 0)} "
                f"{_number(info.get('rate_per_s')):g}/s"
            )
    lines.extend(_strategy_lines(_mapping(beat.get("strategies"))))
    lines.extend(_trading_lines(_mapping(beat.get("risk")), _mapping(beat.get("executor"))))
    return "\n".join(lines) + "\n"


def _trading_lines(risk: dict[str, Any], executor: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if risk:
        denials = _mapping(risk.get("denials"))
        top = ", ".join(f"{name} {count}" for name, count in list(denials.items())[:4])
        lines.append(
            f"  risk        {risk.get('state')} ({risk.get('reason')}) · equity "
            f"{risk.get('equity')} · drawdown {risk.get('drawdown_pct')}% · day PnL "
            f"{risk.get('day_pnl')} · exposure {risk.get('exposure')} · positions "
            f"{len(_mapping(risk.get('open_positions')))} · approved {risk.get('approved', 0)} "
            f"· denied {risk.get('denied', 0)}" + (f" ({top})" if top else "")
        )
    if executor:
        statuses = _mapping(executor.get("by_status"))
        counts = ", ".join(f"{name} {count}" for name, count in statuses.items())
        lines.append(
            f"  executor    open {executor.get('open_orders', 0)} · unknown "
            f"{executor.get('unknown', 0)} · retries {executor.get('retries', 0)} · fills "
            f"{executor.get('fills_booked', executor.get('filled', 0))}"
            + (f" · {counts}" if counts else "")
        )
    return lines


def _strategy_lines(strategies: dict[str, Any]) -> list[str]:
    if not strategies:
        return []
    lines = ["  strategies"]
    for instance, value in strategies.items():
        for symbol, entry in _mapping(_mapping(value).get("symbols")).items():
            info = _mapping(entry)
            line = (
                f"    {instance + '/' + symbol:<32} {info.get('state', '?')!s:<11} "
                f"bars {info.get('bars', 0)!s:<7} signals {info.get('signals', 0)!s:<5} "
                f"errors {info.get('errors', 0)!s:<3} {_number(info.get('mean_us')):.1f} us/event"
            )
            if info.get("error"):
                line += f"  ! {info['error']}"
            lines.append(line)
        trade = _mapping(_mapping(value).get("trade"))
        if trade:
            lines.append(_trade_line(instance, trade))
    return lines


def _trade_line(instance: str, trade: dict[str, Any]) -> str:
    positions = trade.get("open_positions")
    refusals = _mapping(trade.get("refusals"))
    refused = ", ".join(f"{stage} {count}" for stage, count in refusals.items())
    return (
        f"    {instance + ' trade':<32} equity {_number(trade.get('equity')):.2f} "
        f"drawdown {_number(trade.get('drawdown_pct')):.2f}% "
        f"positions {len(positions) if isinstance(positions, list) else 0} "
        f"trades {trade.get('closed_trades', 0)} "
        f"entries {trade.get('entries_sent', 0)}/{trade.get('entries', 0)}"
        + (f"  refused: {refused}" if refused else "")
    )


def _mapping(value: object) -> dict[str, Any]:
    # The heartbeat passed read_status's checks, but its sections are only displayed: a
    # section of the wrong type shows as empty rather than crashing `tradebus status`.
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
