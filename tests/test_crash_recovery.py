"""Crash test: `kill -9` the trading daemon at 20 random instants, restart it each time, and check
that the database ends with exactly the exchange's truth.

The exchange is `tradebus sim` in its own process (it outlives every daemon, as Binance would).
The daemon is `tradebus run` in live mode against it, trading `sma_cross` (fast 1, slow 2, long
only) on three symbols at 120 simulated seconds per second (a 1m bar every 0.5 s), so it
enters or exits about once a second per symbol. Each round waits for the daemon's
`daemon_started` (start-up reconciliation done), lets it trade for a random 0.3-3 s (the
random instant is the point of the test, not a wait for something) and kills it with SIGKILL.
A last run is stopped gracefully.

Then, read from the simulator through the Binance API and from the SQLite file:
- the DB fills equal the exchange's trades one to one (symbol, trade id, price, quantity, fee);
- no client order id reached the exchange twice;
- every order open on the exchange is open in the DB, and every order open in the DB is open on
  the exchange;
- the DB's positions (summed over strategies) equal the exchange's base-asset holdings, and
  the DB's balances equal the exchange's;
- `tradebus reconcile --dry-run` then finds nothing to do, and reports a hand-placed order as
  foreign.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import subprocess
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from app.domain import Fill, OrderType, OrderUpdated, Side, SubmitOrder, TimeInForce
from app.domain.clock import SystemClock
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, RateLimiter
from exchange.binance.rest import RestTransport
from exchange.binance.signing import HmacSigner
from exchange.binance.spot import SpotClient
from exchange.binance.timesync import ServerTime
from exchange.sim.options import TEST_API_KEY, TEST_API_SECRET
from tests.conftest import DaemonProcess

# 20 daemon starts: ~70 s alone, up to ~140 s on 2 busy cores; the suite-wide 120 s is too tight.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

KILLS = 20
SEED = 20261122
SYMBOLS = ("BTCUSDT", "ETHUSDT", "XAAUSDT")
START_USDT = Decimal(1_000_000)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _toml_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def _market_toml(port: int) -> str:
    return f"""
[exchange]
symbols = {_toml_list(SYMBOLS)}
kline_intervals = ["1m"]

[sim]
port = {port}
speed = 120.0
updates_per_bar = 2
history_bars = 10
state_file = ""
spot_balances = {{ USDT = "{START_USDT}" }}
"""


def _daemon_toml(folder: Path, port: int) -> str:
    http, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    return (
        _market_toml(port)
        + f"""
[exchange.endpoints]
spot_rest = "{http}"
spot_ws_api = "{ws}/ws-api/v3"
spot_streams = "{ws}"
"""
    ).replace(
        "[exchange]\n",
        f"""mode = "live"

[health]
heartbeat_path = "{folder / "hb.json"}"
systemd_notify = false

[logging]
file = ""

[runtime]
control_socket = "{folder / "c.sock"}"

[database]
url = "sqlite:///{folder / "tradebus.db"}"
reconcile_interval_s = 5.0

[risk]
state_file = "{folder / "risk.json"}"

[risk.orders]
default_entry_notional = "50"

[strategies]
snapshot_file = "{folder / "strategies.json"}"

[[strategies.run]]
strategy = "sma_cross"
name = "flip"
symbols = {_toml_list(SYMBOLS)}
params = {{ fast = 1, slow = 2, allow_short = false }}

