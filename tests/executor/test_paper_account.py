"""Virtual spot balances and futures positions, with hand-computed numbers."""

from __future__ import annotations

from decimal import Decimal

from app.domain import Balance, PositionSnapshot, Side
from executor.paper_account import FuturesAccount, Position, SpotAccount

D = Decimal


# -- spot -----------------------------------------------------------------------------------------


def test_spot_buy_then_sell_moves_locks_and_balances() -> None:
    account = SpotAccount({"USDT": D(10_000)})
    assert account.reserve("USDT", D(1001))  # 10 BTC at 100 with a 0.1 % fee at worst
    assert (account.free("USDT"), account.locked("USDT")) == (D(8999), D(1001))
    # Filled at 99.5: costs 995 + 0.995 fee; what the lock did not need goes back to free.
    assert account.settle(
        base="BTC", quote="USDT", side=Side.BUY, quantity=D(10), price=D("99.5"),
        fee=D("0.995"), reserved=D(1001),
    )  # fmt: skip
    assert account.free("USDT") == D("9004.005")  # 10_000 - 995.995
    assert account.locked("USDT") == 0
    assert account.free("BTC") == D(10)

    assert account.reserve("BTC", D(4))
    assert (account.free("BTC"), account.locked("BTC")) == (D(6), D(4))
    assert account.settle(
        base="BTC", quote="USDT", side=Side.SELL, quantity=D(4), price=D(110), fee=D("0.44"),
        reserved=D(4),
    )  # fmt: skip
    assert (account.free("BTC"), account.locked("BTC")) == (D(6), D(0))
    assert account.free("USDT") == D("9443.565")  # 9004.005 + 440 - 0.44
    assert account.balances() == (
        Balance("BTC", D(6), D(0)),
        Balance("USDT", D("9443.565"), D(0)),
    )


def test_spot_release_returns_a_cancelled_orders_lock() -> None:
    account = SpotAccount({"USDT": D(1_000)})
    assert account.reserve("USDT", D(300))
    account.release("USDT", D(300))
    assert (account.free("USDT"), account.locked("USDT")) == (D(1_000), D(0))


def test_spot_reserve_beyond_free_is_refused_and_changes_nothing() -> None:
    account = SpotAccount({"USDT": D(100)})
    assert account.reserve("USDT", D(60))
    assert not account.reserve("USDT", D(41))  # only 40 left free
    assert not account.reserve("BTC", D("0.001"))
    assert (account.free("USDT"), account.locked("USDT")) == (D(40), D(60))


def test_spot_fill_costing_more_than_the_lock_takes_from_free_or_fails() -> None:
    account = SpotAccount({"USDT": D(105)})
    assert account.reserve("USDT", D(100))
    # costs 104: the extra 4 comes from the 5 still free
    assert account.settle(
        base="BTC", quote="USDT", side=Side.BUY, quantity=D(1), price=D(104), fee=D(0),
        reserved=D(100),
    )  # fmt: skip
    assert (account.free("USDT"), account.locked("USDT"), account.free("BTC")) == (D(1), D(0), D(1))
    assert account.reserve("USDT", D(1))
    refused = account.settle(
        base="BTC", quote="USDT", side=Side.BUY, quantity=D(1), price=D(2), fee=D(0), reserved=D(1)
    )
    assert not refused
    assert (account.free("USDT"), account.locked("USDT"), account.free("BTC")) == (D(0), D(1), D(1))


# -- futures --------------------------------------------------------------------------------------


def _fill(account: FuturesAccount, side: Side, quantity: str, price: str, fee: str = "0") -> D:
    return account.settle(
        symbol="BTCUSDT", asset="USDT", side=side, quantity=D(quantity), price=D(price), fee=D(fee)
    )


def test_futures_open_add_reduce_flip_and_close_with_realised_pnl() -> None:
    account = FuturesAccount({"USDT": D(10_000)})
    assert _fill(account, Side.BUY, "2", "100", "0.2") == 0
    assert account.position("BTCUSDT") == Position(D(2), D(100), "USDT")
    assert account.wallet("USDT") == D("9999.8")

    assert _fill(account, Side.BUY, "2", "110", "0.22") == 0  # add: average (200 + 220) / 4
    assert account.position("BTCUSDT") == Position(D(4), D(105), "USDT")

    assert _fill(account, Side.SELL, "1", "120", "0.12") == D(15)  # 1 x (120 - 105)
    assert account.position("BTCUSDT") == Position(D(3), D(105), "USDT")

    # flip: closes 3 at 100 (-15), the other 2 open a short at 100
    assert _fill(account, Side.SELL, "5", "100", "0.5") == D(-15)
    assert account.position("BTCUSDT") == Position(D(-2), D(100), "USDT")

    assert _fill(account, Side.BUY, "2", "90", "0.18") == D(20)  # short: 2 x (100 - 90)
    assert account.position("BTCUSDT") is None
    fees = D("0.2") + D("0.22") + D("0.12") + D("0.5") + D("0.18")
    assert account.wallet("USDT") == D(10_000) + 15 - 15 + 20 - fees
    assert account.snapshots({}, also=["BTCUSDT"]) == (
        PositionSnapshot("BTCUSDT", D(0), D(0), D(0)),
    )


def test_futures_reduce_only_and_opening_quantity() -> None:
    account = FuturesAccount({"USDT": D(10_000)})
    assert not account.reduce_only_allowed("BTCUSDT", Side.SELL, D(1))  # flat: would open
    _fill(account, Side.BUY, "2", "100")
    assert account.reduce_only_allowed("BTCUSDT", Side.SELL, D(1))
    assert account.reduce_only_allowed("BTCUSDT", Side.SELL, D(2))
    assert not account.reduce_only_allowed("BTCUSDT", Side.SELL, D(3))  # would flip
    assert not account.reduce_only_allowed("BTCUSDT", Side.BUY, D(1))  # would grow
    assert account.opening_quantity("BTCUSDT", Side.BUY, D(1)) == D(1)
    assert account.opening_quantity("BTCUSDT", Side.SELL, D(1)) == D(0)
    assert account.opening_quantity("BTCUSDT", Side.SELL, D(5)) == D(3)


def test_futures_unrealised_pnl_and_available_margin_at_the_last_price() -> None:
    account = FuturesAccount({"USDT": D(10_000)}, leverage=2, symbol_leverage={"ETHUSDT": 5})
    _fill(account, Side.BUY, "4", "105")
    marks = {"BTCUSDT": D(100)}
    # 10_000 + (100 - 105) x 4 - 4 x 100 / 2
    assert account.available("USDT", marks) == D(9_780)
    assert account.snapshots(marks) == (
        PositionSnapshot("BTCUSDT", D(4), D(105), D(-20), leverage=2, mark_price=D(100)),
    )
    assert account.balances(marks) == (
        Balance("USDT", D(10_000), D(0), cross_wallet=D(10_000), available=D(9_780)),
    )
    assert account.leverage("ETHUSDT") == 5
    assert account.reserve("USDT", D(9_000), marks)
    assert account.available("USDT", marks) == D(780)
    assert not account.reserve("USDT", D(781), marks)
    account.release("USDT", D(9_000))
    assert account.available("USDT", marks) == D(9_780)
