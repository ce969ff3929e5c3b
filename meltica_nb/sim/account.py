"""The simulator's spot account: free and locked balance per asset, funds reserved per order.

An order reserves what it may spend when it is accepted (a buy: price x quantity of the quote
asset, or the quote amount of a ``quoteOrderQty`` order; a sell: the base quantity), each fill
spends from that reservation and credits the other asset, and whatever is left returns to
``free`` when the order closes. An order the free balance cannot cover is refused with Binance's
``-2010 Account has insufficient balance for requested action.``
"""

from __future__ import annotations

from decimal import Decimal

from meltica_nb.sim.filters import reject

__all__ = ["Account"]

_ZERO = Decimal(0)


class Account:
    """Balances of one account and the reservation of every open order."""

    def __init__(self, balances: dict[str, Decimal]) -> None:
        self.free: dict[str, Decimal] = dict(balances)
        self.locked: dict[str, Decimal] = dict.fromkeys(balances, _ZERO)
        self._reserved: dict[int, tuple[str, Decimal]] = {}
        self._changed: dict[str, None] = {}

    def require(self, asset: str, amount: Decimal) -> None:
        """-2010 when ``amount`` of ``asset`` is not free."""
        if self.free.get(asset, _ZERO) < amount:
            raise reject(-2010, "Account has insufficient balance for requested action.")

    def reserve(self, order_id: int, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked for ``order_id``."""
        self.require(asset, amount)
        self._move(asset, -amount, amount)
        self._reserved[order_id] = (asset, amount)

    def spend(self, order_id: int, reserved: Decimal, used: Decimal) -> None:
        """A fill of ``order_id`` pays ``used`` out of the ``reserved`` part of its reservation
        that it settles (a buy filled below its limit price gets the difference back)."""
        asset, left = self._reserved[order_id]
        self._reserved[order_id] = (asset, left - reserved)
        self._move(asset, reserved - used, -reserved)

    def credit(self, asset: str, amount: Decimal) -> None:
        """A fill brings ``amount`` of ``asset`` into free."""
        self._move(asset, amount, _ZERO)

    def release(self, order_id: int) -> None:
        """The order closed: what it did not spend is free again."""
        reserved = self._reserved.pop(order_id, None)
        if reserved is not None and reserved[1]:
            asset, left = reserved
            self._move(asset, left, -left)

    def _move(self, asset: str, to_free: Decimal, to_locked: Decimal) -> None:
        self.free[asset] = self.free.get(asset, _ZERO) + to_free
        self.locked[asset] = self.locked.get(asset, _ZERO) + to_locked
        self._changed[asset] = None

    def take_changed(self) -> list[str]:
        """The assets whose balance changed since the last call."""
        changed, self._changed = list(self._changed), {}
        return changed

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of ``asset``."""
        return self.free.get(asset, _ZERO), self.locked.get(asset, _ZERO)

    def assets(self) -> list[str]:
        return sorted(self.free)
