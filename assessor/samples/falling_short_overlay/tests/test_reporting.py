from inventory_service.reporting import stock_report

NOW = 1_700_000_000


def test_an_item_with_nothing_left_is_out():
    items = [{"sku": "WIDGET-1", "on_hand": 2}]
    reservations = [{"sku": "WIDGET-1", "status": "held", "quantity": 2, "expires_at": NOW + 60}]
    assert stock_report(items, reservations, NOW) == [{"sku": "WIDGET-1", "available": 0, "level": "out"}]


def test_an_item_at_the_threshold_is_reported_low():
    items = [{"sku": "GADGET-7", "on_hand": 5}]
    assert stock_report(items, [], NOW, threshold=5) == [{"sku": "GADGET-7", "available": 5, "level": "low"}]
