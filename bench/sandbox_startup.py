"""Sandbox start-up overhead: `python -c pass` under run_sandboxed versus plain, medians from the same run."""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessor.engine.toolchains.python.environment import SYSTEM_PYTHON, uv_binary  # noqa: E402
from assessor.engine.sandbox import SandboxLimits, bubblewrap_available, run_sandboxed, size_capped_dir  # noqa: E402


def median_ms(run, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    options = parser.parse_args()
    if not bubblewrap_available():
        sys.exit("bubblewrap is not available here: nothing to measure")
    base = Path(tempfile.mkdtemp(prefix="assessor-bench-", dir="/tmp"))
    os.chmod(base, 0o711)
    venv = base / "venv"
    subprocess.run([uv_binary(), "venv", "--no-config", "--quiet", "--python", str(SYSTEM_PYTHON), str(venv)],
                   check=True)
    python = str(venv / "bin" / "python")
    limits = SandboxLimits()
    try:
        with size_capped_dir(base / "area", limits.workdir_mb):
            def plain():
                subprocess.run([python, "-c", "pass"], check=True)

            def sandboxed():
                result = run_sandboxed([python, "-c", "pass"], workdir=base / "area", venv=venv, limits=limits)
                assert result.exit_code == 0, result.output

            plain(), sandboxed()  # warm the page cache for both
            plain_ms = median_ms(plain, options.repeats)
            sandboxed_ms = median_ms(sandboxed, options.repeats)
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
    print(f"python -c pass, median of {options.repeats}")
    print(f"  plain:     {plain_ms:6.1f} ms")
    print(f"  sandboxed: {sandboxed_ms:6.1f} ms")
    print(f"  overhead:  {sandboxed_ms - plain_ms:6.1f} ms  (ratio {sandboxed_ms / plain_ms:.2f}x, target < 50 ms)")


if __name__ == "__main__":
    main()
