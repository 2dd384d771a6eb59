"""``tradebus sim fault add|list|clear``: the command-line client of the simulator's admin
endpoint (``exchange/sim/admin.py``).

Synchronous ``urllib`` on purpose: one request per command to a loopback server, nothing to
gain from an event loop. Exit codes: 0 done, 1 the server is unreachable or failed, 2 a usage
error (a malformed ``--param``, or a rule the server refused as invalid).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any, Final, TextIO

__all__ = ["DEFAULT_SIM_PORT", "DEFAULT_URL", "add_fault_commands", "run_fault_command"]

DEFAULT_SIM_PORT: Final = 8765
DEFAULT_URL: Final = f"http://127.0.0.1:{DEFAULT_SIM_PORT}/sim/admin"
TIMEOUT_S: Final = 10.0

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2


def add_fault_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fault {add,list,clear}`` to ``subparsers`` (e.g. those of ``tradebus sim``)."""
    fault = subparsers.add_parser("fault", help="arm, list or clear simulator faults")
    actions = fault.add_subparsers(dest="fault_action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="arm a fault")
    add.add_argument("kind", help="fault kind, e.g. latency, rate_limit_429, partial_fills")
    add.add_argument("--probability", help="chance per eligible request, 0..1 (default 1)")
    add.add_argument("--count", help="fire at most N times (default: until cleared)")
    add.add_argument("--market", choices=("spot", "futures"))
    add.add_argument("--channel", choices=("rest", "ws_api", "streams"))
    add.add_argument("--symbol")
    add.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the kind, e.g. latency_ms=300 (repeatable)",
    )
    _url_option(add)

    listing = actions.add_parser("list", help="list armed faults")
    _url_option(listing)

    clear = actions.add_parser("clear", help="clear all faults, or those of one kind")
    clear.add_argument("kind", nargs="?")
    _url_option(clear)


def _url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"simulator admin URL (default {DEFAULT_URL})"
    )


def run_fault_command(
    args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Carry out the parsed ``fault`` command; prints the server's JSON answer."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    base = str(args.url).rstrip("/")
    action = args.fault_action
    if action == "add":
        try:
            body = _rule_from_args(args)
        except ValueError as exc:
            print(f"error: {exc}", file=err)
            return EXIT_USAGE
        return _call("POST", f"{base}/faults", body, out, err)
    if action == "list":
        return _call("GET", f"{base}/faults", None, out, err)
    if action == "clear":
        suffix = f"/{args.kind}" if args.kind else ""
        return _call("DELETE", f"{base}/faults{suffix}", None, out, err)
    print(f"error: unknown fault action {action!r}", file=err)
    return EXIT_USAGE


def _rule_from_args(args: argparse.Namespace) -> dict[str, Any]:
    # Values stay strings: the server converts and validates them, so there is one set of rules.
    rule: dict[str, Any] = {"kind": args.kind}
    for name in ("probability", "count", "market", "channel", "symbol"):
        value = getattr(args, name)
        if value is not None:
            rule[name] = value
    for item in args.param:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--param {item!r} must be NAME=VALUE")
        if name in rule:
            raise ValueError(f"--param {name} given twice (or clashes with an option)")
        rule[name] = value.strip()
    return rule


def _call(method: str, url: str, body: dict[str, Any] | None, out: TextIO, err: TextIO) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            answer = response.read()
    except urllib.error.HTTPError as exc:
        detail = _error_text(exc.read())
        print(f"error: the simulator answered {exc.code}: {detail}", file=err)
        return EXIT_USAGE if exc.code in (400, 404) else EXIT_ERROR
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"error: cannot reach the simulator admin endpoint at {url}: {reason}", file=err)
        return EXIT_ERROR
    try:
        decoded = json.loads(answer)
    except ValueError:
        print(f"error: the simulator sent something that is not JSON: {answer[:200]!r}", file=err)
        return EXIT_ERROR
    print(json.dumps(decoded, indent=2, sort_keys=True), file=out)
    return EXIT_OK


def _error_text(raw: bytes) -> str:
    try:
        decoded = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:200]
    if isinstance(decoded, dict) and "error" in decoded:
        return str(decoded["error"])
    return json.dumps(decoded)[:200]
