"""SQLite persistence: the schema, its constraints and indexes, and every query the service runs."""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from inventory_service.errors import Conflict, ServiceUnavailable
from inventory_service.models import Item, Reservation

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id          INTEGER PRIMARY KEY,
    sku         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL CHECK (length(trim(name)) BETWEEN 1 AND 120),
    on_hand     INTEGER NOT NULL CHECK (on_hand >= 0),
    reserved    INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    created_at  INTEGER NOT NULL,
    CHECK (reserved <= on_hand)
);

CREATE TABLE IF NOT EXISTS reservations (
    id               TEXT    PRIMARY KEY,
    item_id          INTEGER NOT NULL REFERENCES items (id) ON DELETE RESTRICT,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    status           TEXT    NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    client_id        TEXT    NOT NULL,
    idempotency_key  TEXT    NOT NULL,
    request_hash     TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK (expires_at > created_at),
    UNIQUE (client_id, idempotency_key)
);

-- The expiry sweep only ever looks at holds that are still open.
CREATE INDEX IF NOT EXISTS reservations_open_by_expiry
    ON reservations (expires_at) WHERE status = 'held';

-- Reservations of one item, e.g. when support investigates a stock discrepancy.
CREATE INDEX IF NOT EXISTS reservations_by_item_status
    ON reservations (item_id, status);
