"""`prepare_futures_account` against the running simulator (real client, real transport).

The simulator's account settings are read back from its engine: positionRisk v3 carries neither
leverage nor margin type, and the client has no symbolConfig call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from app.domain import OrderType, Side
from app.domain.clock import ManualClock
from app.errors import FatalVenueError
from config.executor import FuturesSetupSettings
from exchange.binance.futures import FuturesClient
from exchange.sim.futures_engine import FuturesEngine
from exchange.sim.server import SimExchange
from executor.futures_setup import (
    FuturesAccountSetup,
    FuturesSetupError,
    SymbolSetup,
    prepare_futures_account,
)
from tests.sim.harness import START_MS, btc_order, futures_client, running_sim

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@dataclass
class Venue:
    sim: SimExchange
    client: FuturesClient

    def settings(self, symbol: str) -> tuple[int, bool]:
        """(leverage, isolated) as the simulated exchange holds them."""
        engine = self.sim.futures.engine
        assert isinstance(engine, FuturesEngine)
        position = engine.ledger.position(symbol)
        return position.leverage, position.isolated


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, futures_client(sim, clock) as client:
        yield Venue(sim, client)


async def test_applies_leverage_margin_type_and_one_way_mode(venue: Venue) -> None:
    assert venue.settings("BTCUSDT") == (20, False)  # the simulator's defaults: 20x cross
    settings = FuturesSetupSettings(
        leverage=3, symbol_leverage={"ETHUSDT": 5}, margin_type="isolated", hedge_mode=False
    )

    setup = await prepare_futures_account(venue.client, settings, SYMBOLS)

    assert setup == FuturesAccountSetup(
        hedge_mode=False,
        position_mode_changed=False,
        symbols=(SymbolSetup("BTCUSDT", 3, "isolated"), SymbolSetup("ETHUSDT", 5, "isolated")),
    )
    assert venue.settings("BTCUSDT") == (3, True)
    assert venue.settings("ETHUSDT") == (5, True)
    assert await venue.client.hedge_mode() is False
    assert setup.as_dict()["symbols"] == {
        "BTCUSDT": {"leverage": 3, "margin_type": "isolated"},
        "ETHUSDT": {"leverage": 5, "margin_type": "isolated"},
    }

    # Back to cross: the margin type really is sent, not only remembered.
    await prepare_futures_account(
        venue.client, FuturesSetupSettings(leverage=2, margin_type="cross"), ["BTCUSDT"]
    )
    assert venue.settings("BTCUSDT") == (2, False)


async def test_second_run_changes_nothing(venue: Venue) -> None:
    settings = FuturesSetupSettings(leverage=4, margin_type="isolated")
    first = await prepare_futures_account(venue.client, settings, SYMBOLS)
    engine_before = venue.sim.futures.engine.snapshot()

    # "No need to change margin type" (-4046) is success; the same leverage is harmless.
    second = await prepare_futures_account(venue.client, settings, SYMBOLS)

    assert second == first
    assert venue.sim.futures.engine.snapshot() == engine_before
    assert [venue.settings(s) for s in SYMBOLS] == [(4, True), (4, True)]


async def test_setup_with_an_open_position_that_it_need_not_change(venue: Venue) -> None:
    settings = FuturesSetupSettings(leverage=10, margin_type="isolated")
    await prepare_futures_account(venue.client, settings, ["BTCUSDT"])
    await venue.client.place_order(btc_order("e1", Side.BUY, OrderType.MARKET, "0.010"))

    # A restart with a position open: nothing needs changing, so nothing is refused.
    again = await prepare_futures_account(venue.client, settings, ["BTCUSDT"])

    assert again.symbols == (SymbolSetup("BTCUSDT", 10, "isolated"),)


async def test_hedge_mode_refused_while_a_position_is_open(venue: Venue) -> None:
    await venue.client.place_order(btc_order("e1", Side.BUY, OrderType.MARKET, "0.010"))

    with pytest.raises(FuturesSetupError) as raised:
        await prepare_futures_account(
            venue.client, FuturesSetupSettings(hedge_mode=True), ["BTCUSDT"]
        )

    error = raised.value
    assert isinstance(error, FatalVenueError)  # the daemon stops instead of trading on
    assert error.code == -4068
    assert error.setting == "position mode"
    assert error.wanted == "hedge"
    message = str(error)
    assert "position mode to hedge" in message
    assert "positions exist; close them first" in message


async def test_margin_type_change_refused_with_a_position_names_the_symbol(venue: Venue) -> None:
    await venue.client.place_order(btc_order("e1", Side.BUY, OrderType.MARKET, "0.010"))

    with pytest.raises(FuturesSetupError) as raised:
        await prepare_futures_account(
            venue.client, FuturesSetupSettings(margin_type="isolated"), SYMBOLS
        )

    assert raised.value.code == -4048
    assert (raised.value.symbol, raised.value.setting) == ("BTCUSDT", "margin type")
    assert "cannot set BTCUSDT margin type to isolated: a position exists" in str(raised.value)


async def test_invalid_leverage_names_symbol_and_setting(venue: Venue) -> None:
    # The simulated ETHUSDT allows at most 100x (BTCUSDT 125x), as on Binance.
    settings = FuturesSetupSettings(leverage=2, symbol_leverage={"ETHUSDT": 125})

    with pytest.raises(FuturesSetupError) as raised:
        await prepare_futures_account(venue.client, settings, SYMBOLS)

    assert (raised.value.symbol, raised.value.setting, raised.value.wanted) == (
        "ETHUSDT",
        "leverage",
        125,
    )
    assert raised.value.code == -4028
    assert venue.settings("BTCUSDT")[0] == 2  # the symbols before it were set
