"""The reservation rules: what may happen to stock and holds, independent of HTTP and SQL."""

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from inventory_service.errors import (
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidState,
    NotFound,
    ReservationExpired,
)
from inventory_service.models import Item, Reservation
from inventory_service.repository import Repository

DEFAULT_HOLD_SECONDS = 900
PAGE_START = ""


@dataclass(frozen=True)
class ReserveOutcome:
    reservation: Reservation
    replayed: bool


def request_fingerprint(payload: dict) -> str:
    """A stable hash of a request body, so a reused idempotency key with a different body is caught."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_reservation_id() -> str:
    return f"res_{secrets.token_hex(8)}"


class InventoryService:
    """
    Items and reservations, with the invariants that keep stock honest.

    Stock moves through three counters: `on_hand` (physically present), `reserved` (held for open
    reservations) and `available` (the difference). A reservation is created `held`, and ends `confirmed`
    (stock leaves on_hand), `cancelled` or `expired` (stock goes back to available). Every change of state
    happens inside one database transaction, so a crash never leaves a hold without its stock, or the reverse.
    """

    def __init__(self, repository: Repository, clock: Callable[[], float] = time.time):
        self.repository = repository
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock())

    # ---------------------------------------------------------------- items

    def create_item(self, sku: str, name: str, quantity: int) -> Item:
        with self.repository.transaction():
            return self.repository.insert_item(sku, name.strip(), quantity, self._now())

    def get_item(self, sku: str) -> Item:
        item = self.repository.find_item(sku)
        if item is None:
            raise NotFound(f"no item with SKU {sku}")
        return item

    def list_items(self, after: str | None, limit: int) -> tuple[list[Item], str | None]:
        """
        One page of items in SKU order, and the cursor for the next page (None on the last one).

        One extra row is fetched to learn whether another page exists without a COUNT query.
        """
        items = self.repository.list_items(after or PAGE_START, limit + 1)
        if len(items) > limit:
            return items[:limit], items[limit - 1].sku
        return items, None

    # ---------------------------------------------------------------- reservations

    def reserve(self, client_id: str, idempotency_key: str, payload: dict) -> ReserveOutcome:
        """
        Hold stock once per (client, idempotency key); a retry gets the original reservation back.

        The lookup of the key and the insert of the new reservation share one write transaction, and the
        database enforces UNIQUE (client_id, idempotency_key), so two racing retries cannot both hold stock.
        """
        fingerprint = request_fingerprint(payload)
        with self.repository.transaction():
            existing = self.repository.find_reservation_by_key(client_id, idempotency_key)
            if existing is not None:
                return ReserveOutcome(self._replay(existing, fingerprint), replayed=True)
            reservation = self._hold(payload, fingerprint)
            self.repository.insert_reservation(reservation, client_id, idempotency_key)
        return ReserveOutcome(reservation, replayed=False)

    def _replay(self, existing: Reservation, fingerprint: str) -> Reservation:
        # Same key, different body: almost always a client bug, so refuse loudly instead of guessing.
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was already used with a different request body")
        return existing

    def _hold(self, payload: dict, fingerprint: str) -> Reservation:
        # hold_stock checks and reserves in one conditional UPDATE; there is no read-then-write window.
        item = self.get_item(payload["sku"])
        quantity = payload["quantity"]
        if not self.repository.hold_stock(item.id, quantity):
            raise InsufficientStock(f"only {item.available} of {item.sku} available")
        now = self._now()
        hold_seconds = payload.get("hold_seconds", DEFAULT_HOLD_SECONDS)
        return Reservation(
            new_reservation_id(), item.id, item.sku, quantity, "held", fingerprint, now, now + hold_seconds
        )

    def get_reservation(self, reservation_id: str) -> Reservation:
        reservation = self.repository.find_reservation(reservation_id)
        if reservation is None:
            raise NotFound(f"no reservation {reservation_id}")
        return reservation

    def confirm(self, reservation_id: str) -> Reservation:
        """Turn a live hold into a sale: the stock leaves on_hand for good."""
        with self.repository.transaction():
            reservation = self._open_hold(reservation_id)
            self.repository.consume_stock(reservation.item_id, reservation.quantity)
            self.repository.set_status(reservation_id, "confirmed", self._now())
        return self.get_reservation(reservation_id)

    def cancel(self, reservation_id: str) -> Reservation:
        """Give the stock back. Cancelling twice is harmless: the second call changes nothing."""
        with self.repository.transaction():
            reservation = self.get_reservation(reservation_id)
            if reservation.status == "cancelled":
                return reservation
            reservation = self._open_hold(reservation_id)
            self.repository.release_stock(reservation.item_id, reservation.quantity)
            self.repository.set_status(reservation_id, "cancelled", self._now())
        return self.get_reservation(reservation_id)

    def _open_hold(self, reservation_id: str) -> Reservation:
        # A hold past its expiry is dead even if the sweep has not run yet: never sell expired stock.
        reservation = self.get_reservation(reservation_id)
        if reservation.status != "held":
            raise InvalidState(f"reservation {reservation_id} is {reservation.status}, not held")
        if reservation.expires_at <= self._now():
            raise ReservationExpired(f"reservation {reservation_id} expired; reserve again")
        return reservation

    def stock_drift(self) -> list[tuple[str, int, int]]:
        """Items whose reserved counter disagrees with their open holds; empty when the books balance."""
        return self.repository.stock_drift()

    def expire_due(self) -> int:
        """Release every hold past its expiry; run every minute by the scheduler. Returns how many expired."""
        with self.repository.transaction():
            return self.repository.expire_due(self._now())
