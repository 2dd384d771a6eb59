"""Cancelling and replacing tracked orders.

Cancel: the order goes PENDING_CANCEL (published), then the cancel is sent. Its answer (or the
stream) ends the order; "order does not exist" after the order already ended is fine; any
other outcome is settled by a query — an order still open afterwards is open again (the TTL
loop or the next request may cancel it again, at most `max_send_attempts` times). An order
not yet acknowledged (PENDING_NEW, UNKNOWN) cannot be cancelled by id yet: the cancel waits
for the acknowledgement.

Replace: spot cancel-replace (`STOP_ON_FAILURE`: a new client order id, tracked with the same
strategy, signal, purpose and TTL; the old order PENDING_CANCEL until the answer or stream
says) or futures modify in place (price/quantity; the id stays). A new spot order whose
answer was lost is UNKNOWN and resolved like any placement; a refused one is REJECTED and the
old order's state is settled by a query.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from app.domain import MarketType
from app.domain.enums import OrderStatus, OrderType
from app.domain.orders import ReplaceOrder
from app.errors import NotFoundError, RejectedError, StatusUnknownError, VenueError
from executor.core import ExecutorCore
from executor.halt import HaltGate
from executor.placement import Placement
from executor.tracked import TrackedOrder
from executor.venue_port import UnsupportedOrder

__all__ = ["Amender"]

log = structlog.get_logger("executor.amend")

_REPLACEABLE = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER})


class Amender:
    def __init__(self, core: ExecutorCore, gate: HaltGate, placement: Placement) -> None:
        self.core = core
        self.gate = gate
        self.placement = placement

    # -- cancel -----------------------------------------------------------------------------
    def request_cancel(self, order: TrackedOrder, reason: str) -> None:
        """Cancel now if the order is acknowledged and open, else when it is."""
        core = self.core
        if order.is_final:
            core.counts["cancel_of_final"] += 1
            return
        if order.cancel_reason is None:
            order.cancel_reason = reason
        if not order.acknowledged or order.cancel_sent:
            return  # sent already, or waiting for the acknowledgement (core.on_acknowledged)
        if order.cancel_attempts >= core.settings.max_send_attempts:
            core.counts["cancels_given_up"] += 1
            return
        order.cancel_sent = True
        order.cancel_attempts += 1
        core.spawn(self._cancel(order), f"cancel {order.cid}")

    async def _cancel(self, order: TrackedOrder) -> None:
        core = self.core
        if not await core.set_status(order, OrderStatus.PENDING_CANCEL, order.cancel_reason or ""):
            order.cancel_sent = False
            return
        core.counts["cancels_sent"] += 1
        try:
            report = await core.venue.cancel(order.symbol, order.cid)
        except NotFoundError:
            await self.settle(order, "cancel: order not found")
            return
        except VenueError as error:
            await self.settle(order, f"cancel failed: {error}")
            return
        await core.apply(order, report, source="cancel")

    async def settle(self, order: TrackedOrder, why: str) -> None:
        """After a cancel whose answer did not end the order: ask the exchange where it is."""
        core = self.core
        if order.is_final:
            return  # the stream told us meanwhile ("not found after final" is fine)
        try:
            report = await core.venue.query(order.symbol, order.cid)
        except VenueError as error:
            log.warning("order_cancel_unsettled", client_order_id=order.cid, error=str(error))
        else:
            await core.apply(order, report, source="query")
        if order.status is OrderStatus.PENDING_CANCEL:
            core.revert_cancel(order)
            core.counts["cancels_failed"] += 1
            log.warning("order_cancel_failed", client_order_id=order.cid, reason=why)
            await core.publish_current(order, why)

    # -- replace ----------------------------------------------------------------------------
    async def replace(self, request: ReplaceOrder) -> None:
        core = self.core
        old = core.book.get(request.client_order_id)
        refusal = self._refusal(old, request)
        if refusal is not None or old is None:
            core.counts["replaces_refused"] += 1
            log.warning(
                "order_replace_refused", client_order_id=request.client_order_id, reason=refusal
            )
            return
        if core.market is MarketType.USDM:
            core.spawn(self._modify(old, request), f"modify {old.cid}")
            return
        new_request = replace(
            old.request,
            client_order_id=request.new_client_order_id,
            price=request.price,
            quantity=request.quantity,
            ts_ms=request.ts_ms,
        )
        new = TrackedOrder(new_request, created_ms=core.clock.now_ms())
        core.book.add(new)
        await core.publish_current(new)
        old.cancel_reason = f"replaced by {new.cid}"
        old.cancel_sent = True
        await core.set_status(old, OrderStatus.PENDING_CANCEL, old.cancel_reason)
        core.spawn(self._cancel_replace(old, new), f"cancel-replace {old.cid}")

    def _refusal(self, old: TrackedOrder | None, request: ReplaceOrder) -> str | None:
        if old is None:
            return "unknown client order id"
        if not old.is_open or old.status is OrderStatus.PENDING_CANCEL or old.cancel_sent:
            return f"order is {old.status.value}"
        if old.request.order_type not in _REPLACEABLE:
            return f"{old.request.order_type.value} orders cannot be replaced"
        spot = self.core.market is MarketType.SPOT
        if spot and request.new_client_order_id in self.core.book:
            self.core.counts["duplicate_intents"] += 1
            return f"client order id {request.new_client_order_id} already used"
        if spot and old.request.is_entry and self.gate.blocked_reason() is not None:
            return self.gate.blocked_reason()
        return None

    async def _cancel_replace(self, old: TrackedOrder, new: TrackedOrder) -> None:
        core = self.core
        entry = new.request.is_entry
        new.send_attempts += 1
        new.sent_ms = core.clock.now_ms()
        core.counts["replaces_sent"] += 1
        if entry:
            self.gate.entry_sending()
        try:
            result = await core.venue.replace(old.cid, new.request)
        except StatusUnknownError as error:
            await self.placement.mark_unknown(new, str(error))
            await self.settle(old, f"cancel-replace outcome unknown: {error}")
            return
        except (VenueError, UnsupportedOrder) as error:
            # Refused, or never sent (transient): no new order; the old one may be anywhere.
            message = error.venue_message if isinstance(error, VenueError) else str(error)
            await core.set_status(new, OrderStatus.REJECTED, message)
            await self.settle(old, f"cancel-replace refused: {message}")
            return
        finally:
            if entry:
                await self.gate.entry_done()
        if result.canceled is not None:
            await core.apply(old, result.canceled, source="cancel-replace")
        else:
            await self.settle(old, f"cancel refused: {result.cancel_error}")
        if result.new_order is not None:
            await core.apply(new, result.new_order, result.new_fills, source="cancel-replace")
        else:
            reason = result.new_order_error or "new order not attempted"
            await core.set_status(new, OrderStatus.REJECTED, reason)

    async def _modify(self, order: TrackedOrder, request: ReplaceOrder) -> None:
        core = self.core
        amended = replace(order.request, price=request.price, quantity=request.quantity)
        core.counts["modifies_sent"] += 1
        try:
            result = await core.venue.replace(order.cid, amended)
        except StatusUnknownError as error:
            log.warning("order_modify_unknown", client_order_id=order.cid, error=str(error))
            await self.requery(order)
            return
        except (RejectedError, VenueError, UnsupportedOrder) as error:
            message = error.venue_message if isinstance(error, VenueError) else str(error)
            core.counts["modifies_refused"] += 1
            log.warning("order_modify_refused", client_order_id=order.cid, error=message)
            await core.publish_current(order, f"modify refused: {message}")
            return
        if result.new_order is not None:
            await core.apply(order, result.new_order, source="modify")

    async def requery(self, order: TrackedOrder) -> None:
        try:
            report = await self.core.venue.query(order.symbol, order.cid)
        except VenueError as error:
            log.warning("order_query_failed", client_order_id=order.cid, error=str(error))
            return
        await self.core.apply(order, report, source="query")
