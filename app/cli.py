"""The `tradebus` command: run | status | halt | resume | flatten | shutdown | config check |
strategies list | db upgrade|current | reconcile --dry-run | sim | version.

Everything written to stdout and stderr — logs, tracebacks, config errors, status — passes
through the secret redactor; the configured secrets are registered the moment the config is
loaded, before anything else can print them. Exit codes are `app.runtime.ExitCode` (README).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import platform
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import structlog

from app import __version__
from app.db_cli import add_db_commands, run_db_command
from app.domain.clock import SystemClock
from app.log_setup import configure_logging
from app.reconcile_cli import add_reconcile_command, run_reconcile
from app.redaction import REDACTOR
from app.runtime import ExitCode
from app.sim_admin_cli import add_fault_commands, run_fault_command
from app.status import format_status, read_status
from config import ConfigError, Settings, load_settings, parse_set_option, render_effective
from config.loader import DEFAULT_CONFIG_PATH
from config.loader import secret_values as configured_secrets
from exchange.sim.options import TEST_API_KEY
from exchange.sim.state_file import StateFileError

if TYPE_CHECKING:
    from exchange.sim.server import SimExchange

log = structlog.get_logger("app.cli")


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help=f"TOML config file (default: $TRADEBUS_CONFIG, else {DEFAULT_CONFIG_PATH} if present)",
    )
    parser.add_argument("--secrets-dir", type=Path, help="directory of secret files (Docker style)")
    parser.add_argument("--mode", choices=("backtest", "paper", "live"), help="override `mode`")
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting, e.g. --set health.interval_s=2 (repeatable; highest priority)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradebus",
        description="A self-hosted asyncio trading daemon for Binance Spot and USD-M Futures.",
        epilog="Exit codes: 0 ok, 1 internal error, 2 config/usage error, 3 component failed, "
        "4 drain incomplete, 5 forced exit. `status`: 0 healthy, 1 stale or unhealthy.",
    )
    parser.add_argument("--version", action="version", version=f"tradebus {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon until SIGTERM/SIGINT")
    _config_options(run)

    status = commands.add_parser(
        "status", help="print the heartbeat; exit 0 when fresh and healthy, 1 otherwise"
    )
    _config_options(status)
    status.add_argument("--heartbeat", type=Path, help="heartbeat file (default: from config)")
    status.add_argument("--stale-after", type=float, help="seconds (default: from the heartbeat)")
    status.add_argument("--json", action="store_true", help="print the raw heartbeat document")

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser(
        "check", help="print the effective config (secrets masked); exit 2 when invalid"
    )
    _config_options(check)

    strategies = commands.add_parser("strategies", help="strategy tools")
    strategies_commands = strategies.add_subparsers(
        dest="strategies_command", required=True, metavar="ACTION"
    )
    listing = strategies_commands.add_parser(
        "list", help="the installed strategies (built-in and plugins) with their parameters"
    )
    listing.add_argument("--json", action="store_true", help="print a JSON document")

    add_db_commands(commands, _config_options)
    add_reconcile_command(commands, _config_options)

    sim = commands.add_parser(
        "sim",
        help="serve the Binance-compatible simulator alone, or arm its faults",
        description="Without an action: serve the simulator (the [sim] section of the config) "
        "until SIGTERM/SIGINT. `tradebus sim fault ...` talks to a running one.",
    )
    _config_options(sim)
    sim.add_argument("--port", type=int, help="override sim.port (0: any free port)")
    sim_commands = sim.add_subparsers(dest="sim_command", metavar="ACTION")
    add_fault_commands(sim_commands)

    _control_commands(commands)
    commands.add_parser("version", help="print the version")
    return parser


_CONTROL_HELP = {
    "halt": "stop new entries now (exits and reduce-only orders still pass)",
    "resume": "allow new entries again after a halt",
    "flatten": "cancel every open order and close every position with reduce-only market orders",
    "shutdown": "stop the daemon in order, like SIGTERM",
}


def _control_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`halt`, `resume`, `flatten`, `shutdown`: commands to the running daemon, through its
    control socket. Exit 0 once every component that must act has acknowledged, 1 when not (or
    the daemon is unreachable), 2 on a usage or config error."""
    for action, text in _CONTROL_HELP.items():
        parser = commands.add_parser(
            action,
            help=f"{text}; exit 0 once the daemon acknowledged",
            description=f"{text[0].upper()}{text[1:]}, in the running daemon (through its "
            "control socket, runtime.control_socket). Exit 0 once every component that must "
            "act has acknowledged, 1 when one did not or the daemon is unreachable, 2 on a "
            "usage or config error.",
        )
        _config_options(parser)
        parser.add_argument("--reason", default="", help="why (logged and alerted)")
        parser.add_argument("--socket", type=Path, help="control socket (default: from config)")
        parser.add_argument(
            "--timeout",
            type=float,
            help="seconds to wait for the answer (default: runtime.control_ack_timeout_s + 2)",
        )
        parser.add_argument("--json", action="store_true", help="print the daemon's answer")
        if action == "flatten":
            parser.add_argument(
                "--yes",
                action="store_true",
                help="do not ask for confirmation (required when not run on a terminal)",
            )


