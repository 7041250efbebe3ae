"""Cyclomatic complexity and maintainability of the learner's code, measured with radon's Python API."""

from __future__ import annotations

import io
import json
import math
import os
import resource
import selectors
import stat
import subprocess
import sys
import time
import tokenize
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from radon.complexity import cc_rank
from radon.metrics import mi_visit
from radon.visitors import Class, ComplexityVisitor, Function

from assessor.errors import MeasureError

RANKS = "ABCDEF"
AVERAGE_METHOD = ("mean over every function and method, nested ones included (radon's `cc -a` also averages "
                  "classes: see average_with_classes)")
# Bigger files are reported, not parsed: real application modules are far smaller.
MAX_FILE_BYTES = 1_000_000
# Up to this many files, files that are cheap to analyse run in this process and skip worker start-up.
INLINE_MAX_FILES = 20
# radon's raw/MI pass re-tokenises a multi-line construct once per line it spans, so its cost is bounded by
# lines x characters of the file. Measured worst case (a dense multi-line list) was ~7e-7 s per unit, so this
# keeps a file analysed inline under ~0.2 s whatever it contains.
INLINE_MAX_WORK = 250_000
# Parsing alone costs up to ~6 us a byte on a line of dense tokens: this caps few-line files at ~0.1 s.
INLINE_MAX_BYTES = 20_000
# A worker that has not imported radon by then is broken, not slow.
WORKER_START_SECONDS = 30.0
# A worker holds one file of at most MAX_FILE_BYTES; this stops a crafted file from exhausting the host.
WORKER_ADDRESS_SPACE_BYTES = 2 * 1024**3
# Workers are fresh interpreters (~40 ms to start) rather than multiprocessing children: no re-import of the
# service's __main__, no fork of a threaded web/queue process, and -I with cwd "/" means nothing from the
# learner's checkout or the environment can end up on the worker's import path.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[3])
_WORKER_COMMAND = (
    sys.executable, "-I", "-c",
    f"import sys; sys.path.insert(0, {_PACKAGE_PARENT!r}); "
    "from assessor.engine.measure.complexity import serve_worker; serve_worker(float(sys.argv[1]))",
)


@dataclass(frozen=True)
class FunctionComplexity:
    """One function or method: where it is and how complex radon finds it."""

    name: str  # "function", "Class.method", "outer.inner"
    path: str  # relative to the checkout, posix
    line: int
    complexity: int
    rank: str  # A (simple) .. F (very complex)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "line": self.line,
                "complexity": self.complexity, "rank": self.rank}


