"""The one exception tree, split by what the caller must do next.

::

    TradebusError
    └── VenueError                  anything an exchange call can raise; carries code/status
        ├── TransientError          nothing happened on the exchange: retrying is safe
        │   ├── RateLimitedError    429/418 or our own pre-send budget; wait `retry_after_s`
        │   └── ClockSkewError      -1021: resync the clock, re-sign, retry once
        ├── RejectedError           the exchange refused this request: do not retry it as is
        │   └── NotFoundError       the order/key does not exist (-2011, -2013, -1125 ...)
        ├── StatusUnknownError      sent, but the outcome was lost (5xx, -1007, timeout,
        │                           disconnect after send): query by origClientOrderId first,
        │                           never resubmit blindly
        └── FatalVenueError         bad key, signature, permissions, IP ban: stop trading

The tree lives in ``app`` (stdlib only) so every component can catch these without importing
the exchange client; the Binance code table that chooses the class is in
``exchange.binance.errors``. Messages never carry secrets: signed query strings are not
included, only the path.
"""

from __future__ import annotations

__all__ = [
    "ClockSkewError",
    "FatalVenueError",
    "NotFoundError",
    "RateLimitedError",
    "RejectedError",
    "StatusUnknownError",
    "TradebusError",
    "TransientError",
    "VenueError",
]


class TradebusError(Exception):
    """Root of every error tradebus raises on purpose."""


class VenueError(TradebusError):
    """A request to the exchange failed. ``code`` is the venue's error code when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        endpoint: str = "",
    ) -> None:
        self.code = code
        self.http_status = http_status
        self.endpoint = endpoint
        self.venue_message = message
        parts = [endpoint] if endpoint else []
        if http_status is not None:
            parts.append(f"http {http_status}")
        if code is not None:
            parts.append(f"code {code}")
        prefix = " ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TransientError(VenueError):
    """The request did not take effect; the same request may be sent again."""


class RateLimitedError(TransientError):
    """Over a rate limit (ours or the venue's). Nothing may be sent before ``retry_after_s``."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        banned: bool = False,
        code: int | None = None,
        http_status: int | None = None,
        endpoint: str = "",
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, endpoint=endpoint)
        self.retry_after_s = retry_after_s
        self.banned = banned


class ClockSkewError(TransientError):
    """The request's timestamp was outside recvWindow (-1021)."""


class RejectedError(VenueError):
    """The venue understood and refused the request; sending it again gives the same answer."""


class NotFoundError(RejectedError):
    """The order, trade or stream key referred to does not exist on the venue."""


class StatusUnknownError(VenueError):
    """The request may or may not have taken effect. Query the order before anything else."""


class FatalVenueError(VenueError):
    """Credentials, signature, permissions or a ban: no retry can fix it; trading must stop."""
