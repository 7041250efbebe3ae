"""Near copies: winnowed fingerprints of a submission's code (copydetect) compared with every stored submission."""

import hashlib
import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from pygments import lexers, token
from pygments.util import ClassNotFound

from assessor.errors import IntegrityError
from assessor.engine.sources import SourceSnapshot

# Characters of normalised code per k-gram (copydetect's noise threshold) and the length whose match winnowing
# guarantees to see (its guarantee threshold): shorter shared runs are idiom, not copying.
NOISE = 25
GUARANTEE = 35
WINDOW = GUARANTEE - NOISE + 1
ENGINE = f"copydetect winnowing, k={NOISE}, window={WINDOW}, names normalised; v1"

LANGUAGES = {".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
             ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript"}
# A module shorter than this (in normalised characters) is too small to call copied on its own.
MIN_MODULE_CHARS = 600
MAX_CODE_CHARS = 3_000_000   # per submission: beyond this the rest is left out, and said so
MAX_FRAGMENTS = 40

# Pygments calls a JavaScript/TypeScript identifier Name.Other, which copydetect's own filter keeps verbatim, so a
# renamed name would count as different code: every name is normalised here, builtins excepted.


@dataclass(frozen=True)
class FileFingerprint:
    path: str
    hashes: np.ndarray        # int64, winnowed k-gram hashes in order of position
    first_lines: np.ndarray   # int32, the 1-based source line where each k-gram starts
    last_lines: np.ndarray    # int32, ... and where it ends
    chars: int                # normalised length

    @property
    def substantial(self) -> bool:
        return self.chars >= MIN_MODULE_CHARS


@dataclass(frozen=True)
class SubmissionFingerprint:
    files: tuple[FileFingerprint, ...]
    notes: tuple[str, ...] = ()

    @property
    def hashes(self) -> np.ndarray:
        """Every distinct fingerprint of the submission, sorted."""
        if not self.files:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([item.hashes for item in self.files]))

    @property
    def chars(self) -> int:
        return sum(item.chars for item in self.files)


def language_of(path: str) -> str | None:
    dot = path.rfind(".")
    return LANGUAGES.get(path[dot:].lower()) if dot >= 0 else None


def normalise(code: str, language: str) -> tuple[str, np.ndarray]:
    """Code as copydetect compares it (names V, functions F, classes O, strings S, no comments or spaces), and
    the source line of every character of the result."""
    try:
        lexer = lexers.get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        raise IntegrityError(f"no tokenizer for {language}") from None
    pieces: list[str] = []
    lines: list[int] = []
    line = 1
    for kind, value in lexer.get_tokens(code):
        if kind in token.Comment.Preproc or kind in token.Comment.Hashbang:
            out = "P"
        elif kind in token.Comment or kind in token.Text or kind in token.Whitespace:
            out = ""
        elif kind in token.Name.Function or kind in token.Name.Function.Magic:
            out = "F"
        elif kind in token.Name.Class:
            out = "O"
        elif kind in token.Literal.String:
            out = '"' if value in ("'", '"', "`") else "S"
        elif kind in token.Name and kind not in token.Name.Builtin:
            out = "V"
        else:
            out = value.strip()
        if out:
            pieces.append(out)
            lines.extend([line] * len(out))
        line += value.count("\n")
    return "".join(pieces), np.asarray(lines, dtype=np.int32)


def _kgram_hashes(text: str) -> np.ndarray:
    # Python's own hash() (what copydetect uses) changes from process to process; a stored index needs a stable one.
    encoded = text.encode("utf-8", "surrogatepass")
    if len(text) < NOISE:
        return np.zeros(0, dtype=np.int64)
    if len(encoded) == len(text):
        grams = (encoded[i:i + NOISE] for i in range(len(text) - NOISE + 1))
    else:
        grams = (text[i:i + NOISE].encode("utf-8", "surrogatepass") for i in range(len(text) - NOISE + 1))
    return np.fromiter((int.from_bytes(hashlib.blake2b(gram, digest_size=8).digest(), "little", signed=True)
                        for gram in grams), dtype=np.int64, count=len(text) - NOISE + 1)


def fingerprint_file(path: str, code: str, language: str) -> FileFingerprint:
    # copydetect's package imports matplotlib on the way in (0.6 s): only the worker pays for it, when it needs it.
    from copydetect.utils import winnow

    normalised, lines = normalise(code, language)
    all_hashes = _kgram_hashes(normalised)
    if len(all_hashes) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return FileFingerprint(path, empty, empty.astype(np.int32), empty.astype(np.int32), len(normalised))
    hashes, positions = winnow(all_hashes, WINDOW, remove_duplicates=False)
    positions = np.asarray(positions, dtype=np.int64)
    return FileFingerprint(path, np.asarray(hashes, dtype=np.int64), lines[positions],
                           lines[positions + NOISE - 1], len(normalised))


def fingerprint(snapshot: SourceSnapshot, *, max_chars: int = MAX_CODE_CHARS) -> SubmissionFingerprint:
    """The fingerprints of every Python, JavaScript and TypeScript file of a submission."""
    files = []
    notes = []
    total = 0
    for source in snapshot.files:
        language = language_of(source.path)
        if language is None or _minified(source.text):
            continue
        if total + len(source.text) > max_chars:
            notes.append(f"only the first {max_chars:,} characters of code were compared")
            break
        total += len(source.text)
        files.append(fingerprint_file(source.path, source.text, language))
    return SubmissionFingerprint(tuple(item for item in files if len(item.hashes)), tuple(notes))


def _minified(text: str) -> bool:
    return len(text) > 5_000 and text.count("\n") < len(text) / 1_000


