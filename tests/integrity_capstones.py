"""Capstones for the integrity tests: an original, and an honest one of the same assignment, in Python and in
TypeScript. Copies of them are made with tests.copies."""

PY_ORIGINAL = {
    "pyproject.toml": """\
        [project]
        name = "loans"
        version = "0.1.0"
        requires-python = ">=3.11"
        dependencies = []

        [tool.pytest.ini_options]
        pythonpath = ["."]
        testpaths = ["tests"]
        """,
    "loans/__init__.py": '"""Book loans for a small library."""\n',
    "loans/domain.py": '''\
        """Loan rules: who may borrow what, for how long, and what a late return costs."""

        from dataclasses import dataclass, field
        from datetime import date, timedelta

        LOAN_DAYS = 21
        MAX_RENEWALS = 2
        FINE_PER_DAY_CENTS = 25
        MAX_FINE_CENTS = 1000


        class LoanError(Exception):
            pass


        @dataclass
        class Loan:
            book_id: int
            member_id: int
            borrowed_on: date
            due_on: date
            renewals: int = 0
            returned_on: date | None = None

            @property
            def open(self) -> bool:
                return self.returned_on is None


        @dataclass
        class Member:
            member_id: int
            name: str
            limit: int = 5
            loans: list[Loan] = field(default_factory=list)

            def open_loans(self) -> list[Loan]:
                return [loan for loan in self.loans if loan.open]


        def borrow(member: Member, book_id: int, today: date) -> Loan:
            if len(member.open_loans()) >= member.limit:
                raise LoanError(f"{member.name} already has {member.limit} books")
            if any(owed_fine(loan, today) for loan in member.open_loans()):
                raise LoanError("return the late books first")
            loan = Loan(book_id, member.member_id, today, today + timedelta(days=LOAN_DAYS))
            member.loans.append(loan)
            return loan


        def renew(loan: Loan, today: date) -> Loan:
            if not loan.open:
                raise LoanError("a returned book cannot be renewed")
            if loan.renewals >= MAX_RENEWALS:
                raise LoanError(f"a loan can be renewed {MAX_RENEWALS} times")
            if today > loan.due_on:
                raise LoanError("a late loan cannot be renewed")
            loan.renewals += 1
            loan.due_on = max(loan.due_on, today) + timedelta(days=LOAN_DAYS)
            return loan


        def owed_fine(loan: Loan, today: date) -> int:
            end = loan.returned_on or today
            late_days = (end - loan.due_on).days
            if late_days <= 0:
                return 0
            return min(late_days * FINE_PER_DAY_CENTS, MAX_FINE_CENTS)


        def give_back(loan: Loan, today: date) -> int:
            if not loan.open:
                raise LoanError("this book was already returned")
            loan.returned_on = today
            return owed_fine(loan, today)
        ''',
    "loans/store.py": '''\
        """Loans kept in SQLite: one table of members, one of loans."""

        import sqlite3
        from datetime import date

        from loans.domain import Loan, Member

        SCHEMA = """
        CREATE TABLE IF NOT EXISTS members (id INTEGER PRIMARY KEY, name TEXT NOT NULL, max_loans INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS loans (
            id INTEGER PRIMARY KEY, book_id INTEGER NOT NULL, member_id INTEGER NOT NULL REFERENCES members(id),
            borrowed_on TEXT NOT NULL, due_on TEXT NOT NULL, renewals INTEGER NOT NULL DEFAULT 0, returned_on TEXT
        );
        """


        class LoanStore:
            def __init__(self, path: str = ":memory:"):
                self.connection = sqlite3.connect(path)
                self.connection.executescript(SCHEMA)

            def add_member(self, name: str, limit: int = 5) -> Member:
                cursor = self.connection.execute("INSERT INTO members (name, max_loans) VALUES (?, ?)", (name, limit))
                self.connection.commit()
                return Member(cursor.lastrowid, name, limit)

            def member(self, member_id: int) -> Member | None:
                row = self.connection.execute("SELECT id, name, max_loans FROM members WHERE id = ?",
                                              (member_id,)).fetchone()
                if row is None:
                    return None
                member = Member(row[0], row[1], row[2])
                member.loans = self.loans_of(member_id)
                return member

            def loans_of(self, member_id: int) -> list[Loan]:
                rows = self.connection.execute(
                    "SELECT book_id, member_id, borrowed_on, due_on, renewals, returned_on FROM loans "
                    "WHERE member_id = ? ORDER BY id", (member_id,)).fetchall()
                return [Loan(book, member, date.fromisoformat(borrowed), date.fromisoformat(due), renewals,
                             date.fromisoformat(returned) if returned else None)
                        for book, member, borrowed, due, renewals, returned in rows]

            def save_loan(self, loan: Loan) -> None:
                updated = self.connection.execute(
                    "UPDATE loans SET due_on = ?, renewals = ?, returned_on = ? WHERE book_id = ? AND member_id = ? "
                    "AND returned_on IS NULL",
                    (loan.due_on.isoformat(), loan.renewals, loan.returned_on and loan.returned_on.isoformat(),
                     loan.book_id, loan.member_id))
                if updated.rowcount == 0:
                    self.connection.execute(
                        "INSERT INTO loans (book_id, member_id, borrowed_on, due_on) VALUES (?, ?, ?, ?)",
                        (loan.book_id, loan.member_id, loan.borrowed_on.isoformat(), loan.due_on.isoformat()))
                self.connection.commit()
        ''',
    "tests/test_domain.py": '''\
        from datetime import date, timedelta

        import pytest

        from loans.domain import LoanError, Member, borrow, give_back, owed_fine, renew


        def test_a_late_return_is_fined_up_to_the_cap():
            member = Member(1, "Ada")
            loan = borrow(member, 7, date(2024, 1, 1))
            assert give_back(loan, loan.due_on + timedelta(days=3)) == 75
            assert owed_fine(loan, loan.due_on + timedelta(days=400)) == 75


        def test_renewals_are_limited():
            loan = borrow(Member(1, "Ada"), 7, date(2024, 1, 1))
            renew(loan, date(2024, 1, 2))
            renew(loan, date(2024, 1, 3))
            with pytest.raises(LoanError):
                renew(loan, date(2024, 1, 4))
        ''',
    "docs/runbook.md": "# Runbook\n\nRestart the service; the database is a single SQLite file.\n",
}

