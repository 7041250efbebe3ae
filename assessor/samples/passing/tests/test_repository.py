"""The database protects its own integrity, uses its indexes, and fails safely when busy."""

import sqlite3

import pytest

from inventory_service.api import Api
from inventory_service.errors import Conflict, ServiceUnavailable
from inventory_service.models import Reservation
from inventory_service.repository import Repository, connect, shared_write_lock
from inventory_service.service import InventoryService

START = 1_700_000_000


def add_item(repository, sku="WIDGET-1", quantity=5):
    with repository.transaction():
        return repository.insert_item(sku, "Widget", quantity, START)


def plan(repository, sql, params=()):
    rows = repository.connection.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return " ".join(row["detail"] for row in rows)


def test_stock_can_never_go_negative(repository):
    item = add_item(repository)
    with pytest.raises(sqlite3.IntegrityError):
        repository.connection.execute("UPDATE items SET on_hand = -1 WHERE id = ?", (item.id,))


def test_more_cannot_be_reserved_than_is_on_hand(repository):
    item = add_item(repository, quantity=2)
    with pytest.raises(sqlite3.IntegrityError):
        repository.connection.execute("UPDATE items SET reserved = 3 WHERE id = ?", (item.id,))


def test_hold_stock_refuses_instead_of_overselling(repository):
    item = add_item(repository, quantity=2)
    assert repository.hold_stock(item.id, 2) is True
    assert repository.hold_stock(item.id, 1) is False
    assert repository.find_item("WIDGET-1").reserved == 2


def test_a_reservation_must_point_at_an_existing_item(repository):
    orphan = Reservation("res_00000000000000aa", 999, "GHOST-1", 1, "held", "hash", START, START + 60)
    with pytest.raises(sqlite3.IntegrityError):
        repository.insert_reservation(orphan, "shop-web", "key-00000001")


def test_an_idempotency_key_is_unique_per_client(repository):
    item = add_item(repository)
    first = Reservation("res_00000000000000aa", item.id, item.sku, 1, "held", "hash", START, START + 60)
    second = Reservation("res_00000000000000bb", item.id, item.sku, 1, "held", "hash", START, START + 60)
    repository.insert_reservation(first, "shop-web", "key-00000001")
    with pytest.raises(sqlite3.IntegrityError):
        repository.insert_reservation(second, "shop-web", "key-00000001")


def test_an_unknown_status_is_rejected(repository):
    item = add_item(repository)
    lost = Reservation("res_00000000000000aa", item.id, item.sku, 1, "lost", "hash", START, START + 60)
    with pytest.raises(sqlite3.IntegrityError):
        repository.insert_reservation(lost, "shop-web", "key-00000001")


def test_a_duplicate_sku_becomes_a_conflict(repository):
    add_item(repository)
    with pytest.raises(Conflict):
        add_item(repository)


def test_a_failed_transaction_leaves_no_partial_write(repository):
    item = add_item(repository)
    with pytest.raises(RuntimeError):
        with repository.transaction():
            repository.hold_stock(item.id, 3)
            raise RuntimeError("crash between the two writes")
    assert repository.find_item("WIDGET-1").reserved == 0


def test_the_expiry_sweep_uses_the_partial_index(repository):
    detail = plan(repository, "SELECT id FROM reservations WHERE status = 'held' AND expires_at <= ?", (START,))
    assert "reservations_open_by_expiry" in detail


def test_item_pages_use_the_unique_sku_index(repository):
    detail = plan(repository, "SELECT * FROM items WHERE sku > ? ORDER BY sku LIMIT ?", ("", 10))
    assert "sqlite_autoindex_items" in detail
    assert "TEMP B-TREE" not in detail


def test_connections_in_one_process_share_one_write_lock_per_database(tmp_path):
    first = shared_write_lock(str(tmp_path / "a.sqlite3"))
    assert shared_write_lock(str(tmp_path / "a.sqlite3")) is first
    assert shared_write_lock(str(tmp_path / "b.sqlite3")) is not first


def test_reserved_counts_agree_with_open_holds_after_every_transition(stocked, service, clock):
    stocked.reserve("WIDGET-1", 2, key="key-held-001")
    confirmed = stocked.reserve("WIDGET-1", 3, key="key-conf-001").body
    cancelled = stocked.reserve("GADGET-7", 1, key="key-canc-001").body
    stocked.post(f"/v1/reservations/{confirmed['id']}/confirm")
    stocked.post(f"/v1/reservations/{cancelled['id']}/cancel")
    assert service.stock_drift() == []
    clock.advance(901)
    service.expire_due()
    assert service.stock_drift() == []


def test_waiting_for_a_writer_in_the_same_process_is_bounded_too(database):
    lock = shared_write_lock(database)
    repository = Repository(connect(database), write_lock=lock, lock_timeout=0.05)
    with lock:
        with pytest.raises(ServiceUnavailable):
            with repository.transaction():
                pass  # pragma: no cover - the transaction never starts
    with repository.transaction():
        pass  # the lock was not leaked by the failed attempt


def test_a_busy_database_is_a_503_with_a_retry_hint(database, clock, make_client):
    blocker = connect(database)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        service = InventoryService(Repository(connect(database, busy_timeout=0.05)), clock=clock)
        response = make_client(Api(service)).post("/v1/items", {"sku": "WIDGET-1", "name": "Widget", "quantity": 1})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status == 503
    assert response.body["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"


def test_the_busy_error_is_raised_from_the_transaction(database):
    blocker = connect(database)
    blocker.execute("BEGIN IMMEDIATE")
    repository = Repository(connect(database, busy_timeout=0.05))
    try:
        with pytest.raises(ServiceUnavailable):
            with repository.transaction():
                pass  # pragma: no cover - the transaction never starts
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
