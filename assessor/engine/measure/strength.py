"""Test strength by mutation sampling: small changes to covered lines, and whether the tests that ran them notice."""

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

DEFAULT_SAMPLE = 20
MAX_TESTS_PER_MUTANT = 40
# With this many changes noticed by nothing while every test passed, the figures are suspect.
SUSPECT_AFTER = 5
VERDICTS = ("noticed", "timed_out", "survived", "not_run")
# A change's run may take this many times the whole suite's time (and at least MIN_MUTANT_SECONDS) before it
# counts as noticed by timing out; the whole sample stops after MUTATION_BUDGET_FACTOR times the suite's time.
MUTANT_TIME_FACTOR = 3.0
MIN_MUTANT_SECONDS = 10.0
MUTATION_BUDGET_FACTOR = 10.0
MIN_MUTATION_BUDGET_SECONDS = 60.0


@dataclass(frozen=True)
class Mutant:
    """One small change to one covered line, and the tests that ran that line."""

    file: str                    # relative to the checkout
    line: int
    operator: str                # the mutation tool's name for the change
    before: str
    after: str
    source: bytes = field(default=b"", repr=False, compare=False)   # the whole mutated file, once built
    tests: tuple[str, ...] = ()
    build: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        return f"{self.before} → {self.after}"


@dataclass(frozen=True)
class MutantResult:
    mutant: Mutant
    verdict: str                 # one of VERDICTS
    detail: str = ""

    def to_dict(self) -> dict:
        return {"file": self.mutant.file, "line": self.mutant.line, "operator": self.mutant.operator,
                "change": self.mutant.describe(), "tests": len(self.mutant.tests), "verdict": self.verdict,
                "detail": self.detail}


@dataclass(frozen=True)
class StrengthResult:
    """The share of sampled changes the tests noticed; changes that could not be run are not counted."""

    results: tuple[MutantResult, ...]
    seed: str
    tool: str
    seconds: float
    notes: tuple[str, ...] = ()

    def count(self, *verdicts: str) -> int:
        return sum(1 for result in self.results if result.verdict in verdicts)

    @property
    def judged(self) -> int:
        return self.count("noticed", "timed_out", "survived")

    @property
    def noticed(self) -> int:
        return self.count("noticed", "timed_out")

    @property
    def noticed_percent(self) -> float | None:
        return round(100.0 * self.noticed / self.judged, 1) if self.judged else None

    @property
    def survivors(self) -> list[MutantResult]:
        return [result for result in self.results if result.verdict == "survived"]

    def summary(self) -> str:
        if not self.judged:
            return "no sampled change could be run"
        return f"your tests noticed {self.noticed} of {self.judged} changes"

    def to_dict(self) -> dict:
        return {"tool": self.tool, "seed": self.seed, "sampled": len(self.results), "judged": self.judged,
                "noticed": self.noticed, "noticed_percent": self.noticed_percent,
                "survived": self.count("survived"), "timed_out": self.count("timed_out"),
                "not_run": self.count("not_run"), "seconds": round(self.seconds, 2), "summary": self.summary(),
                "mutants": [result.to_dict() for result in self.results], "notes": list(self.notes)}


def choose_sample(tests_by_line: Mapping[str, Mapping[int, Sequence[str]]], *,
                  mutants_for: Callable[[str, Sequence[int]], Mapping[int, list[Mutant]]],
                  size: int, seed: str) -> list[Mutant]:
    """Up to `size` mutants of covered lines, spread over the files in turn, the same for the same seed.

    `tests_by_line`: per file, the covered lines and the tests that ran each; `mutants_for(file, lines)`: the
    mutants a tool can make on those lines, whose `build()` makes the changed file (only the chosen are built).
    Files are read in a seeded order until there are enough to spread the sample over, no more."""
    rng = random.Random(seed)
    files = sorted(name for name, lines in tests_by_line.items() if any(lines.values()))
    rng.shuffle(files)
    pools: dict[str, list[tuple[int, list[Mutant]]]] = {}
    for name in files:
        if len(pools) >= size:
            break
        lines = sorted(line for line, tests in tests_by_line[name].items() if tests)
        by_line = mutants_for(name, lines)
        pool = [(line, list(by_line[line])) for line in lines if by_line.get(line)]
        rng.shuffle(pool)
        if pool:
            pools[name] = pool
    chosen: list[Mutant] = []
    while len(chosen) < size and pools:
        for name in [name for name in files if name in pools]:
            if len(chosen) >= size:
                break
            line, candidates = pools[name].pop()
            mutant = rng.choice(candidates)
            tests = sorted(tests_by_line[name][line])
            if len(tests) > MAX_TESTS_PER_MUTANT:
                tests = sorted(rng.sample(tests, MAX_TESTS_PER_MUTANT))
            built = mutant.build() if mutant.build is not None else mutant.source
            if built:
                chosen.append(replace(mutant, source=built, tests=tuple(tests), build=None))
            if not pools[name]:
                del pools[name]
    return chosen


def verdict_of(outcomes: Mapping[str, str], tests: Sequence[str]) -> tuple[str, str]:
    """Noticed when a test that ran the line failed or erred; survived when they all ran and passed."""
    seen = {test: outcomes.get(test) for test in tests}
    failing = [test for test, outcome in seen.items() if outcome in ("failed", "error")]
    if failing:
        return "noticed", f"{failing[0]} failed"
    if any(outcome == "passed" for outcome in seen.values()):
        return "survived", "every test that ran the line passed"
    return "not_run", "the tests that ran this line did not run again"


def suspect(result: StrengthResult, *, all_passed: bool) -> bool:
    """Covered lines whose changes no test noticed, with a suite that passed everything: figures not to trust."""
    return all_passed and result.judged >= SUSPECT_AFTER and result.noticed == 0
