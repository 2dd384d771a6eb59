"""The REST transport shared by the Spot and USDⓈ-M clients: sign, budget, send, classify.

One ``RestTransport`` per base URL. Every request goes through the same steps:

1. the pre-send rate limiter reserves weight (and order count) or refuses while a 429/418
   ``Retry-After`` is in force;
2. signed requests get ``timestamp`` from the measured server-time offset and ``recvWindow``,
   and are signed over the exact percent-encoded query string that is sent;
3. the response's ``X-MBX-USED-WEIGHT-*`` / ``X-MBX-ORDER-COUNT-*`` headers feed the limiter;
4. failures become exceptions from the ``app.errors`` tree, chosen by the code table.

Retries: ``-1021`` (timestamp outside recvWindow) resyncs the clock, re-signs and retries
once, for every request: Binance rejects such a request before processing it. Other transient
failures are retried (tenacity, capped, with jitter) only for idempotent requests — reads and
cancels. Order placement is never retried here: after a timeout or a dropped connection its
outcome is unknown (``StatusUnknownError``) and only a query by client order id can tell.
Signed query strings never appear in errors or logs; only ``METHOD /path`` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from yarl import URL

from app.domain.clock import Clock
from app.errors import (
    ClockSkewError,
    FatalVenueError,
    RateLimitedError,
    StatusUnknownError,
    TransientError,
)
from exchange.binance.errors import error_from_http
from exchange.binance.parse_market import parse_server_time
from exchange.binance.ratelimit import RateLimiter
from exchange.binance.signing import Signer, encode_query
from exchange.binance.timesync import ServerTime

__all__ = ["Params", "RestTransport", "RetryPolicy", "Security"]

log = structlog.get_logger(__name__)

Params = Mapping[str, object] | Sequence[tuple[str, object]]


class Security(Enum):
    NONE = "none"  # public market data
    API_KEY = "api_key"  # X-MBX-APIKEY header only (listenKey endpoints)
    SIGNED = "signed"  # API key + timestamp + signature (TRADE, USER_DATA)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How idempotent requests are retried; placement never uses it."""

    attempts: int = 4
    max_elapsed_s: float = 20.0
    wait_initial_s: float = 0.25
    wait_max_s: float = 5.0
    # A rate-limit wait longer than this is not slept through: the error goes up.
    max_rate_limit_wait_s: float = 10.0