# The same assignment, written by someone else: other names, another structure, the same framework idioms.
PY_HONEST = {
    "pyproject.toml": """\
        [project]
        name = "library-desk"
        version = "1.0.0"
        requires-python = ">=3.11"
        dependencies = []

        [tool.pytest.ini_options]
        pythonpath = ["."]
        testpaths = ["tests"]
        """,
    "desk/__init__.py": "",
    "desk/circulation.py": '''\
        """Circulation desk: checkouts, due dates and late fees, kept in plain dictionaries."""

        import datetime as dt

        POLICY = {"days": 14, "renewals": 1, "fee": 0.10, "fee_cap": 5.00, "per_patron": 3}


        class CirculationError(ValueError):
            """Refused by the desk's policy."""


        class Desk:
            def __init__(self, policy=None):
                self.policy = dict(POLICY, **(policy or {}))
                self.checkouts = {}
                self.history = []

            def checkout(self, patron, isbn, when=None):
                when = when or dt.date.today()
                held = [c for c in self.checkouts.values() if c["patron"] == patron]
                if len(held) == self.policy["per_patron"]:
                    raise CirculationError("limit reached")
                if isbn in self.checkouts:
                    raise CirculationError(f"{isbn} is out")
                record = {"patron": patron, "isbn": isbn, "out": when,
                          "due": when + dt.timedelta(days=self.policy["days"]), "renewed": 0}
                self.checkouts[isbn] = record
                return record

            def extend(self, isbn, when=None):
                record = self.checkouts.get(isbn)
                if record is None:
                    raise CirculationError(f"{isbn} is not out")
                if record["renewed"] == self.policy["renewals"]:
                    raise CirculationError("no renewals left")
                record["renewed"] += 1
                record["due"] += dt.timedelta(days=self.policy["days"])
                return record["due"]

            def fee(self, record, when):
                overdue = max(0, (when - record["due"]).days)
                return round(min(overdue * self.policy["fee"], self.policy["fee_cap"]), 2)

            def checkin(self, isbn, when=None):
                when = when or dt.date.today()
                record = self.checkouts.pop(isbn, None)
                if record is None:
                    raise CirculationError(f"{isbn} was never checked out")
                charged = self.fee(record, when)
                self.history.append({**record, "back": when, "charged": charged})
                return charged

            def report(self):
                totals = {}
                for entry in self.history:
                    totals[entry["patron"]] = totals.get(entry["patron"], 0) + entry["charged"]
                return sorted(totals.items(), key=lambda item: -item[1])
        ''',
    "tests/test_desk.py": '''\
        import datetime as dt

        from desk.circulation import Desk


        def test_fees_are_capped():
            desk = Desk()
            start = dt.date(2024, 5, 1)
            desk.checkout("p1", "isbn-1", start)
            assert desk.checkin("isbn-1", start + dt.timedelta(days=200)) == 5.0
        ''',
    "README.md": "# Library desk\n\nA circulation desk for the capstone.\n",
}