"""

_RESERVATION_SELECT = """
SELECT r.id, r.item_id, i.sku, r.quantity, r.status, r.request_hash, r.created_at, r.expires_at
FROM reservations AS r JOIN items AS i ON i.id = r.item_id
"""


_write_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()


def shared_write_lock(path: str) -> threading.Lock:
    """
    One lock per database file for all connections in this process.

    SQLite allows one writer at a time. Without this lock, threads waiting for it poll in SQLite's busy
    handler, which sleeps up to 100 ms between tries; queueing on a lock hands over the moment it is free.
    See docs/load-test-report.md for the before and after.
    """
    with _registry_lock:
        return _write_locks.setdefault(path, threading.Lock())


def _busy() -> ServiceUnavailable:
    return ServiceUnavailable("the database is busy; retry shortly", headers={"Retry-After": "1"})


def connect(path: str, busy_timeout: float = 2.0) -> sqlite3.Connection:
    """A connection in autocommit mode: every write goes through Repository.transaction()."""
    connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")  # an fsync per commit: a confirmed hold survives power loss
    connection.executescript(SCHEMA)
    return connection


class Repository:
    """
    All SQL lives here; callers get Item and Reservation values back, never rows.

    Methods that write expect to run inside `transaction()`; the service decides where a transaction starts
    and ends, because only it knows which writes belong together.
    """

    def __init__(
        self, connection: sqlite3.Connection, write_lock: "threading.Lock | None" = None, lock_timeout: float = 2.0
    ):
        self.connection = connection
        self.write_lock = write_lock or threading.Lock()
        self.lock_timeout = lock_timeout

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """
        One write transaction, taken with BEGIN IMMEDIATE so concurrent writers queue instead of deadlocking.

        Both waits are bounded: for the in-process lock (`lock_timeout`) and for SQLite's own lock (the busy
        timeout). A caller that cannot start within them gets a 503 with Retry-After rather than a hung
        request. Any exception rolls the whole transaction back.
        """
        if not self.write_lock.acquire(timeout=self.lock_timeout):
            raise _busy()
        try:
            self._begin()
            try:
                yield
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")
        finally:
            self.write_lock.release()

    def _begin(self) -> None:
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise _busy() from error

    # ---------------------------------------------------------------- items

    def insert_item(self, sku: str, name: str, on_hand: int, now: int) -> Item:
        # The UNIQUE constraint on sku decides duplicates; checking first would race with another insert.
        try:
            self.connection.execute(
                "INSERT INTO items (sku, name, on_hand, created_at) VALUES (?, ?, ?, ?)",
                (sku, name, on_hand, now),
            )
        except sqlite3.IntegrityError as error:
            raise Conflict(f"an item with SKU {sku} already exists") from error
        return self.find_item(sku)

    def find_item(self, sku: str) -> Item | None:
        row = self.connection.execute("SELECT * FROM items WHERE sku = ?", (sku,)).fetchone()
        return Item.from_row(row) if row else None

    def list_items(self, after: str, limit: int) -> list[Item]:
        """Keyset pagination on the unique SKU index: cost stays flat however deep the page."""
        rows = self.connection.execute(
            "SELECT * FROM items WHERE sku > ? ORDER BY sku LIMIT ?", (after, limit)
        ).fetchall()
        return [Item.from_row(row) for row in rows]

    def hold_stock(self, item_id: int, quantity: int) -> bool:
        """Reserve stock only if enough is free; the check and the write are one statement, so no race."""
        cursor = self.connection.execute(
            "UPDATE items SET reserved = reserved + ? WHERE id = ? AND on_hand - reserved >= ?",
            (quantity, item_id, quantity),
        )
        return cursor.rowcount == 1

    def release_stock(self, item_id: int, quantity: int) -> None:
        self.connection.execute("UPDATE items SET reserved = reserved - ? WHERE id = ?", (quantity, item_id))

    def consume_stock(self, item_id: int, quantity: int) -> None:
        self.connection.execute(
            "UPDATE items SET reserved = reserved - ?, on_hand = on_hand - ? WHERE id = ?",
            (quantity, quantity, item_id),
        )

    # ---------------------------------------------------------------- reservations

    def insert_reservation(self, reservation: Reservation, client_id: str, idempotency_key: str) -> None:
        self.connection.execute(
            "INSERT INTO reservations (id, item_id, quantity, status, client_id, idempotency_key, request_hash,"
            " created_at, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                reservation.id, reservation.item_id, reservation.quantity, reservation.status, client_id,
                idempotency_key, reservation.request_hash, reservation.created_at, reservation.expires_at,
                reservation.created_at,
            ),
        )

    def find_reservation(self, reservation_id: str) -> Reservation | None:
        row = self.connection.execute(_RESERVATION_SELECT + "WHERE r.id = ?", (reservation_id,)).fetchone()
        return Reservation.from_row(row) if row else None

    def find_reservation_by_key(self, client_id: str, idempotency_key: str) -> Reservation | None:
        row = self.connection.execute(
            _RESERVATION_SELECT + "WHERE r.client_id = ? AND r.idempotency_key = ?", (client_id, idempotency_key)
        ).fetchone()
        return Reservation.from_row(row) if row else None

    def set_status(self, reservation_id: str, status: str, now: int) -> None:
        self.connection.execute(
            "UPDATE reservations SET status = ?, updated_at = ? WHERE id = ?", (status, now, reservation_id)
        )

    def stock_drift(self) -> list[tuple[str, int, int]]:
        """Items whose `reserved` counter differs from the sum of their open holds: (sku, reserved, held)."""
        rows = self.connection.execute(
            """
            SELECT i.sku, i.reserved, COALESCE(SUM(r.quantity), 0) AS held
            FROM items AS i LEFT JOIN reservations AS r ON r.item_id = i.id AND r.status = 'held'
            GROUP BY i.id HAVING i.reserved != held ORDER BY i.sku
            """
        ).fetchall()
        return [(row["sku"], row["reserved"], row["held"]) for row in rows]

    def expire_due(self, now: int) -> int:
        """Release every open hold whose time is up, set-based, inside the caller's transaction."""
        self.connection.execute(
            """
            UPDATE items SET reserved = reserved - (
                SELECT SUM(r.quantity) FROM reservations AS r
                WHERE r.item_id = items.id AND r.status = 'held' AND r.expires_at <= :now
            )
            WHERE id IN (SELECT item_id FROM reservations WHERE status = 'held' AND expires_at <= :now)
            """,
            {"now": now},
        )
        cursor = self.connection.execute(
            "UPDATE reservations SET status = 'expired', updated_at = :now"
            " WHERE status = 'held' AND expires_at <= :now",
            {"now": now},
        )
        return cursor.rowcount
