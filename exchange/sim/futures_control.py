"""Account settings of the futures engine: leverage, margin type and position mode.

POST /fapi/v1/leverage (1..the symbol's max leverage, else -4028; lowering it below what the
open position needs: -2027), POST /fapi/v1/marginType (-4046 when unchanged, -4048 with a
position, -4047 with open orders; answers ``{"code": 200, "msg": "success"}``), and the
position mode: the simulator is one-way only. GET positionSide/dual answers false; POST false
answers -4059 ("No need to change position side."); POST true runs Binance's checks (-4068
position, -4067 open orders) and is then refused with -1130 (invalid parameter value, HTTP
400) naming the reason, since hedge-mode positions are not simulated. Not -1000: clients treat
that as a transient server fault and would retry a refusal that can never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchange.sim.errors import SimError
from exchange.sim.futures_account import max_notional
from exchange.sim.futures_params import int_param, mandatory
from exchange.sim.futures_state import EngineState

__all__ = ["AccountControl"]


class AccountControl(EngineState):
    def set_leverage(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """POST /fapi/v1/leverage → {"leverage", "maxNotionalValue", "symbol"}."""
        symbol = self.rules(mandatory(params, "symbol"))
        leverage = int_param(params, "leverage", required=True)
        assert leverage is not None
        if not 1 <= leverage <= (symbol.max_leverage or 125):
            raise SimError(-4028, f"Leverage {leverage} is not valid")
        position = self.ledger.position(symbol.symbol)
        notional = abs(position.amount) * self.ledger.mark(symbol.symbol)
        if notional > max_notional(leverage):
            raise SimError(-2027, "Exceeded the maximum allowable position at current leverage.")
        position.leverage = leverage
        return self.ledger.leverage_json(symbol.symbol)

    def set_margin_type(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """POST /fapi/v1/marginType (ISOLATED or CROSSED)."""
        symbol = self.rules(mandatory(params, "symbol"))
        wanted = mandatory(params, "marginType").upper()
        if wanted not in ("ISOLATED", "CROSSED"):
            raise SimError(-1130, "Data sent for parameter 'marginType' is not valid.")
        position = self.ledger.position(symbol.symbol)
        isolated = wanted == "ISOLATED"
        if position.isolated == isolated:
            raise SimError(-4046, "No need to change margin type.")
        if position.amount != 0:
            raise SimError(-4048, "Margin type cannot be changed if there exists position.")
        if self.book.has_open(symbol.symbol):
            raise SimError(-4047, "Margin type cannot be changed if there exists open orders.")
        position.isolated = isolated
        return {"code": 200, "msg": "success"}

    def position_mode(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """GET /fapi/v1/positionSide/dual: always one-way."""
        return {"dualSidePosition": False}

    def set_position_mode(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """POST /fapi/v1/positionSide/dual (see the module docstring)."""
        wanted = mandatory(params, "dualSidePosition").lower()
        if wanted not in ("true", "false"):
            raise SimError(-1130, "Data sent for parameter 'dualSidePosition' is not valid.")
        if wanted == "false":
            raise SimError(-4059, "No need to change position side.")
        if any(p.amount != 0 for p in self.ledger.positions.values()):
            raise SimError(-4068, "Position side cannot be changed if there exists position.")
        if self.book.has_open():
            raise SimError(-4067, "Position side cannot be changed if there exists open orders.")
        raise SimError(
            -1130,
            "Data sent for parameter 'dualSidePosition' is not valid: hedge mode is not "
            "supported by the simulator.",
        )
