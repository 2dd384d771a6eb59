"""Sending an order, and finding out what happened when the answer was lost.

Write-ahead first: `Placement.place` awaits the intent journal (`journal.WriteAhead`) before
the first send of a client order id; an intent that could not be recorded is never sent — it
ends REJECTED locally ("not recorded: ..."). Retries reuse the recorded intent.

`Placement.place` then sends the intent, always with its own client order id:

- failed *before* reaching the exchange (`TransientError`: connection refused, our own rate
  budget; `RateLimitedError`: 429/418 with Retry-After) → sent again with the same id after
  an exponential backoff with jitter (never less than Retry-After), at most
  `max_send_attempts` in all; then REJECTED with the last reason;
- refused (`RejectedError`, `FatalVenueError`, an order the venue cannot express) → REJECTED
  with the exchange's message;
- outcome unknown (`StatusUnknownError`: 5xx, -1007, timeout, disconnect after send — or an
  answer we could not read) → UNKNOWN, published, and resolved by `resolve_unknown`: the
  user-data stream (`venue.order`) or a query by origClientOrderId with backoff. "Order does
  not exist" is believed only `not_found_grace_s` after the send (REJECTED "never reached the
  exchange"). An UNKNOWN order is never sent again.

Entries check the halt gate before every attempt and count as in flight while their request
is on the wire (see `halt`). `fill_gap` books the trades of an order whose REST answer said
it filled more than the booked fills show (the stream missed them, e.g. during a drop).
"""

from __future__ import annotations

import asyncio

import structlog

from app.domain.enums import OrderStatus
from app.errors import (
    FatalVenueError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    StatusUnknownError,
    TransientError,
    VenueError,
)
from executor.core import ExecutorCore
from executor.halt import HaltGate
from executor.journal import NoJournal, WriteAhead
from executor.tracked import TrackedOrder
from executor.venue_port import UnsupportedOrder

__all__ = ["MAX_RATE_LIMIT_WAIT_S", "NEVER_REACHED", "Placement", "backoff_s"]

log = structlog.get_logger("executor.placement")

# A Retry-After longer than this (a 418 ban) is not waited out: an intent that old is stale.
MAX_RATE_LIMIT_WAIT_S = 60.0
NEVER_REACHED = "never reached the exchange"


def backoff_s(attempt: int, initial_s: float, max_s: float, jitter: float) -> float:
    """Wait after failed attempt `attempt` (1-based): initial·2^(attempt-1), capped, scaled by
    `jitter` in [0.5, 1] so that many orders failing together do not return together."""
    return min(max_s, initial_s * 2.0 ** min(attempt - 1, 30)) * jitter


