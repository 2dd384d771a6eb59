"""Position sizers on hand-built accounts and markets: each formula with its expected value
written out here, the edge cases every sizer shares (equity <= 0, no price), and each sizer's
own (no history, zero or unknown volatility, exhausted budget, low confidence)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Protocol

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import Signal, SignalAction
from strategies.exits.base import TrackedPosition
from strategies.sizing import (
    FixedFraction,
    Kelly,
    KellyEstimate,
    RiskParity,
    SignalStrength,
    VolatilityTarget,
)
from strategies.trade.state import (
    ClosedTrade,
    PositionSize,
    Prices,
    SymbolMarket,
    TradeState,
)

NAN = math.nan
BTC = "BTCUSDT"
ETH = "ETHUSDT"
SOL = "SOLUSDT"


def signal(symbol: str = BTC, confidence: float = 1.0) -> Signal:
    return Signal(
        strategy="test",
        symbol=symbol,
        action=SignalAction.ENTER_LONG,
        ts_ms=1_000,
        signal_id="sig-1",
        confidence=confidence,
    )


def market(
    symbol: str = BTC, close: float = 100.0, volatility: float = 0.01, bars_per_year: float = 6400
) -> SymbolMarket:
    return SymbolMarket(symbol, close, 999, NAN, NAN, volatility, bars_per_year)


def prices(*markets: SymbolMarket) -> Prices:
    return {m.symbol: m for m in markets}


def account(
    equity: float = 10_000.0,
    positions: tuple[TrackedPosition, ...] = (),
    trades: tuple[ClosedTrade, ...] = (),
) -> TradeState:
    return TradeState(1_000, equity, max(equity, 0.0), positions, trades)


def trade(pnl: float, entry_price: float = 100.0) -> ClosedTrade:
    """A closed long of 1 unit entered at `entry_price`: its return_pct is pnl / entry_price x 100
    (so with the default entry of 100, pnl is the return in percent)."""
    return ClosedTrade(BTC, "long", entry_price, entry_price + pnl, Decimal(1), pnl, 0, 1)


def trades(*groups: tuple[int, float]) -> tuple[ClosedTrade, ...]:
    """`count` trades of each `pnl`, oldest first in the order given."""
    return tuple(trade(pnl) for count, pnl in groups for _ in range(count))


def held(symbol: str, quantity: str, side: str = "long") -> TrackedPosition:
    return TrackedPosition(f"pos-{symbol}", symbol, side, 1.0, 0, Decimal(quantity))  # type: ignore[arg-type]


def assert_sized(size: PositionSize, notional: float, close: float) -> None:
    assert not size.zero, size.reason
    assert float(size.quantity) == pytest.approx(notional / close, rel=1e-11)


def assert_zero(size: PositionSize, reason_start: str) -> None:
    assert size.quantity == 0
    assert size.zero
    assert size.reason.startswith(reason_start), size.reason


# --- what every sizer shares ---------------------------------------------------------------


class Sizer(Protocol):
    """`PositionSizer` with `name` read-only: mypy finds a frozen dataclass's field does not
    meet the settable `name: str` that `PositionSizer` declares."""

    @property
    def name(self) -> str: ...

    def compute_size(self, signal: Signal, state: TradeState, prices: Prices) -> PositionSize: ...


# Each is configured so that the healthy account and market below give a non-zero size; the
# common edge cases then change one thing only.
SIZERS: list[Sizer] = [
    FixedFraction(0.1),
    Kelly(fallback_fraction=0.01),
    VolatilityTarget(),
    RiskParity(),
    SignalStrength(0.1),
]
SIZER_IDS = [sizer.name for sizer in SIZERS]


@pytest.mark.parametrize("sizer", SIZERS, ids=SIZER_IDS)
def test_a_healthy_account_and_market_get_a_size(sizer: Sizer) -> None:
    size = sizer.compute_size(signal(), account(), prices(market()))
    assert not size.zero
    assert size.reason.startswith(f"{sizer.name}: ")


@pytest.mark.parametrize("sizer", SIZERS, ids=SIZER_IDS)
@pytest.mark.parametrize("equity", [0.0, -0.01, -5_000.0, -math.inf])
def test_no_size_without_positive_equity(sizer: Sizer, equity: float) -> None:
    size = sizer.compute_size(signal(), account(equity), prices(market()))
    assert_zero(size, f"{sizer.name}: equity <= 0")


@pytest.mark.parametrize("sizer", SIZERS, ids=SIZER_IDS)
@pytest.mark.parametrize("equity", [NAN, math.inf])
def test_no_size_with_non_finite_equity(sizer: Sizer, equity: float) -> None:
    size = sizer.compute_size(signal(), account(equity), prices(market()))
    assert_zero(size, f"{sizer.name}: equity not finite")


@pytest.mark.parametrize("sizer", SIZERS, ids=SIZER_IDS)
def test_no_size_when_the_symbol_has_no_market(sizer: Sizer) -> None:
    size = sizer.compute_size(signal(BTC), account(), prices(market(ETH)))
    assert_zero(size, f"{sizer.name}: no price for BTCUSDT")


@pytest.mark.parametrize("sizer", SIZERS, ids=SIZER_IDS)
@pytest.mark.parametrize("close", [0.0, -1.0, NAN, math.inf])
def test_no_size_when_the_close_is_not_a_positive_price(sizer: Sizer, close: float) -> None:
    size = sizer.compute_size(signal(), account(), prices(market(close=close)))
    assert_zero(size, f"{sizer.name}: no price for BTCUSDT")


def test_a_custom_name_leads_the_reason() -> None:
    size = FixedFraction(0.1, name="ten_pct").compute_size(signal(), account(), prices(market()))
    assert size.reason.startswith("ten_pct: ")


# --- fixed fraction ------------------------------------------------------------------------


def test_fixed_fraction_enters_the_fraction_of_equity() -> None:
    size = FixedFraction(0.1).compute_size(signal(), account(10_000), prices(market(close=250)))
    # 0.1 x 10000 = 1000 quote, at 250 a unit: 4 units.
    assert size.quantity == Decimal(4)
    assert size.reason == "fixed_fraction: 0.1 of equity 10000 = 1000"


def test_fixed_fraction_of_one_is_all_equity() -> None:
    size = FixedFraction(1.0).compute_size(signal(), account(3_000), prices(market(close=1_500)))
    assert size.quantity == Decimal(2)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.01, NAN])
def test_fixed_fraction_rejects_a_fraction_outside_0_to_1(fraction: float) -> None:
    with pytest.raises(ValueError, match=f"fraction must be in .* got {fraction}"):
        FixedFraction(fraction)


# --- Kelly ---------------------------------------------------------------------------------


def test_kelly_estimate_of_six_two_percent_wins_and_four_one_percent_losses() -> None:
    estimate = KellyEstimate.of(trades((6, 2.0), (4, -1.0)))
    assert (estimate.trades, estimate.wins, estimate.losses) == (10, 6, 4)
    assert estimate.win_rate == pytest.approx(0.6)
    assert estimate.payoff == pytest.approx(2.0)
    assert estimate.optimal_fraction == pytest.approx(0.6 - 0.4 / 2)


def test_kelly_sizes_half_of_f_star_below_the_cap() -> None:
    state = account(10_000, trades=trades((6, 2.0), (4, -1.0)))
    size = Kelly(fraction=0.5, cap=0.25, min_trades=10).compute_size(
        signal(), state, prices(market(close=100))
    )
    p, b = 6 / 10, 2.0 / 1.0
    f_star = p - (1 - p) / b  # 0.4
    assert_sized(size, 0.5 * f_star * 10_000, 100)  # 0.2 of equity: 20 units
    assert size.quantity == Decimal(20)
    assert size.reason == "kelly: f*=0.4 x 0.5 = 0.2 of equity 10000 (p=0.6, b=2, n=10)"


def test_kelly_is_capped() -> None:
    # 8 wins of +4 %, 2 losses of -1 %: p = 0.8, b = 4, f* = 0.8 - 0.2 / 4 = 0.75; half: 0.375.
    state = account(10_000, trades=trades((8, 4.0), (2, -1.0)))
    size = Kelly(fraction=0.5, cap=0.25, min_trades=10).compute_size(
        signal(), state, prices(market(close=100))
    )
    assert_sized(size, 0.25 * 10_000, 100)
    assert "f*=0.75 x 0.5 = 0.375, capped at 0.25 of equity 10000" in size.reason


def test_kelly_with_only_wins_bets_the_win_rate() -> None:
    # No losses: b is infinite, so f* = p = 1; a quarter Kelly under a cap of 1 is 0.25.
    state = account(10_000, trades=trades((10, 1.5)))
    size = Kelly(fraction=0.25, cap=1.0, min_trades=10).compute_size(
        signal(), state, prices(market(close=100))
    )
    assert_sized(size, 0.25 * 1.0 * 10_000, 100)
    assert "b=inf" in size.reason


def test_kelly_with_only_losses_has_no_edge() -> None:
    state = account(10_000, trades=trades((10, -1.0)))
    size = Kelly(min_trades=10).compute_size(signal(), state, prices(market()))
    assert_zero(size, "kelly: no edge (no wins in 10 trades)")


def test_kelly_with_a_negative_f_star_has_no_edge() -> None:
    # 4 wins of +1 %, 6 losses of -1 %: p = 0.4, b = 1, f* = 0.4 - 0.6 / 1 = -0.2.
    state = account(10_000, trades=trades((4, 1.0), (6, -1.0)))
    size = Kelly(min_trades=10).compute_size(signal(), state, prices(market()))
    assert_zero(size, "kelly: no edge (f*=-0.2;")


def test_kelly_counts_break_even_trades_in_n_but_not_in_the_loss_mean() -> None:
    # 6 wins of +2 %, 2 losses of -1 %, 2 at zero: p = 6 / 10 and b = 2 / 1 (the zeros would
    # make b = 2 / 0.5 = 4 if they were averaged in as losses).
    state = account(10_000, trades=trades((6, 2.0), (2, -1.0), (2, 0.0)))
    estimate = KellyEstimate.of(state.trades)
    assert (estimate.trades, estimate.wins, estimate.losses) == (10, 6, 2)
    size = Kelly(fraction=0.5, min_trades=10).compute_size(signal(), state, prices(market()))
    p, b = 0.6, 2.0
    assert_sized(size, 0.5 * (p - (1 - p) / b) * 10_000, 100)


def test_kelly_uses_only_the_last_window_trades() -> None:
    # The 10 oldest losses fall outside the window; counted, they would give
    # p = 6 / 20 = 0.3, f* = 0.3 - 0.7 / 2 < 0 (no edge).
    state = account(10_000, trades=trades((10, -1.0), (6, 2.0), (4, -1.0)))
    size = Kelly(fraction=0.5, window=10, min_trades=10).compute_size(
        signal(), state, prices(market())
    )
    p, b = 0.6, 2.0
    assert_sized(size, 0.5 * (p - (1 - p) / b) * 10_000, 100)
    assert "n=10" in size.reason


def test_kelly_without_history_enters_the_fallback_fraction() -> None:
    size = Kelly(fallback_fraction=0.01).compute_size(
        signal(), account(10_000), prices(market(close=50))
    )
    assert size.quantity == Decimal(2)  # 0.01 x 10000 = 100 quote at 50
    assert size.reason == "kelly: only 0 < min_trades 20 trades, fallback 0.01 of equity 10000"


def test_kelly_below_min_trades_falls_back() -> None:
    state = account(10_000, trades=trades((19, 5.0)))
    size = Kelly(fallback_fraction=0.02, min_trades=20).compute_size(
        signal(), state, prices(market(close=100))
    )
    assert_sized(size, 0.02 * 10_000, 100)
    assert "only 19 < min_trades 20 trades" in size.reason


def test_kelly_without_history_and_no_fallback_does_not_enter() -> None:
    size = Kelly(fallback_fraction=0.0).compute_size(signal(), account(), prices(market()))
    assert_zero(size, "kelly: only 0 < min_trades 20 trades")


def test_kelly_wins_without_an_entry_notional_earn_no_payoff() -> None:
    # A win whose entry price is unknown has a return of 0 %: payoff 0, so f* = -inf.
    state = account(10_000, trades=(trade(2.0, entry_price=NAN), *trades((9, -1.0))))
    size = Kelly(min_trades=10).compute_size(signal(), state, prices(market()))
    assert_zero(size, "kelly: no edge (f*=-inf; p=0.1, b=0, n=10)")


def test_kelly_with_infinite_returns_has_no_f_star() -> None:
    # inf / inf: the payoff, and so f*, is undefined.
    state = account(10_000, trades=(*trades((5, math.inf)), *trades((5, -math.inf))))
    size = Kelly(min_trades=10).compute_size(signal(), state, prices(market()))
    assert_zero(size, "kelly: f* not finite (p=0.5, b=nan, n=10)")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"cap": 0.0}, "cap"),
        ({"cap": 2.0}, "cap"),
        ({"window": 0, "min_trades": 1}, "window"),
        ({"min_trades": 0}, "min_trades"),
        ({"window": 10, "min_trades": 11}, "min_trades"),
        ({"fallback_fraction": -0.01}, "fallback_fraction"),
        ({"fallback_fraction": 1.1}, "fallback_fraction"),
    ],
)
def test_kelly_rejects_bad_parameters(params: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named} must .* got {params[named]}$"):
        Kelly(**params)  # type: ignore[arg-type]


@given(
    pnls=st.lists(st.floats(min_value=-10, max_value=10), min_size=20, max_size=60),
    fraction=st.floats(min_value=0.01, max_value=1.0),
    cap=st.floats(min_value=0.01, max_value=1.0),
)
def test_kelly_never_exceeds_its_cap(pnls: list[float], fraction: float, cap: float) -> None:
    state = account(10_000, trades=tuple(trade(pnl) for pnl in pnls))
    size = Kelly(fraction=fraction, cap=cap).compute_size(signal(), state, prices(market()))
    assert float(size.quantity) * 100 <= cap * 10_000 * (1 + 1e-11)
    if not any(pnl > 0 for pnl in pnls[-50:]):
        assert size.zero


# --- volatility target ---------------------------------------------------------------------


def test_volatility_target_scales_equity_by_target_over_annualised_volatility() -> None:
    # Per-bar 0.01 over 6400 bars a year: 0.01 x sqrt(6400) = 0.8 a year; 0.2 / 0.8 = 0.25.
    size = VolatilityTarget(target_vol=0.2).compute_size(
        signal(), account(10_000), prices(market(close=50, volatility=0.01, bars_per_year=6400))
    )
    assert_sized(size, 10_000 * 0.2 / (0.01 * 80), 50)
    assert size.quantity == Decimal(50)
    assert size.reason == "volatility_target: target 0.2 / volatility 0.8 = 0.25 x equity 10000"


@pytest.mark.parametrize(("max_leverage", "expected_leverage"), [(1.0, 1.0), (1.5, 1.5), (3, 2)])
def test_volatility_target_is_capped_at_max_leverage(
    max_leverage: float, expected_leverage: float
) -> None:
    # 0.00125 x sqrt(6400) = 0.1 a year: a target of 0.2 asks for 2 x equity.
    size = VolatilityTarget(target_vol=0.2, max_leverage=max_leverage).compute_size(
        signal(), account(10_000), prices(market(volatility=0.00125, bars_per_year=6400))
    )
    assert_sized(size, expected_leverage * 10_000, 100)
    assert ("capped at max_leverage" in size.reason) == (expected_leverage < 2)


def test_volatility_target_with_zero_volatility_takes_max_leverage() -> None:
    size = VolatilityTarget(max_leverage=2.0).compute_size(
        signal(), account(10_000), prices(market(volatility=0.0))
    )
    assert_sized(size, 2.0 * 10_000, 100)
    assert size.reason == (
        "volatility_target: volatility 0, capped at max_leverage 2 x equity 10000"
    )


@pytest.mark.parametrize(
    ("volatility", "bars_per_year"), [(NAN, 6400), (0.01, NAN), (math.inf, 6400), (-0.01, 6400)]
)
def test_volatility_target_without_a_known_volatility_does_not_enter(
    volatility: float, bars_per_year: float
) -> None:
    size = VolatilityTarget().compute_size(
        signal(), account(), prices(market(volatility=volatility, bars_per_year=bars_per_year))
    )
    assert_zero(size, "volatility_target: volatility unknown")


def test_volatility_target_with_an_overflowing_notional_does_not_enter() -> None:
    size = VolatilityTarget(max_leverage=10).compute_size(
        signal(), account(1e308), prices(market(volatility=0.0))
    )
    assert_zero(size, "volatility_target: notional not finite")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"target_vol": 0.0}, "target_vol"),
        ({"target_vol": -0.2}, "target_vol"),
        ({"target_vol": NAN}, "target_vol"),
        ({"max_leverage": 0.0}, "max_leverage"),
        ({"max_leverage": math.inf}, "max_leverage"),
    ],
)
def test_volatility_target_rejects_bad_parameters(params: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named} must be positive and finite, got"):
        VolatilityTarget(**params)  # type: ignore[arg-type]


# --- risk parity ---------------------------------------------------------------------------


def test_risk_parity_without_open_positions_takes_the_whole_budget() -> None:
    size = RiskParity(gross_fraction=0.5).compute_size(
        signal(), account(10_000), prices(market(close=100, volatility=0.01))
    )
    assert size.quantity == Decimal(50)  # share 1 of 0.5 x 10000
    assert (
        size.reason == "risk_parity: share 1 of budget 5000 = 5000 (0 open using 0 of budget 5000)"
    )


def test_risk_parity_with_one_open_position_takes_its_inverse_volatility_share() -> None:
    state = account(10_000, positions=(held(ETH, "1"),))
    size = RiskParity().compute_size(
        signal(),
        state,
        prices(market(BTC, 100, volatility=0.01), market(ETH, 1_000, volatility=0.02)),
    )
    share = (1 / 0.01) / (1 / 0.01 + 1 / 0.02)  # 2/3
    assert_sized(size, share * 10_000, 100)  # wanted 6666.67, 9000 left
    assert "1 open using 1000 of budget 10000" in size.reason


def test_risk_parity_with_two_open_positions() -> None:
    state = account(10_000, positions=(held(ETH, "1"), held(SOL, "10")))
    size = RiskParity().compute_size(
        signal(),
        state,
        prices(
            market(BTC, 100, volatility=0.01),
            market(ETH, 1_000, volatility=0.02),
            market(SOL, 100, volatility=0.04),
        ),
    )
    share = (1 / 0.01) / (1 / 0.01 + 1 / 0.02 + 1 / 0.04)  # 4/7
    assert_sized(size, share * 10_000, 100)  # wanted 5714.29, 8000 left
    assert "2 open using 2000 of budget 10000" in size.reason


def test_risk_parity_counts_an_open_position_in_the_entry_symbol_and_shorts_alike() -> None:
    state = account(10_000, positions=(held(BTC, "10"), held(ETH, "1", side="short")))
    size = RiskParity().compute_size(
        signal(),
        state,
        prices(market(BTC, 100, volatility=0.01), market(ETH, 1_000, volatility=0.01)),
    )
    assert_sized(size, 10_000 / 3, 100)  # three equal shares; 2000 in use, 8000 left


def test_risk_parity_is_limited_to_what_the_open_positions_leave() -> None:
    state = account(10_000, positions=(held(ETH, "9"),))
    size = RiskParity().compute_size(
        signal(),
        state,
        prices(market(BTC, 100, volatility=0.01), market(ETH, 1_000, volatility=0.02)),
    )
    assert_sized(size, 10_000 - 9 * 1_000, 100)  # share 2/3 asks 6666.67; 1000 left
    assert size.reason.endswith("limited to the 1000 left")


@pytest.mark.parametrize("quantity", ["10", "12"])
def test_risk_parity_with_its_budget_used_does_not_enter(quantity: str) -> None:
    state = account(10_000, positions=(held(ETH, quantity),))
    size = RiskParity().compute_size(signal(), state, prices(market(BTC, 100), market(ETH, 1_000)))
    assert_zero(size, "risk_parity: budget used")


def test_risk_parity_needs_a_price_for_every_open_position() -> None:
    state = account(10_000, positions=(held(ETH, "1"),))
    size = RiskParity().compute_size(signal(), state, prices(market(BTC)))
    assert_zero(size, "risk_parity: no price for open position ETHUSDT")


@pytest.mark.parametrize(("vol", "word"), [(0.0, "0"), (NAN, "unknown"), (-0.01, "unknown")])
@pytest.mark.parametrize("symbol", [BTC, ETH])
def test_risk_parity_without_a_positive_volatility_names_the_symbol(
    vol: float, word: str, symbol: str
) -> None:
    vols = {BTC: 0.01, ETH: 0.02, symbol: vol}
    state = account(10_000, positions=(held(ETH, "1"),))
    size = RiskParity().compute_size(
        signal(),
        state,
        prices(market(BTC, 100, volatility=vols[BTC]), market(ETH, 1_000, volatility=vols[ETH])),
    )
    assert_zero(size, f"risk_parity: volatility of {symbol} {word}")


@pytest.mark.parametrize("gross_fraction", [0.0, -1.0, 1.5, NAN])
def test_risk_parity_rejects_a_gross_fraction_outside_0_to_1(gross_fraction: float) -> None:
    with pytest.raises(ValueError, match=f"^gross_fraction must be in .* got {gross_fraction}"):
        RiskParity(gross_fraction)


@given(
    held_units=st.lists(st.integers(min_value=0, max_value=50), max_size=4),
    vols=st.lists(st.floats(min_value=0.001, max_value=0.1), min_size=5, max_size=5),
)
def test_risk_parity_never_takes_the_open_positions_past_the_budget(
    held_units: list[int], vols: list[float]
) -> None:
    symbols = [f"S{n}USDT" for n in range(len(held_units))]
    markets = [market(s, 100, volatility=v) for s, v in zip(symbols, vols, strict=False)]
    state = account(
        10_000, positions=tuple(held(s, str(q)) for s, q in zip(symbols, held_units, strict=True))
    )
    size = RiskParity().compute_size(signal(), state, prices(market(BTC, 100, vols[-1]), *markets))
    in_use = sum(q * 100 for q in held_units)
    if in_use >= 10_000:
        assert_zero(size, "risk_parity: budget used")
    else:
        assert not size.zero
        assert float(size.quantity) * 100 + in_use <= 10_000 * (1 + 1e-11)


# --- signal strength -----------------------------------------------------------------------


def test_signal_strength_scales_the_base_fraction_by_confidence() -> None:
    size = SignalStrength(0.2).compute_size(
        signal(confidence=0.5), account(10_000), prices(market(close=100))
    )
    assert size.quantity == Decimal(10)  # 0.2 x 10000 x 0.5 = 1000 quote at 100
    assert size.reason == "signal_strength: 0.2 x confidence 0.5 of equity 10000 = 1000"


def test_signal_strength_below_min_confidence_does_not_enter() -> None:
    size = SignalStrength(0.2, min_confidence=0.5).compute_size(
        signal(confidence=0.3), account(), prices(market())
    )
    assert_zero(size, "signal_strength: confidence 0.3 < min_confidence 0.5")


def test_signal_strength_at_min_confidence_enters() -> None:
    size = SignalStrength(0.2, min_confidence=0.5).compute_size(
        signal(confidence=0.5), account(10_000), prices(market(close=100))
    )
    assert_sized(size, 0.2 * 10_000 * 0.5, 100)


def test_signal_strength_counts_confidence_above_one_as_one() -> None:
    size = SignalStrength(0.2).compute_size(
        signal(confidence=3.0), account(10_000), prices(market(close=100))
    )
    assert_sized(size, 0.2 * 10_000 * 1.0, 100)


@pytest.mark.parametrize(
    ("confidence", "reason"),
    [(0.0, "signal_strength: notional 0 <= 0"), (NAN, "signal_strength: confidence unknown")],
)
def test_signal_strength_without_confidence_does_not_enter(confidence: float, reason: str) -> None:
    size = SignalStrength(0.2).compute_size(
        signal(confidence=confidence), account(), prices(market())
    )
    assert_zero(size, reason)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"base_fraction": 0.0}, "base_fraction"),
        ({"base_fraction": 1.1}, "base_fraction"),
        ({"base_fraction": 0.1, "min_confidence": -0.1}, "min_confidence"),
        ({"base_fraction": 0.1, "min_confidence": 1.1}, "min_confidence"),
    ],
)
def test_signal_strength_rejects_bad_parameters(params: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named} must be in .* got {params[named]}$"):
        SignalStrength(**params)  # type: ignore[arg-type]