[exchange]
venue = "binance"
recv_window_ms = 1000
""",
        1,
    )


def _transport(port: int) -> RestTransport:
    clock = SystemClock()
    return RestTransport(
        base_url=f"http://127.0.0.1:{port}",
        server_time_path="/api/v3/time",
        clock=clock,
        limiter=RateLimiter(clock=clock, rules=DEFAULT_SPOT_RULES, share=1.0, name="check"),
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_API_SECRET),
        recv_window_ms=5_000,
        timeout_s=10.0,
        name="check",
    )


async def _place_foreign_order(port: int) -> None:
    """An order placed by hand on the account, far from the market: it rests."""
    async with _transport(port) as transport:
        await transport.sync_time()
        client = SpotClient(transport)
        [book] = await client.book_tickers("BTCUSDT")
        price = (book.bid_price * Decimal("0.5")).quantize(Decimal("0.01"))
        order = SubmitOrder(
            "manual-1", "", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.001"), 0,
            price=price, time_in_force=TimeInForce.GTC,
        )  # fmt: skip
        await client.place_order(order)


async def _exchange_truth(port: int) -> dict[str, Any]:
    async with _transport(port) as transport:
        await transport.sync_time()
        client = SpotClient(transport)
        trades: list[Fill] = []
        orders: list[OrderUpdated] = []
        for symbol in SYMBOLS:
            cursor = 0
            while page := await client.my_trades(symbol, from_id=cursor, limit=1000):
                trades.extend(page)
                cursor = page[-1].trade_id + 1
            first: int | None = 0
            while first is not None:
                batch = await client.all_orders(symbol, from_order_id=first, limit=1000)
                orders.extend(batch)
                last = batch[-1].exchange_order_id if batch else None
                first = last + 1 if last is not None and len(batch) == 1000 else None
        balances = await client.account()
        open_orders = await client.open_orders()
    return {"trades": trades, "orders": orders, "balances": balances, "open": open_orders}


def _db_rows(folder: Path, table: str) -> list[dict[str, Any]]:
    engine = sqlalchemy.create_engine(f"sqlite:///{folder / 'tradebus.db'}")
    try:
        with engine.connect() as connection:
            result = connection.execute(sqlalchemy.text(f"SELECT * FROM {table}"))
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


def test_the_database_equals_the_exchange_after_20_kills(
    tmp_path: Path,
    tradebus_env: dict[str, str],
    start_daemon: Callable[..., DaemonProcess],
    run_tradebus: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    port = _free_port()
    (tmp_path / "market.toml").write_text(_market_toml(port), encoding="utf-8")
    (tmp_path / "daemon.toml").write_text(_daemon_toml(tmp_path, port), encoding="utf-8")
    sim = DaemonProcess(["--config", "market.toml"], cwd=tmp_path, env=tradebus_env, command="sim")
    env = {
        **tradebus_env,
        "TRADEBUS_EXCHANGE__API_KEY": TEST_API_KEY,
        "TRADEBUS_EXCHANGE__API_SECRET": TEST_API_SECRET,
    }
    rng = random.Random(SEED)
    reconciled: list[dict[str, Any]] = []
    try:
        sim.wait_for_event("sim_listening")
        for _ in range(KILLS):
            daemon = start_daemon("--config", "daemon.toml", env=env)
            reconciled.append(daemon.wait_for_event("startup_reconciled", timeout=60))
            daemon.wait_for_event("daemon_started", timeout=60)
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.proc.wait(timeout=rng.uniform(0.3, 3.0))  # the random instant
            daemon.proc.kill()
            daemon.wait()
        last = start_daemon("--config", "daemon.toml", env=env)
        reconciled.append(last.wait_for_event("startup_reconciled", timeout=60))
        last.wait_for_event("daemon_started", timeout=60)
        last.terminate()
        assert last.wait(timeout=60) == 0, last.stderr
        truth = asyncio.run(_exchange_truth(port))
        # The dry run of the same diff: nothing to do now; then a hand-placed order is reported.
        agreed = run_tradebus("reconcile", "--dry-run", "--config", "daemon.toml", env=env)
        assert agreed.returncode == 0, agreed.stdout + agreed.stderr
        assert "synthetic updates    0" in agreed.stdout
        asyncio.run(_place_foreign_order(port))
        differs = run_tradebus("reconcile", "--dry-run", "--config", "daemon.toml", env=env)
        assert differs.returncode == 1, differs.stdout + differs.stderr
        assert "['manual-1']" in differs.stdout
    finally:
        sim.kill()

    fills = _db_rows(tmp_path, "fills")
    orders = _db_rows(tmp_path, "orders")
    positions = _db_rows(tmp_path, "positions")
    balances = _db_rows(tmp_path, "balances")
    trades: list[Fill] = truth["trades"]
    exchange_orders: list[OrderUpdated] = truth["orders"]

    by_client_id = Counter(o.client_order_id for o in exchange_orders)
    duplicated = {cid: n for cid, n in by_client_id.items() if n > 1}
    db_trades = {
        (f["symbol"], f["trade_id"]): (
            Decimal(f["price"]),
            Decimal(f["quantity"]),
            Decimal(f["fee"]),
        )
        for f in fills
    }
    exchange_trades = {(t.symbol, t.trade_id): (t.price, t.quantity, t.fee) for t in trades}
    db_open = {o["client_order_id"] for o in orders if o["is_open"]}
    exchange_open = {o.client_order_id for o in truth["open"]}
    holdings = {b.asset: b.free + b.locked for b in truth["balances"]}
    net = Counter[str]()
    for row in positions:
        net[row["symbol"]] += Decimal(row["quantity"])
    db_balances = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in balances}
    published = sum(int(event.get("events", 0)) for event in reconciled)
    print(
        json.dumps(
            {
                "kills": KILLS,
                "exchange_orders": len(exchange_orders),
                "exchange_trades": len(trades),
                "db_fills": len(fills),
                "db_orders": len(orders),
                "duplicate_client_ids": len(duplicated),
                "open_on_exchange": len(exchange_open),
                "open_in_db": len(db_open),
                "synthetic_updates_at_restarts": published,
                "positions": {s: str(q) for s, q in net.items()},
            }
        )
    )
    assert len(trades) > KILLS  # it really traded across the restarts
    assert db_trades == exchange_trades
    assert duplicated == {}
    assert db_open == exchange_open
    for symbol in SYMBOLS:
        base = symbol.removesuffix("USDT")
        assert net[symbol] == holdings.get(base, Decimal(0)), symbol
    assert db_balances == {
        asset: total for asset, total in holdings.items() if asset in db_balances
    }
    assert set(db_balances) >= {"USDT"}
    # The risk gate's state lives in the database too, and its book agrees with the positions
    # table: after each kill it took the reconciled positions whole.
    documents = {
        r["name"]: json.loads(r["document"]) for r in _db_rows(tmp_path, "state_documents")
    }
    book = {
        (p["strategy"], p["symbol"]): Decimal(p["quantity"])
        for p in documents["risk_gate"]["book"]["positions"]
        if Decimal(p["quantity"])
    }
    assert book == {
        (r["strategy"], r["symbol"]): Decimal(r["quantity"])
        for r in positions
        if Decimal(r["quantity"])
    }
    assert not (tmp_path / "risk.json").exists()
    assert {r["strategy"] for r in _db_rows(tmp_path, "strategy_snapshots")} >= {"flip"}