class Placement:
    def __init__(
        self, core: ExecutorCore, gate: HaltGate, write_ahead: WriteAhead | None = None
    ) -> None:
        self.core = core
        self.gate = gate
        self.write_ahead = write_ahead or WriteAhead(NoJournal(), core.clock)

    async def place(self, order: TrackedOrder) -> None:
        core, settings = self.core, self.core.settings
        if not await self.record_intent(order):
            return
        while True:
            if order.request.is_entry and (blocked := self.gate.blocked_reason()) is not None:
                core.counts["entries_refused"] += 1
                await core.set_status(order, OrderStatus.REJECTED, blocked)
                return
            failure = await self._attempt(order)
            if failure is None:
                return
            if order.send_attempts >= settings.max_send_attempts:
                core.counts["sends_exhausted"] += 1
                reason = f"not sent after {order.send_attempts} attempts: {failure}"
                await core.set_status(order, OrderStatus.REJECTED, reason)
                return
            wait_s = backoff_s(
                order.send_attempts,
                settings.retry_backoff_initial_s,
                settings.retry_backoff_max_s,
                core.rng.uniform(0.5, 1.0),
            )
            if isinstance(failure, RateLimitedError):
                if failure.banned or failure.retry_after_s > MAX_RATE_LIMIT_WAIT_S:
                    core.counts["sends_exhausted"] += 1
                    reason = f"rate limited for {failure.retry_after_s:.0f}s: {failure}"
                    await core.set_status(order, OrderStatus.REJECTED, reason)
                    return
                wait_s = max(wait_s, failure.retry_after_s)
            core.counts["send_retries"] += 1
            log.info(
                "order_send_retrying",
                client_order_id=order.cid,
                attempt=order.send_attempts,
                wait_s=round(wait_s, 3),
                error=str(failure),
            )
            await core.clock.sleep(wait_s)

    async def record_intent(self, order: TrackedOrder) -> bool:
        """Write-ahead: True once the intent is recorded; else the order is REJECTED locally
        (published) and must not be sent."""
        failure = await self.write_ahead.record(order.request)
        if failure is None:
            return True
        self.core.counts["intents_not_recorded"] += 1
        await self.core.set_status(order, OrderStatus.REJECTED, failure)
        return False

    async def _attempt(self, order: TrackedOrder) -> TransientError | None:
        """One send. Returns the failure when a retry may follow, else None (settled)."""
        core = self.core
        entry = order.request.is_entry
        order.send_attempts += 1
        order.sent_ms = core.clock.now_ms()
        started = core.clock.monotonic()
        if entry:
            self.gate.entry_sending()
        try:
            try:
                placed = await core.venue.place(order.request)
            except TransientError as error:
                return error
            except StatusUnknownError as error:
                await self.mark_unknown(order, str(error))
            except (RejectedError, FatalVenueError) as error:
                if isinstance(error, FatalVenueError):
                    log.critical("order_send_fatal", client_order_id=order.cid, error=str(error))
                core.counts["rejected_by_venue"] += 1
                await core.set_status(order, OrderStatus.REJECTED, error.venue_message)
            except UnsupportedOrder as error:
                core.counts["unsupported"] += 1
                await core.set_status(order, OrderStatus.REJECTED, str(error))
            except asyncio.CancelledError:
                # Shutting down mid-request: the outcome is unknown and must stay so.
                if order.status is OrderStatus.PENDING_NEW:
                    order.status = OrderStatus.UNKNOWN
                log.warning("order_send_cancelled", client_order_id=order.cid)
                raise
            except Exception as error:
                # An answer we could not read (the exchange may have accepted the order).
                log.exception("order_answer_unreadable", client_order_id=order.cid)
                await self.mark_unknown(order, f"unreadable answer: {type(error).__name__}")
            else:
                core.last_latency_ms = round((core.clock.monotonic() - started) * 1000.0, 3)
                await core.apply(order, placed.update, placed.fills, source="placement")
            return None
        finally:
            if entry:
                await self.gate.entry_done()

    async def mark_unknown(self, order: TrackedOrder, why: str) -> None:
        core = self.core
        if order.status is not OrderStatus.PENDING_NEW:
            # The stream settled the order while its answer was lost: nothing is unknown.
            core.counts["unknown_already_settled"] += 1
            log.info("order_answer_lost_after_settled", client_order_id=order.cid, error=why)
            return
        core.counts["unknown"] += 1
        log.warning("order_status_unknown", client_order_id=order.cid, error=why)
        if await core.set_status(order, OrderStatus.UNKNOWN, why) and not order.resolving:
            order.resolving = True
            core.spawn(self.resolve_unknown(order), f"resolve {order.cid}")

    async def resolve_unknown(self, order: TrackedOrder) -> None:
        """Until the order is known: wait (the stream may tell), then query by its id."""
        core, settings = self.core, self.core.settings
        delay_s = settings.unknown_query_initial_s
        try:
            while _unknown(order):
                await core.clock.sleep(self._next_wait(order, delay_s))
                if not _unknown(order):
                    break
                delay_s = min(delay_s * 2, settings.unknown_query_max_s)
                core.counts["unknown_queries"] += 1
                try:
                    report = await core.venue.query(order.symbol, order.cid)
                except NotFoundError:
                    if self._grace_over(order):
                        core.counts["never_reached"] += 1
                        await core.set_status(order, OrderStatus.REJECTED, NEVER_REACHED)
                    continue
                except RateLimitedError as error:
                    delay_s = max(delay_s, min(error.retry_after_s, MAX_RATE_LIMIT_WAIT_S))
                    continue
                except VenueError as error:
                    log.warning("order_query_failed", client_order_id=order.cid, error=str(error))
                    continue
                await core.apply(order, report, source="query")
        finally:
            order.resolving = False
        if not _unknown(order):
            core.counts["unknown_resolved"] += 1
            log.info("order_status_resolved", client_order_id=order.cid, status=order.status.value)

    def _grace_over(self, order: TrackedOrder) -> bool:
        sent_ms = order.sent_ms if order.sent_ms is not None else order.created_ms
        return self.core.clock.now_ms() - sent_ms >= self.core.settings.not_found_grace_s * 1000

    def _next_wait(self, order: TrackedOrder, delay_s: float) -> float:
        # Never sleep past the end of the not-found grace: the query that may settle the order
        # as "never reached the exchange" is due then, not a backoff step later.
        sent_ms = order.sent_ms if order.sent_ms is not None else order.created_ms
        until_grace_s = (
            sent_ms + self.core.settings.not_found_grace_s * 1000 - self.core.clock.now_ms()
        ) / 1000
        if until_grace_s > 0:
            return min(delay_s, until_grace_s)
        return delay_s

    async def fill_gap(self, order: TrackedOrder) -> None:
        """Book the trades the exchange reports for this order that no event brought."""
        core = self.core
        if order.exchange_order_id is None or order.gap_fetching:
            return
        order.gap_fetching = True
        try:
            core.counts["trade_fetches"] += 1
            trades = await core.venue.trades(order.symbol, order.exchange_order_id)
        except VenueError as error:
            log.warning("order_trades_failed", client_order_id=order.cid, error=str(error))
            return
        finally:
            order.gap_fetching = False
        mine = [t for t in trades if t.exchange_order_id in (None, order.exchange_order_id)]
        applied = await core.apply(order, core.gap_report(order), mine, source="trades")
        if applied.new_fills:
            core.counts["fills_from_trades"] += len(applied.new_fills)


def _unknown(order: TrackedOrder) -> bool:
    # A function, not an inline test: other tasks change the status while this one sleeps.
    return order.status is OrderStatus.UNKNOWN
