"""Starting each server a capstone's tests may declare inside the sandbox, warm (templates and the service's tools
prepared): each server's share of a sandboxed run, against the same sandboxed run with no server, medians from one
run.

Run: .venv/bin/python bench/services_startup.py [--repeats 7] [--only mysql rabbitmq]
Target (issues 10 and 21): each under the rubric's start-up limit (30 s by default); PostgreSQL and Redis under 1 s.
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

from assessor.engine.sandbox import SYSTEM_PYTHON, SandboxLimits, bubblewrap_available, run_sandboxed, size_capped_dir  # noqa: E402
from assessor.engine.services import ServiceNeed, ServicePlan  # noqa: E402
from assessor.engine.services.runtime import prepare_services, read_status  # noqa: E402
from assessor.engine.services.servers import STARTABLE  # noqa: E402

# Settings the way a declaration gives them, for the servers that take users and databases.
DECLARED = {"postgresql": {"users": {"app": "secret"}, "databases": {"app": "app"}},
            "mysql": {"users": {"app": "secret"}, "databases": {"app": "app"}, "password": "rootpw"},
            "rabbitmq": {"users": {"app": "secret"}, "databases": {"orders": "app"}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", nargs="*", help="server kinds to measure (default: every one)")
    options = parser.parse_args()
    if not bubblewrap_available():
        sys.exit("bubblewrap is not available here: nothing to measure")
    kinds = [kind for kind in STARTABLE if not options.only or kind.name in options.only]
    base = Path(tempfile.mkdtemp(prefix="assessor-bench-", dir="/tmp"))
    os.chmod(base, 0o711)
    cache = base / "cache"
    cache.mkdir(mode=0o700)
    limits = SandboxLimits()
    command = [str(SYSTEM_PYTHON), "-I", "-S", "-c", "pass"]
    results: dict[str, float] = {}
    reported: dict[str, list[float]] = {}
    prepared: dict[str, float] = {}
    try:
        for label, kind in [("no server", None), *((kind.label, kind) for kind in kinds)]:
            area = base / f"area-{len(results)}"
            with size_capped_dir(area, limits.workdir_mb):
                run = None
                if kind is not None:
                    plan = ServicePlan(needs=[ServiceNeed(kind, **DECLARED.get(kind.name, {}))])
                    started = time.perf_counter()
                    run, problems = prepare_services(plan, control=base / f"control-{kind.name}", area=area,
                                                     cache_dir=cache, shared_dir=base / "shared")
                    prepared[label] = time.perf_counter() - started
                    assert run is not None, problems
                out = area / "out"
                timings = []
                for attempt in range(options.repeats + 1):
                    out.mkdir(exist_ok=True)
                    argv, extra, run_limits = command, {}, limits
                    if run is not None:
                        run.reset()
                        argv = run.command(command, out)
                        extra = {"hosts": run.hosts, "tmpfs_dirs": run.tmpfs_dirs,
                                 "readonly_binds": (run.control, *run.readonly)}
                        run_limits = run.limits(limits)
                    began = time.perf_counter()
                    result = run_sandboxed(argv, workdir=area, venv=None, limits=run_limits, **extra)
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
    print(f"  no server (baseline): {baseline * 1000:8.1f} ms")
    for kind in kinds:
        label = kind.label
        extra = results[label] - baseline
        target = 1.0 if kind.name in ("postgresql", "redis") else 30.0
        print(f"  {kind.name:<10} run {results[label] * 1000:8.1f} ms = {results[label] / baseline:6.2f}x baseline; "
              f"start-up {extra * 1000:7.1f} ms (launcher: {statistics.median(reported[label]) * 1000:6.0f} ms to "
              f"ready); once per worker: {prepared[label]:.2f} s; target < {target:.0f} s: "
              f"{'met' if extra < target else 'NOT met'}")


if __name__ == "__main__":
    main()
