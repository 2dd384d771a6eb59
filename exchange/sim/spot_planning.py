"""What a new spot order takes from the book when placed, and what it must lock.

``plan_fills`` is pure: from the request, the symbol's last quote and the fill model it
returns the taker fills (possibly none) and the (asset, amount) the order locks, or raises the
matching engine's -2010 refusals (no liquidity, LIMIT_MAKER that would take). The engine then
checks the balance and applies the plan.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Final

from exchange.sim.errors import SimError
from exchange.sim.matching import FillModel, Quote, crosses, taker_fills
from exchange.sim.spot_request import SpotRequest

__all__ = ["NO_LIQUIDITY", "plan_fills"]

# The closest real -2010 text: Binance's answer to a quote-quantity MARKET order on an empty book.
NO_LIQUIDITY: Final = "Order book liquidity is less than symbol minimum quantity."


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def plan_fills(
    request: SpotRequest, quote: Quote | None, model: FillModel
) -> tuple[list[tuple[Decimal, Decimal]], str, Decimal]:
    """The taker fills the order gets now, and what it must lock (asset, amount)."""
    s = request.symbol
    buy = request.side == "BUY"
    if request.order_type == "MARKET":
        if quote is None:
            raise SimError(-2010, NO_LIQUIDITY)
        fills = _market_fills(request, quote, model)
        if not fills and request.quote_order_qty is not None:
            raise SimError(-2010, NO_LIQUIDITY)
        if buy:
            cost = sum((p * q for p, q in fills), Decimal(0))
            return fills, s.quote_asset, cost
        sold = request.quantity or sum((q for _, q in fills), Decimal(0))
        return fills, s.base_asset, sold
    price, qty = request.price, request.quantity
    assert price is not None
    assert qty is not None
    lock_asset, lock = (s.quote_asset, price * qty) if buy else (s.base_asset, qty)
    if quote is None or not crosses(request.side, price, quote):
        return [], lock_asset, lock
    if request.order_type == "LIMIT_MAKER":
        raise SimError(-2010, "Order would immediately match and take.")
    fills = taker_fills(
        side=request.side,
        quantity=qty,
        limit_price=price,
        quote=quote,
        model=model,
        tick_size=s.tick_size,
        step_size=s.step_size,
    )
    if request.time_in_force == "FOK" and sum((q for _, q in fills), Decimal(0)) < qty:
        fills = []  # fill-or-kill: all or nothing, the order expires untouched
    return fills, lock_asset, lock


def _market_fills(
    request: SpotRequest, quote: Quote, model: FillModel
) -> list[tuple[Decimal, Decimal]]:
    s = request.symbol
    budget = request.quote_order_qty
    qty = request.quantity
    if budget is not None:
        best = quote.ask if request.side == "BUY" else quote.bid
        qty = _floor(budget / best, s.step_size) if best > 0 else Decimal(0)
    assert qty is not None
    fills = taker_fills(
        side=request.side,
        quantity=qty,
        limit_price=None,
        quote=quote,
        model=model,
        tick_size=s.tick_size,
        step_size=s.step_size,
    )
    if budget is None or request.side == "SELL":
        return fills
    # quoteOrderQty BUY: slippage must not make it spend more than the budget.
    kept: list[tuple[Decimal, Decimal]] = []
    left = budget
    for price, q in fills:
        q = min(q, _floor(left / price, s.step_size))
        if q <= 0:
            break
        kept.append((price, q))
        left -= price * q
    return kept
