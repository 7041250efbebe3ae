"""Low-stock report for the back office."""


def stock_report(items, reservations, now, threshold=5, include_expired=False, sort=True):
    """Items at or below `threshold` available units, with a level: out, critical or low."""
    report = []
    for item in items:
        held = 0
        expired = 0
        for reservation in reservations:
            if reservation["sku"] == item["sku"]:
                if reservation["status"] == "held":
                    if reservation["expires_at"] > now:
                        held += reservation["quantity"]
                    elif include_expired:
                        expired += reservation["quantity"]
                elif reservation["status"] == "expired" and include_expired:
                    expired += reservation["quantity"]
                elif reservation["status"] == "confirmed":
                    continue
        available = item["on_hand"] - held
        if available < threshold:
            if available <= 0:
                level = "out"
            elif available < threshold / 2 or (held > 0 and held >= available):
                level = "critical"
            else:
                level = "low"
            entry = {"sku": item["sku"], "available": available, "level": level}
            if include_expired and expired:
                entry["expired"] = expired
            report.append(entry)
    if sort:
        report.sort(key=lambda entry: (entry["available"], entry["sku"]))
    return report