TS_ORIGINAL = {
    "package.json": '{"name": "rate-limiter", "version": "1.0.0", "type": "module"}\n',
    "src/limiter.ts": '''\
        // Token buckets per client, refilled continuously, with a burst allowance.
        export interface BucketOptions {
          capacity: number;
          refillPerSecond: number;
        }

        interface Bucket {
          tokens: number;
          updatedAt: number;
        }

        export class RateLimiter {
          private buckets = new Map<string, Bucket>();

          constructor(private options: BucketOptions, private now: () => number = Date.now) {
            if (options.capacity <= 0 || options.refillPerSecond <= 0) {
              throw new RangeError("capacity and refill must be positive");
            }
          }

          private refill(bucket: Bucket): Bucket {
            const elapsed = (this.now() - bucket.updatedAt) / 1000;
            const tokens = Math.min(this.options.capacity, bucket.tokens + elapsed * this.options.refillPerSecond);
            return { tokens, updatedAt: this.now() };
          }

          take(client: string, cost = 1): { allowed: boolean; retryAfterMs: number } {
            const current = this.buckets.get(client) ?? { tokens: this.options.capacity, updatedAt: this.now() };
            const bucket = this.refill(current);
            if (bucket.tokens >= cost) {
              bucket.tokens -= cost;
              this.buckets.set(client, bucket);
              return { allowed: true, retryAfterMs: 0 };
            }
            this.buckets.set(client, bucket);
            const missing = cost - bucket.tokens;
            return { allowed: false, retryAfterMs: Math.ceil((missing / this.options.refillPerSecond) * 1000) };
          }

          forget(idleMs: number): number {
            let removed = 0;
            for (const [client, bucket] of this.buckets) {
              if (this.now() - bucket.updatedAt > idleMs) {
                this.buckets.delete(client);
                removed += 1;
              }
            }
            return removed;
          }
        }

        export function headersFor(result: { allowed: boolean; retryAfterMs: number }, limit: number): Record<string, string> {
          const headers: Record<string, string> = { "RateLimit-Limit": String(limit) };
          if (!result.allowed) {
            headers["Retry-After"] = String(Math.ceil(result.retryAfterMs / 1000));
          }
          return headers;
        }
        ''',
    "src/server.ts": '''\
        import { createServer, IncomingMessage, ServerResponse } from "node:http";
        import { RateLimiter, headersFor } from "./limiter.js";

        const limiter = new RateLimiter({ capacity: 20, refillPerSecond: 5 });

        function clientOf(request: IncomingMessage): string {
          const forwarded = request.headers["x-forwarded-for"];
          if (typeof forwarded === "string" && forwarded.length > 0) {
            return forwarded.split(",")[0].trim();
          }
          return request.socket.remoteAddress ?? "unknown";
        }

        export function handle(request: IncomingMessage, response: ServerResponse): void {
          const result = limiter.take(clientOf(request));
          for (const [name, value] of Object.entries(headersFor(result, 20))) {
            response.setHeader(name, value);
          }
          if (!result.allowed) {
            response.writeHead(429, { "Content-Type": "application/json" });
            response.end(JSON.stringify({ error: "too many requests", retryAfterMs: result.retryAfterMs }));
            return;
          }
          response.writeHead(200, { "Content-Type": "application/json" });
          response.end(JSON.stringify({ ok: true }));
        }

        export const server = createServer(handle);
        ''',
    "docs/slo.md": "# SLO\n\n99.9 % of requests answered within 50 ms.\n",
}

TS_HONEST = {
    "package.json": '{"name": "throttle", "version": "0.2.0", "type": "module"}\n',
    "src/window.ts": '''\
        /** Sliding-window request counting: every client may make `max` requests per `windowMs`. */
        type Clock = () => number;

        export class SlidingWindow {
          readonly hits: Record<string, number[]> = {};

          constructor(readonly max: number, readonly windowMs: number, readonly clock: Clock = () => Date.now()) {}

          check(key: string): number {
            const now = this.clock();
            const recent = (this.hits[key] || []).filter((at) => now - at < this.windowMs);
            this.hits[key] = recent;
            if (recent.length >= this.max) {
              return this.windowMs - (now - recent[0]);
            }
            recent.push(now);
            return 0;
          }

          remaining(key: string): number {
            const now = this.clock();
            const used = (this.hits[key] || []).filter((at) => now - at < this.windowMs).length;
            return Math.max(0, this.max - used);
          }
        }

        export function middleware(windowed: SlidingWindow) {
          return (req: { ip?: string }, res: { status: (code: number) => { json: (body: object) => void }; set: (name: string, value: string) => void }, next: () => void) => {
            const key = req.ip || "anonymous";
            const wait = windowed.check(key);
            res.set("X-RateLimit-Remaining", String(windowed.remaining(key)));
            if (wait > 0) {
              res.set("Retry-After", String(Math.ceil(wait / 1000)));
              res.status(429).json({ message: "slow down" });
              return;
            }
            next();
          };
        }
        ''',
    "README.md": "# Throttle\n\nSliding-window limits for the capstone API.\n",
}
