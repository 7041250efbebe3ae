"""Authorship evidence from the git history at the assessed commit: commits and surviving lines per author e-mail."""

import re
import time
from datetime import datetime, timezone
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# (ok, stdout) of one git command run on the checkout's repository, with the in-tree .mailmap out of reach:
# it would let a learner map other people's addresses onto their own.
Git = Callable[..., tuple[bool, str]]

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_AUTHOR_MAIL = re.compile(r"^author-mail <([^>\n]*)>$", re.MULTILINE)


@dataclass(frozen=True)
class HistoryLimits:
    commits: int = 2_000          # how far back the history is fetched and read
    seconds: float = 30.0         # fetching it
    blame_seconds: float = 20.0   # attributing the lines
    blame_files: int = 400


@dataclass(frozen=True)
class Author:
    email: str          # lower-case, as the commits record it (never mapped)
    name: str
    commits: int
    lines: int          # lines at the assessed commit last changed by this author (whitespace changes aside)
    first_commit_at: str
    last_commit_at: str

    def to_dict(self) -> dict:
        return {"email": self.email, "name": self.name, "commits": self.commits, "lines": self.lines,
                "first_commit_at": self.first_commit_at, "last_commit_at": self.last_commit_at}


@dataclass(frozen=True)
class Authorship:
    commits: int                     # commits read (all of the history when `complete`)
    complete: bool                   # the whole history was read, back to the first commit
    authors: tuple[Author, ...]
    lines: int                       # lines attributed, over `files_read` files
    files_read: int
    files_total: int
    first_commit_at: str | None
    last_commit_at: str | None
    notes: tuple[str, ...] = ()

    @property
    def single_commit(self) -> bool:
        """The whole history is one commit: written elsewhere and squashed, or committed once at the end."""
        return self.complete and self.commits == 1

    def share(self, emails: Iterable[str]) -> "Share":
        wanted = {email.strip().lower() for email in emails}
        mine = [author for author in self.authors if author.email in wanted]
        commits = sum(author.commits for author in mine)
        lines = sum(author.lines for author in mine)
        return Share(commits, lines, _percent(commits, self.commits), _percent(lines, self.lines))

    def to_dict(self) -> dict:
        return {"commits": self.commits, "complete": self.complete,
                "authors": [author.to_dict() for author in self.authors], "lines": self.lines,
                "files_read": self.files_read, "files_total": self.files_total,
                "first_commit_at": self.first_commit_at, "last_commit_at": self.last_commit_at,
                "single_commit": self.single_commit, "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict) -> "Authorship":
        return cls(int(data["commits"]), bool(data["complete"]),
                   tuple(Author(str(a["email"]), str(a["name"]), int(a["commits"]), int(a["lines"]),
                                str(a["first_commit_at"]), str(a["last_commit_at"])) for a in data["authors"]),
                   int(data["lines"]), int(data["files_read"]), int(data["files_total"]),
                   data.get("first_commit_at"), data.get("last_commit_at"), tuple(data.get("notes") or ()))


@dataclass(frozen=True)
class Share:
    commits: int
    lines: int
    commits_percent: float | None
    lines_percent: float | None


def _utc(text: str) -> str | None:
    try:
        return datetime.fromisoformat(text).astimezone(timezone.utc).isoformat(timespec="seconds")
    except ValueError:
        return None


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass
class _Tally:
    name: str
    commits: int = 0
    lines: int = 0
    first: str = ""
    last: str = ""
    dates: list[str] = field(default_factory=list)


def collect(git: Git, commit: str, paths: list[str], *, limits: HistoryLimits = HistoryLimits(),
            complete: bool, notes: Iterable[str] = ()) -> Authorship:
    """Read the history that ends at `commit`: who made each commit, and who last changed each line of `paths`."""
    notes = list(notes)
    ok, out = git("log", f"--max-count={limits.commits}", "--no-mailmap", "--format=%H%x00%ae%x00%an%x00%aI",
                  commit, "--")
    tallies: dict[str, _Tally] = {}
    commits = 0
    dates = []
    if ok:
        for line in out.splitlines():
            parts = line.split("\0")
            if len(parts) != 4 or not _FULL_SHA.match(parts[0]):
                continue
            email, name, date = parts[1].strip().lower(), parts[2].strip(), _utc(parts[3].strip())
            if date is None:
                continue
            tally = tallies.setdefault(email, _Tally(name))
            tally.commits += 1
            tally.first = min(tally.first or date, date)
            tally.last = max(tally.last, date)
            dates.append(date)
            commits += 1
    else:
        notes.append("the history could not be read")
    if commits >= limits.commits:
        complete = False
    lines = files_read = 0
    deadline = time.monotonic() + limits.blame_seconds
    for path in paths[:limits.blame_files]:
        if time.monotonic() > deadline:
            notes.append(f"lines were attributed in {files_read} of {len(paths)} files (the time limit)")
            break
        ok, out = git("blame", "-w", "--line-porcelain", commit, "--", path)
        if not ok:
            continue
        files_read += 1
        for email in _AUTHOR_MAIL.findall(out):
            email = email.strip().lower()
            tallies.setdefault(email, _Tally(email)).lines += 1
            lines += 1
    else:
        if len(paths) > limits.blame_files:
            notes.append(f"lines were attributed in the first {limits.blame_files} of {len(paths)} files")
    if not complete and commits:
        notes.append(f"only the last {commits:,} commits were read: lines older than them count for whoever "
                     "made the oldest commit read")
    authors = tuple(sorted((Author(email, tally.name, tally.commits, tally.lines, tally.first, tally.last)
                            for email, tally in tallies.items()), key=lambda a: (-a.lines, -a.commits, a.email)))
    return Authorship(commits, complete, authors, lines, files_read, len(paths),
                      min(dates) if dates else None, max(dates) if dates else None, tuple(notes))
