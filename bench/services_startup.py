"""Starting PostgreSQL and Redis inside the sandbox, warm (template prepared): each server's share of a sandboxed
run, against the same sandboxed run with no server, medians from one run.

Run: .venv/bin/python bench/services_startup.py [--repeats 15]
Target (issue 10): each under 1 s warm.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessor.sandbox import SYSTEM_PYTHON, SandboxLimits, bubblewrap_available, run_sandboxed, size_capped_dir  # noqa: E402
from assessor.services import ServiceNeed, ServicePlan  # noqa: E402
from assessor.services.runtime import prepare_services, read_status  # noqa: E402
from assessor.services.servers import POSTGRESQL, REDIS  # noqa: E402



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    options = parser.parse_args()
    if not bubblewrap_available():
        sys.exit("bubblewrap is not available here: nothing to measure")
    base = Path(tempfile.mkdtemp(prefix="assessor-bench-", dir="/tmp"))
    os.chmod(base, 0o711)
    cache = base / "cache"
    cache.mkdir(mode=0o700)
    limits = SandboxLimits()
    command = [str(SYSTEM_PYTHON), "-I", "-S", "-c", "pass"]
    results: dict[str, float] = {}
    reported: dict[str, list[float]] = {}
    try:
        started = time.perf_counter()
        prepare_services(ServicePlan(needs=[ServiceNeed(POSTGRESQL)]), control=base / "prep-control",
                         area=base, cache_dir=cache, shared_dir=base / "shared")
        cold_template = time.perf_counter() - started
        plans = {"no server": None, "PostgreSQL": [POSTGRESQL], "Redis": [REDIS]}
        for label, kinds in plans.items():
            area = base / f"area-{len(results)}"
            with size_capped_dir(area, limits.workdir_mb):
                run = None
                if kinds:
                    plan = ServicePlan(needs=[ServiceNeed(kind, users={"app": "secret"}, databases={"app": "app"})
                                              for kind in kinds])
                    run, problems = prepare_services(plan, control=base / f"control-{label}", area=area,
                                                     cache_dir=cache, shared_dir=base / "shared")
                    assert run is not None, problems
                out = area / "out"
                timings = []
                for attempt in range(options.repeats + 1):
                    out.mkdir(exist_ok=True)
                    argv, extra = command, {}
                    if run is not None:
                        run.reset()
                        argv = run.command(command, out)
                        extra = {"hosts": run.hosts, "tmpfs_dirs": run.tmpfs_dirs, "readonly_binds": (run.control,)}
                    began = time.perf_counter()
                    result = run_sandboxed(argv, workdir=area, venv=None, limits=limits, **extra)
                    elapsed = time.perf_counter() - began
                    assert result.exit_code == 0, result.output
                    if run is not None:
                        statuses = read_status(out)
                        assert all(status["status"] == "started" for status in statuses), statuses
                        if attempt:
                            reported.setdefault(label, []).append(statuses[0]["seconds"])
                    if attempt:  # the first run warms the page cache
                        timings.append(elapsed)
                results[label] = statistics.median(timings)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    baseline = results["no server"]
    print(f"sandboxed run with the servers the tests need, median of {options.repeats} (warm)")
    print(f"  PostgreSQL template, once per worker (initdb in the sandbox): {cold_template:.2f} s")
    print(f"  no server (baseline):  {baseline * 1000:7.1f} ms")
    for label in ("PostgreSQL", "Redis"):
        extra = results[label] - baseline
        print(f"  {label:<11} run {results[label] * 1000:7.1f} ms = {results[label] / baseline:5.2f}x baseline; "
              f"start-up {extra * 1000:6.1f} ms (launcher says {statistics.median(reported[label]) * 1000:.0f} ms "
              f"to ready); target < 1000 ms: {'met' if extra < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