@dataclass(frozen=True)
class FileProblem:
    """A file that could not be (fully) analysed, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class ComplexityResult:
    """Complexity of the learner's application code.

    Blocks are functions and methods (nested ones included). Classes are not blocks of their own: radon scores
    a class as the average of its methods, so counting it as well would count the same code twice.
    `average` and `share_c_or_worse` are None when there are no blocks: no code is not perfect code.
    `average_with_classes` is the figure radon's own `cc -a` prints (top-level functions, classes and methods).
    """

    files_analyzed: int
    blocks: int
    average: float | None
    worst: tuple[FunctionComplexity, ...]
    share_c_or_worse: float | None
    maintainability: float | None
    rank_counts: dict[str, int]
    problems: tuple[FileProblem, ...]
    average_with_classes: float | None = None
    analyser: str = "radon"

    def to_dict(self) -> dict[str, Any]:
        return {
            "files_analyzed": self.files_analyzed,
            "blocks": self.blocks,
            "average": self.average,
            "average_method": AVERAGE_METHOD,
            "average_with_classes": self.average_with_classes,
            "analyser": self.analyser,
            "worst": [function.to_dict() for function in self.worst],
            "share_c_or_worse": self.share_c_or_worse,
            "maintainability": self.maintainability,
            "rank_counts": dict(self.rank_counts),
            "problems": [problem.to_dict() for problem in self.problems],
        }


# A block as it travels back from a worker: (name, line, complexity).
Block = tuple[str, int, int]


@dataclass
class _FileOutcome:
    """What became of one file; filled in stage by stage."""

    blocks: list[Block] | None = None
    maintainability: float | None = None
    problem: str | None = None
    radon_total: tuple[int, int] | None = None  # (sum, count) over radon's own cc -a blocks


class _Unreadable(Exception):
    """The file cannot be given to radon at all; the message says why."""


def measure_complexity(
    root: Path,
    *,
    files: list[Path] | None = None,
    analyser: str = "radon",
    workers: int | None = None,
    file_timeout_seconds: float = 10.0,
    worst_count: int = 10,
) -> ComplexityResult:
    """Measure `files` (default: every Python application file under `root`, tests, environments and vendored
    code excluded); paths in the result are relative to `root`. `analyser` is radon (Python) or lizard
    (JavaScript and TypeScript, which gives no maintainability index).

    Each file is analysed with a time bound: radon's maintainability pass is quadratic in a long multi-line
    string, so a worker process still busy after `file_timeout_seconds` is killed and its file reported. Up to
    `workers` processes run at once. Small repositories analyse their cheap files in this process instead.
    """
    root = Path(root)
    if not root.is_dir():
        raise MeasureError(f"cannot measure complexity: {root} is not a directory")
    if file_timeout_seconds <= 0:
        raise ValueError("file_timeout_seconds must be positive")
    if worst_count < 0:
        raise ValueError("worst_count must be 0 or more")
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if analyser not in ANALYSERS:
        raise ValueError(f"unknown analyser {analyser!r}")

    if files is None:
        from assessor.engine.toolchains.python.sources import python_source_files  # the default: this is radon

        files = python_source_files(root)
    by_name = {path.relative_to(root).as_posix(): path for path in files}
    outcomes = _analyse_files(by_name, workers=workers, timeout=file_timeout_seconds, analyser=analyser)
    result = _summarise(outcomes, worst_count=worst_count)
    return replace(result, analyser=analyser,
                   average_with_classes=result.average if analyser == "lizard" else result.average_with_classes)


# ---------------------------------------------------------------- one file


def _read_source(path: Path) -> str:
    """The file's text, decoded the way Python would (PEP 263 cookie, BOM), or _Unreadable."""
    try:
        # O_NOFOLLOW: the file list skips symlinks, but the tree could change after listing.
        # O_NONBLOCK: a FIFO named *.py must not hang the run.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise _Unreadable(f"cannot be opened ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _Unreadable(f"is {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit")
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _Unreadable(f"is over the {MAX_FILE_BYTES:,}-byte limit")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        raise _Unreadable(f"cannot be decoded ({_first_line(error)})") from None


def _function_blocks(visitor: ComplexityVisitor) -> list[Block]:
    """Every function and method the visitor found, with its qualified name, line and complexity."""
    blocks: list[Block] = []
    for function in visitor.functions:
        blocks.extend(_walk_function(function, ""))
    for cls in visitor.classes:
        blocks.extend(_walk_class(cls, ""))
    return blocks


def _walk_function(function: Function, qualifier: str) -> Iterator[Block]:
    name = qualifier + function.name
    yield name, function.lineno, function.complexity
    for inner in function.closures:
        yield from _walk_function(inner, name + ".")


def _walk_class(cls: Class, qualifier: str) -> Iterator[Block]:
    name = qualifier + cls.name
    for method in cls.methods:
        yield from _walk_function(method, name + ".")
    for inner in cls.inner_classes:
        yield from _walk_class(inner, name + ".")