# ---------------------------------------------------------------------------------------------------------------
# Storage: the sorted distinct hashes (what the scan reads) and the per-file detail (read for a likely copy only)
# ---------------------------------------------------------------------------------------------------------------

def pack_hashes(hashes: np.ndarray) -> bytes:
    return zlib.compress(np.asarray(hashes, dtype="<i8").tobytes(), 1)


def unpack_hashes(data: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(data), dtype="<i8")


def pack_detail(submission: SubmissionFingerprint) -> bytes:
    arrays: dict[str, np.ndarray] = {"paths": np.array([item.path for item in submission.files], dtype=np.str_),
                                     "chars": np.array([item.chars for item in submission.files], dtype=np.int64)}
    for number, item in enumerate(submission.files):
        arrays[f"h{number}"] = item.hashes
        arrays[f"f{number}"] = item.first_lines
        arrays[f"l{number}"] = item.last_lines
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def unpack_detail(data: bytes) -> SubmissionFingerprint:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            paths, chars = arrays["paths"], arrays["chars"]
            return SubmissionFingerprint(tuple(
                FileFingerprint(str(path), arrays[f"h{number}"], arrays[f"f{number}"], arrays[f"l{number}"],
                                int(chars[number]))
                for number, path in enumerate(paths)))
    except (ValueError, KeyError, OSError, zlib.error) as error:
        raise IntegrityError(f"stored fingerprints are damaged: {error}") from None


# ---------------------------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredFingerprint:
    """One stored submission as the scan sees it."""

    key: int                 # whatever the caller identifies it by (a stored report's id)
    hashes: np.ndarray       # sorted distinct


@dataclass(frozen=True)
class Likeness:
    """How much of this submission is found in another one."""

    key: int
    percent: float                    # of this submission's fingerprints, found in the other
    module: str | None                # the module most copied, when it is substantial
    module_percent: float
    shared: np.ndarray = field(repr=False, compare=False)   # the shared hashes

    @property
    def highest(self) -> float:
        return max(self.percent, self.module_percent)


def likeness(submission: SubmissionFingerprint, others: Iterable[StoredFingerprint], *,
             threshold_percent: float) -> list[Likeness]:
    """Every other submission sharing at least `threshold_percent` of this one's code, or of one substantial
    module, highest first. One pass over the others; each costs a sorted intersection."""
    mine = submission.hashes
    if len(mine) == 0:
        return []
    modules = [(item.path, np.unique(item.hashes)) for item in submission.files if item.substantial]
    # Fewer shared fingerprints than this cannot reach the threshold, even for the smallest substantial module.
    smallest = min([len(mine)] + [len(hashes) for _, hashes in modules])
    at_least = max(1, int(np.ceil(smallest * threshold_percent / 100)))
    found = []
    for other in others:
        shared = np.intersect1d(mine, other.hashes, assume_unique=True)
        if len(shared) < at_least:
            continue
        percent = 100 * len(shared) / len(mine)
        best_module, best_percent, best_size = None, 0.0, 0
        for path, hashes in modules:
            module_percent = 100 * np.count_nonzero(np.isin(hashes, shared, assume_unique=True)) / len(hashes)
            # The most copied module; of equally copied ones, the largest says the most.
            if (round(module_percent, 1), len(hashes)) > (round(best_percent, 1), best_size):
                best_module, best_percent, best_size = path, module_percent, len(hashes)
        if max(percent, best_percent) >= threshold_percent:
            found.append(Likeness(other.key, round(float(percent), 1), best_module, round(float(best_percent), 1), shared))
    return sorted(found, key=lambda item: (-item.highest, item.key))


@dataclass(frozen=True)
class Fragment:
    """Lines of this submission and the lines of the other that hold the same code."""

    path: str
    first_line: int
    last_line: int
    other_path: str
    other_first_line: int
    other_last_line: int

    @property
    def lines(self) -> int:
        return self.last_line - self.first_line + 1

    def to_dict(self) -> dict:
        return {"path": self.path, "lines": [self.first_line, self.last_line], "other_path": self.other_path,
                "other_lines": [self.other_first_line, self.other_last_line]}

    @classmethod
    def from_dict(cls, data: dict) -> "Fragment":
        return cls(str(data["path"]), int(data["lines"][0]), int(data["lines"][1]), str(data["other_path"]),
                   int(data["other_lines"][0]), int(data["other_lines"][1]))


# Fingerprints this far apart (in winnowing order) still belong to one copied run: an edited line in between.
RUN_GAP = 3
# Fewer shared fingerprints in a row than this are an idiom (an import block), not a copied fragment.
MIN_RUN = 3


def fragments(mine: SubmissionFingerprint, other: SubmissionFingerprint, *,
              limit: int = MAX_FRAGMENTS) -> list[Fragment]:
    """The matching fragments of two submissions, file against file, longest first."""
    found: list[Fragment] = []
    for left in mine.files:
        for right in other.files:
            shared = np.intersect1d(left.hashes, right.hashes)
            if len(shared) == 0:
                continue
            left_at = np.flatnonzero(np.isin(left.hashes, shared))
            for run in _runs(left_at):
                if len(run) < MIN_RUN:
                    continue
                right_at = np.flatnonzero(np.isin(right.hashes, left.hashes[run]))
                # The same code may recur in the other file; its longest run is the counterpart.
                right_at = max(_runs(right_at), key=len)
                found.append(Fragment(
                    left.path, int(left.first_lines[run[0]]), int(left.last_lines[run[-1]]),
                    right.path, int(right.first_lines[right_at].min()), int(right.last_lines[right_at].max())))
    found.sort(key=lambda item: (-item.lines, item.path, item.first_line))
    return found[:limit]


def _runs(positions: np.ndarray) -> list[np.ndarray]:
    return np.split(positions, np.flatnonzero(np.diff(positions) > RUN_GAP) + 1)
