"""``SimError``: a request the simulated exchange refuses, as Binance would refuse it.

Raised anywhere below the protocol layer (matching, accounts, parameter checks); the REST and
WebSocket-API servers turn it into ``{"code": ..., "msg": ...}`` with the HTTP status Binance
uses for that code (``exchange.sim.replies``). ``data`` carries the extra body some errors have
(spot cancelReplace's ``-2021``/``-2022`` report both halves of the request).
"""

from __future__ import annotations

from collections.abc import Mapping

from exchange.sim.replies import DEFAULT_MESSAGES, DEFAULT_STATUS

__all__ = ["SimError"]

_REQUEST_ERROR_STATUS = 400


class SimError(Exception):
    def __init__(
        self,
        code: int,
        msg: str | None = None,
        *,
        status: int | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        self.code = code
        self.msg = msg if msg is not None else DEFAULT_MESSAGES.get(code, "Unknown error.")
        self.status = (
            status if status is not None else DEFAULT_STATUS.get(code, _REQUEST_ERROR_STATUS)
        )
        self.data = dict(data) if data is not None else None
        super().__init__(f"{code}: {self.msg}")

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            body["data"] = self.data
        return body