def _load(args: argparse.Namespace, stderr: TextIO) -> Settings | None:
    overrides: dict[str, object] = {}
    try:
        for text in args.overrides:
            key, value = parse_set_option(text)
            overrides[key] = value
    except ValueError as exc:
        print(f"tradebus: invalid --set: {exc}", file=stderr)
        return None
    if args.mode:
        overrides["mode"] = args.mode
    if args.log_level:
        overrides["logging.level"] = args.log_level
    try:
        settings = load_settings(
            args.config,
            config_file_required=args.config is not None,
            overrides=overrides,
            secrets_dir=args.secrets_dir,
        )
    except ConfigError as exc:
        print("tradebus: invalid configuration:", file=stderr)
        for problem in exc.problems:
            print(f"  {problem.field}: {problem.reason}", file=stderr)
        return None
    REDACTOR.add(*configured_secrets(settings))
    return settings


def _cmd_run(args: argparse.Namespace, stderr: TextIO) -> int:
    from app.wiring import StartupConfigError, build_daemon  # the heavy imports only for `run`

    settings = _load(args, stderr)
    if settings is None:
        return ExitCode.CONFIG_ERROR
    logging_settings = settings.logging
    configure_logging(
        level=logging_settings.level,
        fmt=logging_settings.format,
        file=logging_settings.file,
        file_max_bytes=logging_settings.file_max_bytes,
        file_backups=logging_settings.file_backups,
        static_context={"instance": settings.instance_name, "mode": settings.mode.value},
    )
    try:
        daemon = build_daemon(settings)
    except StartupConfigError as exc:
        print(f"tradebus: {exc}", file=stderr)
        return ExitCode.CONFIG_ERROR
    log.info("daemon_starting", version=__version__)
    try:
        return int(asyncio.run(daemon.run()))
    except Exception:
        log.exception("daemon_crashed")
        return ExitCode.INTERNAL_ERROR


