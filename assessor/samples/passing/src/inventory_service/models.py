"""The service's records as immutable values, with their JSON form."""

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone


def iso_utc(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Item:
    """
    A stocked product. Times are whole seconds since the epoch, in UTC.

    `available` is derived rather than stored, so it can never disagree with the two counters it comes from.
    """

    id: int
    sku: str
    name: str
    on_hand: int
    reserved: int
    created_at: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Item":
        return cls(row["id"], row["sku"], row["name"], row["on_hand"], row["reserved"], row["created_at"])

    def to_json(self) -> dict:
        return {
            "sku": self.sku,
            "name": self.name,
            "on_hand": self.on_hand,
            "reserved": self.reserved,
            "available": self.available,
            "created_at": iso_utc(self.created_at),
        }


@dataclass(frozen=True)
class Reservation:
    """
    A hold on some quantity of one item: held, then confirmed, cancelled or expired.

    `request_hash` fingerprints the request that created it, to detect a reused idempotency key.
    """

    id: str
    item_id: int
    sku: str
    quantity: int
    status: str
    request_hash: str
    created_at: int
    expires_at: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Reservation":
        return cls(
            row["id"], row["item_id"], row["sku"], row["quantity"], row["status"],
            row["request_hash"], row["created_at"], row["expires_at"],
        )

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "sku": self.sku,
            "quantity": self.quantity,
            "status": self.status,
            "created_at": iso_utc(self.created_at),
            "expires_at": iso_utc(self.expires_at),
        }