class RestTransport:
    """Signed, rate-limited, classified HTTP calls to one Binance REST base URL."""

    def __init__(
        self,
        *,
        base_url: str,
        server_time_path: str,
        clock: Clock,
        limiter: RateLimiter,
        server_time: ServerTime,
        api_key: str | None = None,
        signer: Signer | None = None,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        name: str = "binance",
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._server_time_path = server_time_path
        self._clock = clock
        self.limiter = limiter
        self.server_time = server_time
        self._api_key = api_key
        self._signer = signer
        self._recv_window_ms = recv_window_ms
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry = retry or RetryPolicy()
        self._session = session
        self._owns_session = session is None
        self.name = name
        self._outcomes: Counter[str] = Counter()
        self._last_latency_ms: float | None = None

    @property
    def base_url(self) -> str:
        return self._base_url

    async def __aenter__(self) -> RestTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Created lazily inside the running loop; aiohttp binds a session to its loop.
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def sync_time(self) -> int:
        """Measure the server-time offset now (start-up and after -1021)."""
        return await self.server_time.sync(self.fetch_server_time_ms)

    async def fetch_server_time_ms(self) -> int:
        body = await self._send_once("GET", self._server_time_path, (), Security.NONE, 1, 0)
        return parse_server_time(body)

    async def request(
        self,
        method: str,
        path: str,
        params: Params = (),
        *,
        security: Security = Security.NONE,
        weight: int = 1,
        orders: int = 0,
        idempotent: bool | None = None,
    ) -> bytes:
        """Send one request and return the raw body of a 2xx answer.

        ``idempotent`` defaults to True for GET and False otherwise; pass True for cancels
        (cancelling twice is harmless: the second gets "unknown order").
        """
        if idempotent is None:
            idempotent = method == "GET"
        if not idempotent:
            return await self._with_clock_resync(method, path, params, security, weight, orders)
        retrying = AsyncRetrying(
            retry=retry_if_exception(self._retryable),
            stop=stop_after_attempt(self._retry.attempts)
            | stop_after_delay(self._retry.max_elapsed_s),
            wait=self._wait_for,
            sleep=self._clock.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._with_clock_resync(method, path, params, security, weight, orders)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _retryable(self, error: BaseException) -> bool:
        # Only reached for idempotent requests: repeating them cannot double an effect, so an
        # unknown outcome (a cancel that timed out) is retried like a transient failure.
        if isinstance(error, RateLimitedError):
            return not error.banned and error.retry_after_s <= self._retry.max_rate_limit_wait_s
        return isinstance(error, TransientError | StatusUnknownError)

    def _wait_for(self, retry_state: Any) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, RateLimitedError):
            return error.retry_after_s
        jitter = wait_random_exponential(
            multiplier=self._retry.wait_initial_s, max=self._retry.wait_max_s
        )
        return float(jitter(retry_state))

    async def _with_clock_resync(
        self,
        method: str,
        path: str,
        params: Params,
        security: Security,
        weight: int,
        orders: int,
    ) -> bytes:
        try:
            return await self._send_once(method, path, params, security, weight, orders)
        except ClockSkewError:
            if security is not Security.SIGNED:
                raise
            offset = await self.sync_time()
            log.warning("clock_resynced_after_1021", endpoint=f"{method} {path}", offset_ms=offset)
            return await self._send_once(method, path, params, security, weight, orders)

    async def _send_once(
        self,
        method: str,
        path: str,
        params: Params,
        security: Security,
        weight: int,
        orders: int,
    ) -> bytes:
        endpoint = f"{method} {path}"
        mutating = method != "GET"
        await self.limiter.acquire(weight=weight, orders=orders)
        query, headers = self._prepare(params, security)
        url = f"{self._base_url}{path}"
        if query:
            url = f"{url}?{query}"
        started = self._clock.monotonic()
        sent_ms = self._clock.now_ms()
        try:
            # encoded=True: the query must reach the wire byte for byte as it was signed.
            async with self._http().request(
                method,
                URL(url, encoded=True),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
                response_headers: Mapping[str, str] = response.headers
        except aiohttp.ClientConnectorError as error:
            # Refused before a byte was sent: the request cannot have taken effect.
            self._outcomes["connect_error"] += 1
            raise TransientError(
                f"cannot connect: {type(error).__name__}", endpoint=endpoint
            ) from None
        except (TimeoutError, aiohttp.ClientError) as error:
            self._outcomes["lost"] += 1
            what = "timed out" if isinstance(error, TimeoutError) else type(error).__name__
            message = f"no complete response ({what})"
            if mutating:
                raise StatusUnknownError(message, endpoint=endpoint) from None
            raise TransientError(message, endpoint=endpoint) from None
        finally:
            self._last_latency_ms = (self._clock.monotonic() - started) * 1000.0
        self.limiter.observe_headers(response_headers, sent_ms=sent_ms)
        if 200 <= status < 300:
            self._outcomes["ok"] += 1
            return body
        failure = error_from_http(
            status, body, response_headers, endpoint=endpoint, mutating=mutating
        )
        self._outcomes[type(failure).__name__] += 1
        if isinstance(failure, RateLimitedError):
            self.limiter.block(failure.retry_after_s, banned=failure.banned, reason=str(failure))
        raise failure

    def _prepare(self, params: Params, security: Security) -> tuple[str, dict[str, str]]:
        headers: dict[str, str] = {}
        pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
        if security is Security.NONE:
            return encode_query(pairs), headers
        if self._api_key is None:
            raise FatalVenueError("this request needs exchange.api_key, which is not set")
        headers["X-MBX-APIKEY"] = self._api_key
        if security is Security.API_KEY:
            return encode_query(pairs), headers
        if self._signer is None:
            raise FatalVenueError(
                "this request needs a signing key (exchange.api_secret or private_key_file)"
            )
        pairs.append(("recvWindow", self._recv_window_ms))
        pairs.append(("timestamp", self.server_time.timestamp_ms()))
        query = encode_query(pairs)
        signature = self._signer.sign(query)
        return f"{query}&{encode_query([('signature', signature)])}", headers

    def snapshot(self) -> dict[str, Any]:
        """Counters, last latency, clock offset and rate-limit state, for the heartbeat."""
        return {
            "base_url": self._base_url,
            "outcomes": dict(self._outcomes),
            "last_latency_ms": (
                round(self._last_latency_ms, 3) if self._last_latency_ms is not None else None
            ),
            "server_time": self.server_time.snapshot(),
            "rate_limits": self.limiter.snapshot(),
        }
