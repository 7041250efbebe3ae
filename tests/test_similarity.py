"""Near copies (assessor.similarity): renamed, re-indented and reordered copies are found, whole or one module,
in Python and TypeScript; an honest capstone of the same assignment is not; fingerprints survive storage."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from assessor.engine import similarity
from assessor.errors import IntegrityError
from assessor.engine.sources import snapshot

from tests.copies import disguise
from tests.integrity_capstones import PY_HONEST, PY_ORIGINAL, TS_HONEST, TS_ORIGINAL

PYTHON_RENAMES = {"Loan": "Borrowing", "loan": "borrowing", "loans": "borrowings", "member": "patron",
                  "Member": "Patron", "book_id": "item_id", "today": "now", "renew": "extend", "borrow": "lend",
                  "LoanStore": "Ledger", "connection": "db"}
TYPESCRIPT_RENAMES = {"RateLimiter": "Throttle", "bucket": "pail", "buckets": "pails", "Bucket": "Pail",
                      "tokens": "credits", "client": "caller", "limiter": "throttle", "request": "req",
                      "response": "res", "refill": "topUp", "options": "opts"}

LANGUAGES = {
    "python": (PY_ORIGINAL, PY_HONEST, PYTHON_RENAMES, "loans/domain.py", "borrowings/domain.py"),
    "typescript": (TS_ORIGINAL, TS_HONEST, TYPESCRIPT_RENAMES, "src/limiter.ts", "src/throttle.ts"),
}


def _dedented(files: dict[str, str]) -> dict[str, str]:
    return {path: textwrap.dedent(text) for path, text in files.items()}


def _fingerprint(make_repo, files: dict[str, str]) -> similarity.SubmissionFingerprint:
    return similarity.fingerprint(snapshot(make_repo(files)))


def _against(submission, original) -> list[similarity.Likeness]:
    return similarity.likeness(submission, [similarity.StoredFingerprint(1, original.hashes)], threshold_percent=5)


@pytest.fixture(params=sorted(LANGUAGES))
def capstones(request, make_repo):
    original, honest, renames, module, renamed_module = LANGUAGES[request.param]
    disguised = disguise(_dedented(original), renames, language=request.param)
    partial = {**_dedented(honest), **disguise({module: textwrap.dedent(original[module])}, renames,
                                               language=request.param)}
    return {"language": request.param, "module": module, "renamed_module": renamed_module,
            "original": _fingerprint(make_repo, original), "disguised": _fingerprint(make_repo, disguised),
            "honest": _fingerprint(make_repo, honest), "partial": _fingerprint(make_repo, partial),
            "disguised_files": disguised}


def test_a_renamed_reindented_reordered_copy_is_found(capstones):
    assert capstones["disguised_files"] != _dedented(LANGUAGES[capstones["language"]][0])  # really disguised
    [found] = _against(capstones["disguised"], capstones["original"])
    assert found.percent >= 80 and found.highest >= 80


def test_an_honest_capstone_of_the_same_assignment_is_not(capstones):
    assert _against(capstones["honest"], capstones["original"]) == []


def test_a_partial_copy_is_found_by_its_module(capstones):
    [found] = _against(capstones["partial"], capstones["original"])
    assert found.module == capstones["renamed_module"] and found.module_percent >= 70
    assert found.percent < found.module_percent
    # At the default threshold (50 %) the module alone flags it, whatever the share of the whole.
    assert similarity.likeness(capstones["partial"], [similarity.StoredFingerprint(1, capstones["original"].hashes)],
                               threshold_percent=50)


def test_fragments_pair_the_copied_lines_of_both_sides(capstones):
    pieces = similarity.fragments(capstones["disguised"], capstones["original"])
    assert pieces and pieces == sorted(pieces, key=lambda piece: -piece.lines)
    module_pieces = [piece for piece in pieces if piece.path == capstones["renamed_module"]]
    assert module_pieces and all(piece.other_path == capstones["module"] for piece in module_pieces)
    for piece in pieces:
        assert 1 <= piece.first_line <= piece.last_line and 1 <= piece.other_first_line <= piece.other_last_line
        assert similarity.Fragment.from_dict(piece.to_dict()) == piece


def test_names_are_normalised_in_typescript_too():
    # Pygments calls these identifiers Name.Other; copydetect's own filter would keep them verbatim.
    code = "const total = items.reduce((sum, item) => sum + item.price, 0);\n"
    renamed = "const amount = lines.reduce((acc, line) => acc + line.price, 0);\n"
    assert similarity.normalise(code, "typescript")[0] == similarity.normalise(renamed, "typescript")[0]


def test_normalised_characters_keep_their_source_line():
    text, lines = similarity.normalise("x = 1\n\n# a comment\ny = 'text'\n", "python")
    assert text == 'V=1V="S"' and lines.tolist() == [1, 1, 1, 4, 4, 4, 4, 4]


def test_fingerprints_are_the_same_in_another_process(make_repo):
    # copydetect hashes with Python's hash(), which PYTHONHASHSEED changes; a stored index needs stable hashes.
    repo = make_repo(PY_ORIGINAL)
    here = similarity.fingerprint(snapshot(repo)).hashes
    program = ("import sys; from assessor.engine import similarity; from assessor.engine.sources import snapshot; "
               "sys.stdout.buffer.write(similarity.fingerprint(snapshot(sys.argv[1])).hashes.tobytes())")
    other = subprocess.run([sys.executable, "-c", program, str(repo)], capture_output=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout
    assert np.array_equal(np.frombuffer(other, dtype=np.int64), here)


def test_stored_fingerprints_read_back_and_damage_is_an_integrity_error(make_repo):
    submission = _fingerprint(make_repo, TS_ORIGINAL)
    assert np.array_equal(similarity.unpack_hashes(similarity.pack_hashes(submission.hashes)), submission.hashes)
    back = similarity.unpack_detail(similarity.pack_detail(submission))
    assert [item.path for item in back.files] == [item.path for item in submission.files]
    assert all(np.array_equal(a.first_lines, b.first_lines) for a, b in zip(back.files, submission.files))
    with pytest.raises(IntegrityError, match="damaged"):
        similarity.unpack_detail(b"not an npz file")


@pytest.mark.parametrize(("path", "language"), [
    ("app/main.py", "python"), ("src/a.TS", "typescript"), ("web/x.tsx", "typescript"), ("lib/y.mjs", "javascript"),
    ("README.md", None), ("Makefile", None), ("data.json", None),
])
def test_languages_compared(path, language):
    assert similarity.language_of(path) == language


def test_minified_and_non_code_files_are_left_out(make_repo):
    repo = make_repo({"bundle.js": "var a=1;" * 2_000, "notes.md": "# notes\n", "ok.js": "export const a = 1;\n" * 20})
    assert [item.path for item in similarity.fingerprint(snapshot(repo)).files] == ["ok.js"]


def test_code_past_the_budget_is_left_out_and_said_so(make_repo):
    repo = make_repo({f"m{n}.py": f"def f{n}(x):\n    return x * {n} + {n}\n" * 20 for n in range(5)})
    found = similarity.fingerprint(snapshot(repo), max_chars=1_500)
    assert len(found.files) < 5 and "only the first 1,500 characters" in found.notes[0]