def _cmd_sim(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.sim_command == "fault":
        return run_fault_command(args, stdout=stdout, stderr=stderr)
    from app.sim_venue import build_sim  # the heavy imports only when serving

    settings = _load(args, stderr)
    if settings is None:
        return ExitCode.CONFIG_ERROR
    if args.port is not None:
        settings = settings.model_copy(
            update={"sim": settings.sim.model_copy(update={"port": args.port})}
        )
    configure_logging(
        level=settings.logging.level,
        fmt=settings.logging.format,
        file=settings.logging.file,
        file_max_bytes=settings.logging.file_max_bytes,
        file_backups=settings.logging.file_backups,
        static_context={"instance": settings.instance_name, "mode": "sim"},
    )
    try:
        sim = build_sim(settings, clock=SystemClock())
    except (OSError, ValueError, StateFileError) as exc:
        print(f"tradebus: sim: {exc}", file=stderr)
        return ExitCode.CONFIG_ERROR
    endpoints = sim.endpoints
    print(
        f"simulator on {endpoints.spot_rest} (spot REST), {endpoints.futures_rest}/fapi "
        f"(futures), admin {endpoints.spot_rest}/sim/admin; test API key {TEST_API_KEY}",
        file=stdout,
        flush=True,
    )
    return int(asyncio.run(_serve_sim(sim)))


async def _serve_sim(sim: SimExchange) -> ExitCode:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with sim.serving(), asyncio.TaskGroup() as group:
        pumps = group.create_task(sim.run())
        await stop.wait()
        pumps.cancel()
    log.info("sim_stopped")
    return ExitCode.OK


def _cmd_status(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    path: Path | None = args.heartbeat
    if path is None:
        settings = _load(args, stderr)
        if settings is None:
            return ExitCode.CONFIG_ERROR
        path = settings.health.heartbeat_path
    report = read_status(path, now=datetime.now(UTC), stale_after_s=args.stale_after)
    if args.json and report.heartbeat is not None:
        print(json.dumps(REDACTOR.redact_obj(report.heartbeat), indent=2), file=stdout)
    else:
        stdout.write(format_status(report))
    return 0 if report.healthy else 1


def _cmd_control(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from app.control_client import ControlUnavailable, format_answer, send_control

    action: str = args.command
    if action == "flatten" and not args.yes:
        if not sys.stdin.isatty():
            print("tradebus: flatten needs --yes when not run on a terminal", file=stderr)
            return ExitCode.CONFIG_ERROR
        print(
            "flatten: cancel every open order and close every position at market? [y/N] ",
            end="",
            file=stderr,
            flush=True,
        )
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("flatten: not confirmed; nothing sent", file=stderr)
            return 1
    if args.timeout is not None and not args.timeout > 0:
        print("tradebus: --timeout must be positive", file=stderr)
        return ExitCode.CONFIG_ERROR
    path: Path | None = args.socket
    timeout_s: float | None = args.timeout
    if path is None or timeout_s is None:
        settings = _load(args, stderr)
        if settings is None:
            return ExitCode.CONFIG_ERROR
        path = path or settings.runtime.control_socket
        if path is None:
            print(
                "tradebus: runtime.control_socket is not set, so the daemon has no control "
                "socket; set it (and restart the daemon) or pass --socket PATH",
                file=stderr,
            )
            return ExitCode.CONFIG_ERROR
        # Longer than the daemon's own deadline, so its "not acknowledged by ..." arrives.
        timeout_s = timeout_s or settings.runtime.control_ack_timeout_s + 2.0
    try:
        requested_by = getpass.getuser()
    except (KeyError, OSError):
        requested_by = f"uid {os.getuid()}"
    try:
        answer = asyncio.run(
            send_control(
                path, action, reason=args.reason, requested_by=requested_by, timeout_s=timeout_s
            )
        )
    except ControlUnavailable as exc:
        print(f"tradebus: {exc}", file=stderr)
        return 1
    if args.json:
        print(json.dumps(answer), file=stdout)
    else:
        print(format_answer(action, answer), file=stdout if answer["ok"] else stderr)
    return ExitCode.OK if answer["ok"] else 1


def _cmd_config_check(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from app.strategy_wiring import StrategyConfigError, resolve_strategy_runs

    settings = _load(args, stderr)
    if settings is None:
        return ExitCode.CONFIG_ERROR
    try:
        resolve_strategy_runs(settings)
    except StrategyConfigError as exc:
        print("tradebus: invalid configuration:", file=stderr)
        for field, reason in exc.problems:
            print(f"  {field}: {reason}", file=stderr)
        return ExitCode.CONFIG_ERROR
    stdout.write(render_effective(settings))
    print("# configuration is valid", file=stdout)
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    # Redact everything that could reach a terminal or a log collector, tracebacks included.
    if not getattr(sys.stdout, "_tradebus_redacting", False):
        sys.stdout = REDACTOR.wrap_stream(sys.stdout)
        sys.stderr = REDACTOR.wrap_stream(sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            setattr(stream, "_tradebus_redacting", True)  # noqa: B010 - proxy attribute
    stdout, stderr = sys.stdout, sys.stderr
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _cmd_run(args, stderr)
    if args.command == "status":
        return _cmd_status(args, stdout, stderr)
    if args.command == "config":
        return _cmd_config_check(args, stdout, stderr)
    if args.command == "sim":
        return _cmd_sim(args, stdout, stderr)
    if args.command in _CONTROL_HELP:
        return _cmd_control(args, stdout, stderr)
    if args.command == "strategies":
        from app.strategies_cli import list_strategies

        return list_strategies(as_json=args.json, stdout=stdout)
    if args.command == "db":
        settings = _load(args, stderr)
        if settings is None:
            return ExitCode.CONFIG_ERROR
        return run_db_command(args, settings, stdout=stdout, stderr=stderr)
    if args.command == "reconcile":
        settings = _load(args, stderr)
        if settings is None:
            return ExitCode.CONFIG_ERROR
        return run_reconcile(settings, as_json=args.json, stdout=stdout, stderr=stderr)
    print(f"tradebus {__version__} (Python {platform.python_version()})", file=stdout)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