def _lizard_stages(name: str, source: str) -> Iterator[tuple[str, Any]]:
    """lizard's functions (methods, arrow functions and closures each count, as lizard reports them)."""
    try:
        import lizard

        analysed = lizard.analyze_file.analyze_source_code(name, source)
    except RecursionError:
        yield "failed", "could not be analysed (nested too deeply)"
        return
    except Exception as error:
        yield "failed", f"could not be analysed ({_describe(error)})"
        return
    blocks = [(function.name, function.start_line, function.cyclomatic_complexity)
              for function in analysed.function_list]
    yield "blocks", blocks
    yield "cc_total", [sum(block[2] for block in blocks), len(blocks)]
    yield "maintainability", None  # lizard computes no maintainability index


ANALYSERS = ("radon", "lizard")


def _analyse(analyser: str, name: str, source: str) -> Iterator[tuple[str, Any]]:
    return _lizard_stages(name, source) if analyser == "lizard" else _stages(source)


def _stages(source: str) -> Iterator[tuple[str, Any]]:
    """Analyse one source as messages: blocks first, then the (possibly slow) maintainability index.

    Blocks are sent before the slow pass so that a file padded to make that pass time out still has its
    complexity counted.
    """
    try:
        visitor = ComplexityVisitor.from_code(source)
        blocks = _function_blocks(visitor)
    except SyntaxError as error:  # also TabError, NUL bytes and Python 2 code
        yield "failed", f"does not parse ({_describe(error)})"
        return
    except Exception as error:
        yield "failed", f"could not be analysed ({_describe(error)})"
        return
    yield "blocks", blocks
    yield "cc_total", [sum(block.complexity for block in visitor.blocks), len(visitor.blocks)]
    try:
        # multi=True counts docstrings as comments, as radon's own `mi` command does by default.
        yield "maintainability", mi_visit(source, True)
    except Exception as error:
        # radon's line counter rejects some code Python accepts (e.g. combining marks in names).
        yield "failed", f"maintainability index not computed ({_describe(error)}); complexity still counted"


def _apply(outcome: _FileOutcome, kind: str, value: Any) -> bool:
    """Record one message about a file; True when nothing more will come for it."""
    if kind == "blocks":
        outcome.blocks = [tuple(block) for block in value]
        return False
    if kind == "cc_total":
        outcome.radon_total = (int(value[0]), int(value[1]))
        return False
    if kind == "maintainability":
        outcome.maintainability = value
    else:
        outcome.problem = value
    return True


def _describe(error: BaseException) -> str:
    """A short, mentor-readable detail of why an analysis failed."""
    if isinstance(error, SyntaxError):
        return f"line {error.lineno}: {error.msg}" if error.lineno else str(error.msg)
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, MemoryError):
        return "too large"
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:200]


def _is_cheap(source: str) -> bool:
    """True when radon's quadratic pass cannot take long on this source, whatever it contains."""
    return len(source) <= INLINE_MAX_BYTES and len(source.splitlines()) * len(source) <= INLINE_MAX_WORK


# ---------------------------------------------------------------- many files


def _analyse_files(files: dict[str, Path], *, workers: int, timeout: float,
                   analyser: str = "radon") -> dict[str, _FileOutcome]:
    """Small repos run cheap files in this process; everything else goes to time-bounded workers."""
    outcomes: dict[str, _FileOutcome] = {}
    bounded: list[tuple[str, Path]] = []
    if len(files) > INLINE_MAX_FILES:
        bounded = list(files.items())  # the pool reads each file when it hands it out
    else:
        for relative, path in files.items():
            try:
                source = _read_source(path)
            except _Unreadable as error:
                outcomes[relative] = _FileOutcome(problem=str(error))
                continue
            if _is_cheap(source):
                outcomes[relative] = outcome = _FileOutcome()
                for kind, value in _analyse(analyser, relative, source):
                    _apply(outcome, kind, value)
            else:
                bounded.append((relative, path))
    if bounded:
        outcomes.update(_WorkerPool(size=min(workers, len(bounded)), timeout=timeout, analyser=analyser)
                        .run(bounded))
    return outcomes


