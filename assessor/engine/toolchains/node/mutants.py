"""Mutants of JavaScript and TypeScript lines, made by Stryker's own instrumenter (which only parses the code)."""

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from assessor.engine.measure.strength import Mutant
from assessor.engine.toolchains.node.canaries import CODE_SUFFIXES

TOOL = "Stryker's operators"
MAX_SHOWN = 60
MAX_PER_LINE = 12
MAX_FILE_BYTES = 512 * 1024
PARSE_SECONDS = 60
SCRIPT = Path(__file__).with_name("stryker_mutants.mjs")


class MutantsError(Exception):
    """Stryker's instrumenter could not be run."""


def mutants_for_files(root: Path, wanted: dict[str, Sequence[int]], *, tools: Path, node: str = "node") \
        -> dict[str, dict[int, list[Mutant]]]:
    """Per file (relative to `root`), per line, the mutants Stryker makes; one run of node for all the files."""
    files = []
    for index, (name, lines) in enumerate(sorted(wanted.items())):
        path = root / name
        if not name.endswith(CODE_SUFFIXES + (".jsx", ".tsx")) or path.is_symlink() or not path.is_file() \
                or path.stat().st_size > MAX_FILE_BYTES:
            continue
        # A bare name with the file's own extension: nothing near it to read a configuration from.
        files.append({"name": f"file{index}{PurePosixPath(name).suffix}", "path": name,
                      "content": path.read_bytes().decode("utf-8", "replace"), "lines": sorted(set(lines))})
    if not files:
        return {}
    request = {"files": [{key: item[key] for key in ("name", "content", "lines")} for item in files]}
    with tempfile.TemporaryDirectory(prefix="assessor-stryker-") as empty:
        try:
            done = subprocess.run([node, str(SCRIPT), str(tools)], input=json.dumps(request), capture_output=True,
                                  text=True, cwd=empty, timeout=PARSE_SECONDS,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        except (OSError, subprocess.TimeoutExpired) as error:
            raise MutantsError(f"Stryker's instrumenter did not run: {error}") from None
    if done.returncode != 0:
        raise MutantsError(f"Stryker's instrumenter failed: {done.stderr.strip()[-300:]}")
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        raise MutantsError("Stryker's instrumenter gave no answer") from None
    made: dict[str, dict[int, list[Mutant]]] = {}
    for item, result in zip(files, answer.get("files", [])):
        content = item["content"]
        for found in result.get("mutants", []):
            by_line = made.setdefault(item["path"], {}).setdefault(found["line"], [])
            if len(by_line) < MAX_PER_LINE:
                by_line.append(_mutant(item["path"], content, found))
    return made


def _mutant(name: str, content: str, found: dict) -> Mutant:
    # Offsets count UTF-16 units, as JavaScript strings do; the splice is made in that encoding.
    start, end, after = found["start"], found["end"], found["after"]

    def build() -> bytes:
        units = content.encode("utf-16-le", "surrogatepass")
        changed = units[:2 * start] + after.encode("utf-16-le", "surrogatepass") + units[2 * end:]
        return changed.decode("utf-16-le", "surrogatepass").encode("utf-8", "surrogateescape")

    return Mutant(file=name, line=found["line"], operator=found["operator"], before=_short(found["before"]),
                  after=_short(after), build=build)


def _short(code: str) -> str:
    text = " ".join(code.split())
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"
