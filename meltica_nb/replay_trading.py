"""Trading strategies in a replay: orders that fill against the replayed market, in replay time.

A :class:`ReplayStrategy` is a consumer that trades: ``make(orders)`` returns its handler, where
``orders`` (an :class:`OrderEntry`) sends orders through the engine's Control Bus under the
strategy's name, exactly as a live consumer would. The replay gives the engine a
:class:`~meltica_nb.paper_trader.PaperTrader` on the replayed venue (``trading_venue``, with
``order_latency_ms``), so an order reaches the simulated matcher ``latency`` later in recording
time, fills against the replayed book and trades, and its ExecReports come back to the
strategy as critical events, in order, stamped with recording time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .control_bus import ControlAck, ControlBus

__all__ = ["OrderEntry", "ReplayStrategy"]

#: What a strategy receives besides its market data: its reports and command acks.
TRADING_EVENTS = ("exec_report", "control_ack", "control_result")


@dataclass(frozen=True)
class OrderEntry:
    """The Control Bus bound to one strategy's name: its way to send orders."""

    control: ControlBus
    consumer: str

    def submit(self, client_order_id: str, instrument: str, side: str, order_type: str,
               quantity: str, price: str | None = None, **extra) -> ControlAck:
        """SubmitOrder (amounts as decimal text); see :meth:`ControlBus.submit_order`."""
        return self.control.submit_order(self.consumer, client_order_id, instrument, side,
                                         order_type, quantity, price, **extra)

    def cancel(self, client_order_id: str) -> ControlAck:
        """CancelOrder; the CANCELLED report follows after the latency."""
        return self.control.cancel_order(self.consumer, client_order_id)

    def query(self, client_order_id: str) -> ControlAck:
        """QueryOrder: the paper venue's state of the order."""
        return self.control.query_order(self.consumer, client_order_id)


@dataclass(frozen=True)
class ReplayStrategy:
    """A trading consumer of a replay.

    Parameters
    ----------
    make : ``make(orders) -> handler``; the handler is a batch handler (``handler(events)``)
        that also receives the strategy's ExecReports and acks.
    name : its name in the result and in its orders (default: ``make``'s name).
    events, instruments, venues : the market data it subscribes to (None: everything).
    """

    make: Callable[[OrderEntry], Callable]
    name: str | None = None
    events: Sequence[str] | None = None
    instruments: Sequence[str] | None = None
    venues: Sequence[str] | None = None

    def subscribed_events(self) -> list[str] | None:
        """Its market data plus its own reports (None stays "everything")."""
        return None if self.events is None else [*self.events, *TRADING_EVENTS]