def serve_worker(file_timeout_seconds: float) -> None:
    """Worker process entry point: one JSON-encoded [analyser, file name, source] per input line, JSON-line
    messages out."""
    _lower_limit(resource.RLIMIT_AS, WORKER_ADDRESS_SPACE_BYTES)
    out = sys.stdout.buffer
    # Announce readiness so that a file's time bound does not include interpreter start-up.
    out.write(b'["ready", null]\n')
    out.flush()
    for line in sys.stdin.buffer:
        # The parent kills us at the deadline; this CPU limit is for when the parent itself died first,
        # so that an orphaned worker cannot spend hours on a crafted file.
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _lower_limit(resource.RLIMIT_CPU, math.ceil(usage.ru_utime + usage.ru_stime + file_timeout_seconds) + 2)
        analyser, name, source = json.loads(line)
        for message in _analyse(analyser, name, source):
            out.write(json.dumps(message).encode() + b"\n")
            out.flush()


def _lower_limit(limit: int, value: int) -> None:
    """Set a soft resource limit, never above the hard one."""
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(limit, (value, hard))
    except (ValueError, OSError):
        pass  # the platform refuses; the parent's deadline still applies


class _Worker:
    """One worker process, the file it is working on and that file's deadline."""

    def __init__(self, timeout: float) -> None:
        self.process = subprocess.Popen(
            (*_WORKER_COMMAND, repr(timeout)), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd="/", env={"PATH": "/usr/bin:/bin"}, close_fds=True,
        )
        self.task: str | None = None
        self.deadline = 0.0
        self._unread = b""

    def wait_until_ready(self) -> None:
        give_up_at = time.monotonic() + WORKER_START_SECONDS
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while selector.select(max(0.0, give_up_at - time.monotonic())):
                messages = self.messages()
                if messages is None:
                    break
                if messages:
                    return  # the only thing a fresh worker says is that it is ready
        self.stop()
        raise MeasureError(f"the complexity worker did not start within {WORKER_START_SECONDS:g} s")

    def give(self, relative: str, source: str, timeout: float, analyser: str = "radon") -> None:
        self.task = relative
        self.deadline = time.monotonic() + timeout
        self.process.stdin.write(json.dumps([analyser, relative, source]).encode() + b"\n")
        self.process.stdin.flush()

    def messages(self) -> list[tuple[str, Any]] | None:
        """The complete messages that have arrived, or None when the worker has gone."""
        data = os.read(self.process.stdout.fileno(), 1 << 16)
        if not data:
            return None
        *complete, self._unread = (self._unread + data).split(b"\n")
        try:
            return [tuple(json.loads(line)) for line in complete]
        except ValueError:
            return None  # not our protocol: treat the worker as lost

    def stop(self) -> None:
        """Kill without waiting for the current file: a stuck file is the reason workers exist."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()


class _WorkerPool:
    """Per-file tasks on a few worker processes; a worker past its file's deadline is killed and replaced."""

    def __init__(self, *, size: int, timeout: float, analyser: str = "radon") -> None:
        self.analyser = analyser
        self.size = size
        self.timeout = timeout
        self.outcomes: dict[str, _FileOutcome] = {}
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()

    def run(self, files: list[tuple[str, Path]]) -> dict[str, _FileOutcome]:
        pending = deque(files)
        try:
            # Start them all before waiting for any, so that their start-up overlaps.
            for worker in [self._start() for _ in range(min(self.size, len(pending)))]:
                worker.wait_until_ready()
            while True:
                self._hand_out(pending)
                busy = [worker for worker in self.workers if worker.task is not None]
                if not busy:
                    return self.outcomes
                wait_for = max(0.0, min(worker.deadline for worker in busy) - time.monotonic())
                for key, _ in self.selector.select(wait_for):
                    self._receive(key.data)
                now = time.monotonic()
                for worker in busy:
                    if worker.task is not None and worker in self.workers and now >= worker.deadline:
                        self._give_up(worker)
        except OSError as error:
            raise MeasureError(f"cannot run the complexity workers: {error}") from error
        finally:
            for worker in self.workers:
                worker.stop()
            self.selector.close()

    def _hand_out(self, pending: deque) -> None:
        """Give each idle worker a file, starting workers up to the pool size."""
        while pending:
            idle = next((worker for worker in self.workers if worker.task is None), None)
            if idle is None and len(self.workers) < self.size:
                idle = self._start()
                idle.wait_until_ready()
            if idle is None:
                return
            relative, path = pending.popleft()
            try:
                source = _read_source(path)
            except _Unreadable as error:
                self.outcomes[relative] = _FileOutcome(problem=str(error))
                continue
            try:
                idle.give(relative, source, self.timeout, self.analyser)
            except BrokenPipeError:
                self._lost(idle)

    def _start(self) -> _Worker:
        worker = _Worker(self.timeout)
        self.workers.append(worker)
        self.selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
        return worker

    def _receive(self, worker: _Worker) -> None:
        messages = worker.messages()
        if worker.task is None:
            if messages is None:
                self._retire(worker)  # died while idle; _hand_out starts another if one is needed
            return
        if messages is None:
            self._lost(worker)
            return
        outcome = self.outcomes.setdefault(worker.task, _FileOutcome())
        for kind, value in messages:
            if _apply(outcome, kind, value):
                worker.task = None

    def _lost(self, worker: _Worker) -> None:
        """The worker died by itself (crash, memory limit): report its file and carry on without it."""
        self._retire(worker)
        outcome = self.outcomes.setdefault(worker.task, _FileOutcome())
        outcome.problem = f"the analysis process stopped unexpectedly (exit code {worker.process.returncode})"

    def _give_up(self, worker: _Worker) -> None:
        outcome = self.outcomes.setdefault(worker.task, _FileOutcome())
        limit = f"{self.timeout:g} s"
        if outcome.blocks is None:
            outcome.problem = f"analysis took longer than {limit} and was stopped"
        else:
            outcome.problem = f"maintainability analysis took longer than {limit} and was stopped; complexity still counted"
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.stop()
        self.selector.unregister(worker.process.stdout)
        self.workers.remove(worker)


