"""`ensemble`: several detector strategies vote, and only their combined verdict trades.

The detectors are ordinary registered strategies, each with its own parameters and its own
`StrategyContext` (named `<instance>.<detector>`); the ensemble runs them inside itself and
turns what they signal into votes, so the runner, worker, snapshots and order routing treat it
like any other strategy.

Entries. A detector's entry signal is a vote for its side that counts on the closed bar it came
on and the `window_bars - 1` bars after it (a signal between two closes belongs to the bar then
forming). After every event the valid votes are counted:
- majority: strictly more than half of all detectors on one side;
- weighted: the side's share — sum of weight x confidence of its voters over the sum of all
  detectors' weights — is at least `threshold` and above the other side's share;
- unanimous: every detector on the same side.
When a side wins and the ensemble is flat (no position, no combined entry awaiting its fill),
one entry is emitted; its confidence is the mean confidence of its voters (weighted: the share)
and its reason names the verdict and each voter's own reason. The winners' votes are consumed
and the other side's dropped.

Keeping the detectors' beliefs true. Every order update of the ensemble is also booked into
every detector's context and handed to it, so each sees the ensemble's fills (an entry order
ending unfilled, the position closed by an exit) exactly as a lone strategy sees its own. A
detector whose entry did not become the ensemble's is told so by an `OrderDenied` carrying its
own signal id (reason `ensemble: ...`), so a `Stance` goes back to flat: when its vote expires
unused, is superseded by a newer one, is dropped because the other side entered, is ignored
because the ensemble is already positioned or entering, or came from history or before the
detector's own warm-up (as the runner would deny it); and when the risk gate denies the
combined entry, each of its voters is denied too.

Exits. exits = "any": the first exit of a detector from the side the ensemble holds closes it
(an exit arriving while the combined entry still awaits its fill is applied once it fills).
exits = "vote": an exit is a vote counted like entries (unanimous: every detector) that stays
valid until the position is closed — a detector that has left does not leave twice, so exit
votes have no window. Either way one exit is outstanding at a time: another is sent only after
the position is closed, the exit is denied, or an exit-side order ends with the position open.

A detector that raises disables the whole ensemble (the runner's isolation applies to it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from app.domain import (
    BookTicker,
    Kline,
    MarkPrice,
    OrderDenied,
    OrderUpdated,
    Side,
    Signal,
    SignalAction,
)
from strategies.base import Strategy, Timer
from strategies.context import StrategyContext
from strategies.ensemble_params import DetectorSpec, EnsembleParams
from strategies.stance import FLAT, LONG, SHORT

__all__ = ["DetectorSpec", "Ensemble", "EnsembleParams"]

_TIMER = "ensemble.detectors"
_WARMUP_DENIAL = "warm_up: detector signal from history or before its warm-up"
# A detector answering each denial with another entry is cut off after this many rounds.
_MAX_DENIAL_DEPTH = 8
_ZERO = Decimal(0)


@dataclass(slots=True)
class _Vote:
    side: int
    signal_id: str
    confidence: float
    reason: str
    bar: int  # the closed-bar number it was cast on

    def as_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "signal_id": self.signal_id,
            "confidence": self.confidence,
            "reason": self.reason,
            "bar": self.bar,
        }

    @classmethod
    def from_json(cls, state: Mapping[str, Any]) -> _Vote:
        return cls(
            int(state["side"]),
            str(state["signal_id"]),
            float(state["confidence"]),
            str(state["reason"]),
            int(state["bar"]),
        )


@dataclass(slots=True, eq=False)
class _Detector:
    name: str
    weight: float
    strategy: Strategy[Any]
    ctx: StrategyContext


def _side_of(position: Decimal) -> int:
    return LONG if position > 0 else SHORT if position < 0 else FLAT


class Ensemble(Strategy[EnsembleParams]):
    name = "ensemble"
    params_model = EnsembleParams
    summary = "combines detector strategies' signals by majority, weighted or unanimous vote"
    market = "whatever its detectors are meant for; agreement filters out lone false signals"

    def __init__(self, params: EnsembleParams, ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        from strategies.registry import load_registry

        registry = load_registry()
        self.detectors: list[_Detector] = []
        for index, spec in enumerate(params.detectors):
            cls = registry.get(spec.strategy)
            own = StrategyContext(
                strategy=f"{ctx.strategy}.{spec.label}", symbol=ctx.symbol, interval=ctx.interval
            )
            try:
                strategy = cls(cls.params_model.model_validate(spec.params), own)
            except ValueError as exc:
                raise ValueError(f"detectors.{index} ({spec.strategy}): {exc}") from exc
            self.detectors.append(_Detector(spec.label, spec.weight, strategy, own))
        self._by_name = {detector.name: detector for detector in self.detectors}
        self._total_weight = sum(detector.weight for detector in self.detectors)
        self.warmup_bars = max(detector.strategy.warmup_bars for detector in self.detectors)
        self.intrabar = any(detector.strategy.intrabar for detector in self.detectors)
        self.book_tickers = any(detector.strategy.book_tickers for detector in self.detectors)
        self.mark_prices = any(detector.strategy.mark_prices for detector in self.detectors)
        self._bars = 0  # closed bars digested, history included (the runner's bars_seen)
        self._current_bar = 1  # the bar a signal of the event being handled belongs to
        self._votes: dict[str, _Vote] = {}
        self._exit_votes: dict[str, _Vote] = {}
        self._entry_id = ""  # the combined entry awaiting its fill
        self._entry_side = FLAT
        self._entry_voters: dict[str, str] = {}  # voter -> its signal id, until it fills
        self._exit_due = ""  # an "any" exit that came before the entry filled
        self._exit_id = ""  # the outstanding exit
        self._seen_position = _ZERO

    # -- events ---------------------------------------------------------------------------
    def on_bar(self, bar: Kline) -> None:
        self._bars += 1
        self._begin(self._bars)
        for detector in self.detectors:
            self._call(detector, detector.strategy.on_bar, bar)
        self._finish()

    def on_intrabar(self, bar: Kline) -> None:
        self._forward(bar, lambda s: s.on_intrabar if s.intrabar else None)

    def on_book(self, book: BookTicker) -> None:
        self._forward(book, lambda s: s.on_book if s.book_tickers else None)

    def on_mark(self, mark: MarkPrice) -> None:
        self._forward(mark, lambda s: s.on_mark if s.mark_prices else None)

    def on_timer(self, timer: Timer) -> None:
        self._begin(self._bars + 1)  # fires the detectors' due timers
        self._finish()

    def on_order(self, event: OrderUpdated | OrderDenied) -> None:
        self._begin(self._bars + 1)
        if isinstance(event, OrderDenied):
            self._on_denied(event)
        else:
            for detector in self.detectors:
                own = replace(event, strategy=detector.ctx.strategy)
                detector.ctx.book_fill(own)
                self._call(detector, detector.strategy.on_order, own)
            self._on_update(event)
        self._finish()

    def _forward(self, event: Any, handler_of: Callable[[Strategy[Any]], Any]) -> None:
        self._begin(self._bars + 1)
        for detector in self.detectors:
            handler = handler_of(detector.strategy)
            if handler is not None:
                self._call(detector, handler, event)
        self._finish()

    def _begin(self, current_bar: int) -> None:
        self._current_bar = current_bar
        window = self.params.window_bars
        for name, vote in list(self._votes.items()):
            if current_bar - vote.bar >= window:
                del self._votes[name]
                self._deny(self._by_name[name], vote.signal_id, "ensemble: vote expired unused")
        until_ms = self.ctx.now_ms
        for detector in self.detectors:
            own = detector.ctx
            if not own.has_timers:
                continue
            for due_ms, timer_name in own.due_timers(until_ms):
                self._sync(detector)
                own.now_ms = due_ms
                detector.strategy.on_timer(Timer(timer_name, self.ctx.symbol, due_ms))
                self._collect(detector, 0)

    def _finish(self) -> None:
        ctx = self.ctx
        if ctx.position == 0 and not self._entry_id:
            if self._votes:
                self._try_entry()
        elif self.params.exits == "vote" and self._exit_votes and not self._exit_id:
            side = _side_of(ctx.position)
            if side != FLAT:
                self._try_exit(side)
        due = [d.ctx.next_timer_ms for d in self.detectors if d.ctx.has_timers]
        if due:
            ctx.set_timer(_TIMER, min(t for t in due if t is not None))
        else:
            ctx.cancel_timer(_TIMER)

    # -- detectors' signals -----------------------------------------------------------------
    def _sync(self, detector: _Detector) -> None:
        detector.ctx.now_ms = self.ctx.now_ms
        detector.ctx.warming = self.ctx.warming

    def _call(self, detector: _Detector, handler: Callable[[Any], None], event: Any) -> None:
        self._sync(detector)
        handler(event)
        self._collect(detector, 0)

    def _collect(self, detector: _Detector, depth: int) -> None:
        pending = detector.ctx.pending
        detector.ctx.pending = []
        for signal in pending:
            if signal.is_exit:
                self._on_exit(detector, signal)
            else:
                self._on_entry(detector, signal, depth)

    def _deny(self, detector: _Detector, signal_id: str, reason: str, depth: int = 0) -> None:
        if depth >= _MAX_DENIAL_DEPTH:
            detector.ctx.pending = []
            return
        self._sync(detector)
        detector.strategy.on_order(
            OrderDenied(
                strategy=detector.ctx.strategy,
                symbol=self.ctx.symbol,
                reason=reason,
                ts_ms=self.ctx.now_ms,
                signal_id=signal_id,
            )
        )
        self._collect(detector, depth + 1)

    def _on_entry(self, detector: _Detector, signal: Signal, depth: int) -> None:
        if self.ctx.warming or self._bars < detector.strategy.warmup_bars:
            self._deny(detector, signal.signal_id, _WARMUP_DENIAL, depth)
            return
        if self._entry_id or self.ctx.position != 0:
            self._deny(detector, signal.signal_id, "ensemble: already positioned", depth)
            return
        side = LONG if signal.action is SignalAction.ENTER_LONG else SHORT
        vote = _Vote(side, signal.signal_id, signal.confidence, signal.reason, self._current_bar)
        replaced = self._votes.get(detector.name)
        self._votes[detector.name] = vote
        if replaced is not None:
            self._deny(detector, replaced.signal_id, "ensemble: superseded by a newer vote", depth)

    def _on_exit(self, detector: _Detector, signal: Signal) -> None:
        side = LONG if signal.action is SignalAction.EXIT_LONG else SHORT
        vote = self._votes.get(detector.name)
        if vote is not None and vote.side == side:
            del self._votes[detector.name]  # it leaves an entry the ensemble never took
            return
        self._entry_voters.pop(detector.name, None)
        positioned = _side_of(self.ctx.position) == side
        if not positioned and not (self._entry_id and self._entry_side == side):
            return
        reason = f"{detector.name}: {signal.reason}"
        if self.params.exits == "vote":
            self._exit_votes.setdefault(
                detector.name,
                _Vote(side, signal.signal_id, signal.confidence, reason, self._current_bar),
            )
        elif positioned:
            self._exit(side, reason)
        elif not self._exit_due:
            self._exit_due = reason

    # -- verdicts ---------------------------------------------------------------------------
    def _voters(self, votes: Mapping[str, _Vote], side: int) -> list[tuple[_Detector, _Vote]]:
        return [
            (detector, vote)
            for detector in self.detectors
            if (vote := votes.get(detector.name)) is not None and vote.side == side
        ]

    def _share(self, voters: list[tuple[_Detector, _Vote]]) -> float:
        weight = sum(detector.weight * vote.confidence for detector, vote in voters)
        return min(1.0, weight / self._total_weight)

    def _verdict(self, voters: list[tuple[_Detector, _Vote]], other_share: float) -> str:
        """The verdict's label when these voters carry it, else ""."""
        count = len(voters)
        total = len(self.detectors)
        method = self.params.vote
        if method == "majority":
            return f"majority {count}/{total}" if 2 * count > total else ""
        if method == "unanimous":
            return f"unanimous {count}/{total}" if count == total else ""
        share = self._share(voters)
        threshold = self.params.threshold
        if share >= threshold and share > other_share:
            return f"weighted {share:.4g} >= {threshold:g}"
        return ""

    def _try_entry(self) -> None:
        sides = {side: self._voters(self._votes, side) for side in (LONG, SHORT)}
        for side, voters in sides.items():
            if not voters:
                continue
            label = self._verdict(voters, self._share(sides[-side]))
            if label:
                self._enter(side, label, voters)
                return

    def _enter(self, side: int, label: str, voters: list[tuple[_Detector, _Vote]]) -> None:
        if self.params.vote == "weighted":
            confidence = self._share(voters)
        else:
            confidence = sum(vote.confidence for _, vote in voters) / len(voters)
        reason = f"{label}: " + "; ".join(f"{d.name}: {vote.reason}" for d, vote in voters)
        tags = ("ensemble", *(detector.name for detector, _ in voters))
        ctx = self.ctx
        enter = ctx.enter_long if side == LONG else ctx.enter_short
        signal = enter(reason, confidence=min(1.0, confidence), tags=tags)
        self._entry_id = signal.signal_id
        self._entry_side = side
        self._entry_voters = {detector.name: vote.signal_id for detector, vote in voters}
        for detector, _ in voters:
            del self._votes[detector.name]
        for name, vote in list(self._votes.items()):
            del self._votes[name]
            self._deny(self._by_name[name], vote.signal_id, "ensemble: entered the other side")

    def _try_exit(self, side: int) -> None:
        voters = self._voters(self._exit_votes, side)
        label = self._verdict(voters, 0.0)
        if label:
            self._exit(side, f"{label} exit: " + "; ".join(vote.reason for _, vote in voters))

    def _exit(self, side: int, reason: str) -> None:
        if self._exit_id:
            return
        ctx = self.ctx
        leave = ctx.exit_long if side == LONG else ctx.exit_short
        self._exit_id = leave(reason, tags=("ensemble",)).signal_id

    # -- the ensemble's own orders ----------------------------------------------------------
    def _on_denied(self, event: OrderDenied) -> None:
        if not event.signal_id:
            return
        if event.signal_id == self._exit_id:
            self._exit_id = ""
        elif event.signal_id == self._entry_id:
            self._entry_id = ""
            self._entry_side = FLAT
            self._exit_due = ""
            self._exit_votes.clear()
            voters, self._entry_voters = self._entry_voters, {}
            for name, signal_id in voters.items():
                reason = f"ensemble: entry denied: {event.reason}"
                self._deny(self._by_name[name], signal_id, reason)

    def _on_update(self, event: OrderUpdated) -> None:
        position = self.ctx.position
        before = self._seen_position
        self._seen_position = position
        held = _side_of(position)
        if self._entry_id:
            entry_order = Side.BUY if self._entry_side == LONG else Side.SELL
            if held == self._entry_side:
                self._entry_id = ""
                self._entry_voters = {}
                due, self._exit_due = self._exit_due, ""
                if due:
                    self._exit(held, due)
            elif event.side is entry_order and event.status.is_final and position == 0:
                # The entry order ended unfilled; the detectors saw that event themselves.
                self._entry_id = ""
                self._entry_side = FLAT
                self._exit_due = ""
                self._exit_votes.clear()
                self._entry_voters = {}
        elif self._exit_id and held != FLAT and event.status.is_final:
            exit_order = Side.SELL if held == LONG else Side.BUY
            if event.side is exit_order:
                self._exit_id = ""  # the exit ended with the position still open: may retry
        if before != 0 and held != _side_of(before):
            # Closed (or flipped): the detectors saw the closing fill in their own contexts,
            # as a lone strategy sees trade management close its position.
            self._exit_id = ""
            self._exit_votes.clear()

    # -- persistence ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "bars": self._bars,
            "detectors": {
                detector.name: {
                    "strategy": detector.strategy.name,
                    "state_version": detector.strategy.state_version,
                    "context": detector.ctx.snapshot(),
                    "state": detector.strategy.snapshot(),
                }
                for detector in self.detectors
            },
            "votes": {name: vote.as_json() for name, vote in self._votes.items()},
            "exit_votes": {name: vote.as_json() for name, vote in self._exit_votes.items()},
            "entry_id": self._entry_id,
            "entry_side": self._entry_side,
            "voters": dict(self._entry_voters),
            "exit_due": self._exit_due,
            "exit_id": self._exit_id,
            "seen_position": str(self._seen_position),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        saved = state["detectors"]
        if set(saved) != set(self._by_name):
            raise ValueError("saved detectors differ from the configured ones")
        for detector in self.detectors:
            own = saved[detector.name]
            strategy = detector.strategy
            if (own["strategy"], own["state_version"]) != (strategy.name, strategy.state_version):
                raise ValueError(f"saved state of detector {detector.name!r} does not fit")
            detector.ctx.restore(own["context"])
            strategy.restore(own["state"])
        self._bars = int(state["bars"])
        self._votes = {str(k): _Vote.from_json(v) for k, v in state["votes"].items()}
        self._exit_votes = {str(k): _Vote.from_json(v) for k, v in state["exit_votes"].items()}
        self._entry_id = str(state["entry_id"])
        self._entry_side = int(state["entry_side"])
        self._entry_voters = {str(k): str(v) for k, v in state["voters"].items()}
        self._exit_due = str(state["exit_due"])
        self._exit_id = str(state["exit_id"])
        self._seen_position = Decimal(state["seen_position"])
