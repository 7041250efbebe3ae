"""In-process load test: worker threads, each a service instance with its own connection, on one database file."""

import argparse
import random
import statistics
from collections import Counter
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inventory_service.app import create_api  # noqa: E402
from inventory_service.messages import Request  # noqa: E402
from inventory_service.ratelimit import RateLimiter  # noqa: E402

SKUS = [f"LOAD-{number:04d}" for number in range(200)]


def unlimited_api(database: str):
    """The API without its rate limiter: the test measures the service and database, not the throttle."""
    return create_api(database, limiter=RateLimiter(capacity=10**9, rate=10**9))


def seed(database: str) -> None:
    api = unlimited_api(database)
    for sku in SKUS:
        body = f'{{"sku": "{sku}", "name": "Load item", "quantity": 1000000}}'.encode()
        api.handle(Request("POST", "/v1/items", body))


def one_request(api, rng: random.Random, worker: int, sequence: int) -> tuple[str, int]:
    """80% item reads, 20% reservations: roughly the checkout traffic the service expects."""
    sku = rng.choice(SKUS)
    if rng.random() < 0.8:
        return "read", api.handle(Request("GET", f"/v1/items/{sku}")).status
    body = f'{{"sku": "{sku}", "quantity": 1}}'.encode()
    headers = {"Idempotency-Key": f"load-{worker}-{sequence:08d}", "X-Client-Id": f"worker-{worker}"}
    return "reserve", api.handle(Request("POST", "/v1/reservations", body, headers)).status


def worker(database: str, index: int, deadline: float, results: list) -> None:
    api = unlimited_api(database)
    rng = random.Random(index)
    sequence = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        kind, status = one_request(api, rng, index, sequence)
        results.append((kind, time.perf_counter() - started, status))
        sequence += 1


def report(results: list, seconds: float) -> None:
    statuses = Counter(status for _, _, status in results)
    throughput = len(results) / seconds
    print(f"requests: {len(results)}  throughput: {throughput:.0f}/s  statuses: {dict(sorted(statuses.items()))}")
    for kind in ("read", "reserve"):
        latencies = sorted(latency for name, latency, _ in results if name == kind)
        cuts = statistics.quantiles(latencies, n=100)
        p50, p95, p99 = (cuts[index] * 1000 for index in (49, 94, 98))
        print(f"{kind:8} n={len(latencies)}  p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms"
              f"  max {latencies[-1] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database", help="keep the database here (default: a temporary file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        database = args.database or str(Path(directory) / "load.sqlite3")
        seed(database)
        results: list = []
        deadline = time.perf_counter() + args.seconds
        threads = [threading.Thread(target=worker, args=(database, i, deadline, results)) for i in range(args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report(results, args.seconds)


if __name__ == "__main__":
    main()