# ---------------------------------------------------------------- the summary


def _summarise(outcomes: dict[str, _FileOutcome], *, worst_count: int) -> ComplexityResult:
    functions = [
        FunctionComplexity(name=name, path=relative, line=line, complexity=complexity, rank=cc_rank(complexity))
        for relative, outcome in sorted(outcomes.items()) if outcome.blocks
        for name, line, complexity in outcome.blocks
    ]
    indices = [outcome.maintainability for outcome in outcomes.values() if outcome.maintainability is not None]
    rank_counts = {rank: 0 for rank in RANKS}
    for function in functions:
        rank_counts[function.rank] += 1
    worst = sorted(functions, key=lambda f: (-f.complexity, f.path, f.line))[:worst_count]
    if functions:
        average = round(sum(f.complexity for f in functions) / len(functions), 2)
        share = round(100 * sum(rank_counts[rank] for rank in "CDEF") / len(functions), 2)
    else:
        average = share = None
    totals = [outcome.radon_total for outcome in outcomes.values() if outcome.radon_total]
    radon_count = sum(count for _, count in totals)
    return ComplexityResult(
        average_with_classes=round(sum(total for total, _ in totals) / radon_count, 2) if radon_count else None,
        files_analyzed=sum(1 for outcome in outcomes.values() if outcome.blocks is not None),
        blocks=len(functions),
        average=average,
        worst=tuple(worst),
        share_c_or_worse=share,
        maintainability=round(sum(indices) / len(indices), 2) if indices else None,
        rank_counts=rank_counts,
        problems=tuple(
            FileProblem(path=relative, reason=outcome.problem)
            for relative, outcome in sorted(outcomes.items()) if outcome.problem
        ),
    )
