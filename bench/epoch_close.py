"""Benchmark closing and building an epoch: allocation, both Merkle trees, stored proofs, dump.

For each size it creates a fresh database on the PostgreSQL server at --admin-url, migrates it,
generates N contributors and N*K scored sessions in one open epoch together with their journal
entries with COPY and INSERT ... SELECT (about 3 minutes for 1M contributors). Then, in a fresh
child process, it times:

    close     close_epoch(): sum the epoch's journal postings per contributor and allocate
    build     build_epoch(): cumulative entitlements, claims and contributions trees, stored
    dump      render the claims tree's standard-v1 dump from storage as JSON text
    commit    commit the transaction

It checks one claims proof and one contribution proof read back from storage against the
roots. It prints the peak memory of the child process and the peak private memory of the
PostgreSQL backend that served it, parallel workers included. Then it drops the database.

    .venv/bin/python bench/epoch_close.py                      # 10k and 100k contributors
    .venv/bin/python bench/epoch_close.py --full               # 10k, 100k and 1M
    .venv/bin/python bench/epoch_close.py --contributors 50000 --sessions-per-contributor 2

Targets (1M contributors, 3M sessions, 2-core machine): at most 90 s and 4 GiB.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.config import Settings  # noqa: E402
from ledger.db import migrate  # noqa: E402
from ledger.merkle.abi import to_checksum_address  # noqa: E402

DEFAULT_ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
#: 1,000,000 tokens of 18 decimals, the default emission per epoch.
EMISSION = 1_000_000 * 10**18
GIB = 1024**3
MIB = 1024**2


def database_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


# Data generation


def contributor_addresses(count: int) -> list[str]:
    """Return `count` distinct checksummed addresses derived from their index."""
    addresses = []
    for index in range(count):
        raw = uuid.uuid5(uuid.NAMESPACE_OID, f"contributor-{index}").bytes
        addresses.append(to_checksum_address("0x" + (raw + index.to_bytes(4, "big")).hex()))
    return addresses


def generate(url: str, contributors: int, sessions_per_contributor: int, opened_at: datetime) -> None:
    """Fill a migrated database with one open epoch of scored sessions and their journal.

    Rows go in with `session_replication_role = replica`, which skips triggers: the foreign
    key checks and the deferred per-entry balance check of the journal. The data satisfies
    both by construction (every entry posts +points and -points), and `check` at the end
    verifies the journal balances.
    """
    addresses = contributor_addresses(contributors)
    session_count = contributors * sessions_per_contributor
    with psycopg.connect(url) as connection:
        connection.execute("SET session_replication_role = replica")
        connection.execute("CREATE UNLOGGED TABLE bench_contributors (n integer PRIMARY KEY, address text)")
        with connection.cursor().copy("COPY bench_contributors (n, address) FROM STDIN") as copy:
            for start in range(0, contributors, 100_000):
                chunk = addresses[start : start + 100_000]
                copy.write("".join(f"{start + i}\t{a}\n" for i, a in enumerate(chunk)))
        connection.execute("INSERT INTO contributors (address) SELECT address FROM bench_contributors")
        connection.execute(
            "INSERT INTO epochs (number, status, opened_at, emission, rollover) VALUES (1, 'open', %s, %s, 0)",
            (opened_at, EMISSION),
        )
        # Points vary per session (pseudo-random from the index) so remainders differ, and a
        # few contributors end up with equal totals to exercise the tie rule.
        connection.execute(
            """
            INSERT INTO sessions (
                session_id, contributor, started_at, ended_at, active_seconds, clicks, keystrokes,
                scrolls, navigations, categories, content_hash, client_version, payload_hash,
                status, points, policy_version, epoch)
            SELECT md5('session-' || g)::uuid, c.address,
                   %(at)s + (g %% 3600) * interval '1 second',
                   %(at)s + (g %% 3600 + 1200) * interval '1 second',
                   1200, 300, 200, 40, 10, ARRAY['shopping']::varchar[],
                   sha256(('content-' || g)::bytea), 'bench/1', sha256(('payload-' || g)::bytea),
                   'scored', 100 + (g::bigint * 7919) %% 1900, 1, 1
            FROM generate_series(0, %(sessions)s - 1) AS g
            JOIN bench_contributors c ON c.n = g %% %(contributors)s
            """,
            {"at": opened_at + timedelta(minutes=5), "sessions": session_count, "contributors": contributors},
        )
        connection.execute(
            """
            INSERT INTO journal_entries (idempotency_key, kind, epoch, session_id)
            SELECT 'score:' || session_id, 'score', 1, session_id FROM sessions ORDER BY session_id
            """
        )
        connection.execute(
            """
            INSERT INTO journal_postings (entry_id, account, amount)
            SELECT e.id, leg.account, leg.amount
            FROM journal_entries e
            JOIN sessions s ON s.session_id = e.session_id
            CROSS JOIN LATERAL (VALUES (s.contributor, s.points), ('emission', -s.points)) AS leg(account, amount)
            """
        )
        connection.execute(
            "INSERT INTO point_balances (account, balance) "
            "SELECT account, sum(amount) FROM journal_postings GROUP BY account"
        )
        connection.execute("DROP TABLE bench_contributors")
        unbalanced = connection.execute(
            "SELECT count(*) FROM (SELECT entry_id FROM journal_postings GROUP BY entry_id "
            "HAVING sum(amount) <> 0) AS t"
        ).fetchone()[0]
        if unbalanced:
            raise RuntimeError(f"generated journal has {unbalanced} unbalanced entries")
    # VACUUM cannot run in a transaction block; autovacuum would have run on a live ledger.
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


# Measurement


class PostgresMemorySampler(threading.Thread):
    """Sample the private memory (RssAnon) of one backend and its parallel workers.

    Shared memory (shared_buffers) is excluded: it is sized by the server configuration, not by
    this workload. Readable only when the server runs on this machine and /proc shows its
    processes; otherwise `peak_bytes` stays None.
    """

    def __init__(self, backend_pid: int) -> None:
        super().__init__(daemon=True)
        self.backend_pid = backend_pid
        self.peak_bytes: int | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            total = self._sample()
            if total is not None:
                self.peak_bytes = max(self.peak_bytes or 0, total)

    def _sample(self) -> int | None:
        worker_tag = f"parallel worker for PID {self.backend_pid}".encode()
        total = None
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                if pid != self.backend_pid:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        if worker_tag not in handle.read():
                            continue
                with open(f"/proc/{pid}/status") as handle:
                    for line in handle:
                        if line.startswith("RssAnon:"):
                            total = (total or 0) + int(line.split()[1]) * 1024
                            break
            except OSError:
                continue
        return total


def run_close(url: str, results: multiprocessing.connection.Connection) -> None:
    """Close and build epoch 1 in this (fresh) process and send back the figures."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from ledger.earnings.service import claim_proof, contribution_proof
    from ledger.epochs.build import CLAIMS, build_epoch, epoch_tree_dump_json
    from ledger.epochs.service import close_epoch
    from ledger.merkle import CLAIM_LEAF_ENCODING, CONTRIBUTION_LEAF_ENCODING, verify
    from ledger.models import EpochStatus

    settings = Settings(_env_file=None, emission_per_epoch=EMISSION, epoch_duration_seconds=86_400)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    figures: dict[str, float | int | str | None] = {}
    with Session(engine) as db:
        backend_pid = db.scalar(text("SELECT pg_backend_pid()"))
        sampler = PostgresMemorySampler(backend_pid)
        sampler.start()
        now = datetime.now(tz=UTC)

        started = time.perf_counter()
        epoch = close_epoch(db, settings=settings, now=now, force=True)
        closed = time.perf_counter()
        build_epoch(db, epoch.number)
        built = time.perf_counter()
        dump_size = sum(len(part) for part in epoch_tree_dump_json(db, epoch.number, CLAIMS))
        dumped = time.perf_counter()
        db.commit()
        committed = time.perf_counter()
        sampler.stopped.set()
        sampler.join()

        figures.update(
            close=closed - started,
            build=built - closed,
            dump=dumped - built,
            commit=committed - dumped,
            total=committed - started,
            dump_bytes=dump_size,
            rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            postgres_bytes=sampler.peak_bytes,
        )

        # Read one proof of each kind back the way the API serves it, and check it.
        db.execute(text("UPDATE epochs SET status = :active WHERE number = 1"), {"active": EpochStatus.ACTIVE.value})
        account = db.scalar(text("SELECT contributor FROM allocations WHERE epoch = 1 ORDER BY tokens DESC LIMIT 1"))
        claim = claim_proof(db, account, distributor=None, chain_id=None)
        claim_ok = verify(claim.root, CLAIM_LEAF_ENCODING, [claim.account, claim.cumulative_amount], list(claim.proof))
        session_id = db.scalar(text("SELECT session_id FROM sessions WHERE epoch = 1 LIMIT 1"))
        contribution = contribution_proof(db, session_id, distributor=None, chain_id=None)
        contribution_ok = verify(
            contribution.root,
            CONTRIBUTION_LEAF_ENCODING,
            [contribution.session_id, contribution.content_hash, contribution.contributor, contribution.points],
            list(contribution.proof),
        )
        db.rollback()
        figures.update(
            claim_proof_length=len(claim.proof),
            contribution_proof_length=len(contribution.proof),
            proofs_verified=claim_ok and contribution_ok,
        )
        counts = db.execute(
            text(
                "SELECT (SELECT count(*) FROM allocations WHERE epoch = 1),"
                " (SELECT sum(tokens) FROM allocations WHERE epoch = 1)"
            )
        ).one()
        figures.update(allocations=counts[0], allocated_exactly=int(counts[1]) == EMISSION)
    engine.dispose()
    results.send(figures)


def bench_size(admin_url: str, contributors: int, sessions_per_contributor: int, keep: bool) -> dict:
    name = f"ledger_bench_{uuid.uuid4().hex[:12]}"
    url = database_url(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(url)
        opened_at = datetime.now(tz=UTC) - timedelta(days=2)
        started = time.perf_counter()
        generate(url, contributors, sessions_per_contributor, opened_at)
        generation_seconds = time.perf_counter() - started

        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=run_close, args=(url, sender))
        child.start()
        sender.close()
        figures = receiver.recv()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"the close process failed with exit code {child.exitcode}")
        figures["generation"] = generation_seconds
        figures["contributors"] = contributors
        figures["sessions"] = contributors * sessions_per_contributor
        return figures
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def print_run(figures: dict) -> None:
    postgres = figures["postgres_bytes"]
    postgres_text = "not measurable" if postgres is None else f"{postgres / MIB:,.0f} MiB"
    print(
        f"  {figures['contributors']:,} contributors, {figures['sessions']:,} sessions "
        f"(generated in {figures['generation']:.1f} s)\n"
        f"  close {figures['close']:.2f} s, build {figures['build']:.2f} s, "
        f"claims dump {figures['dump']:.2f} s ({figures['dump_bytes'] / MIB:,.0f} MiB), "
        f"commit {figures['commit']:.2f} s\n"
        f"  total {figures['total']:.2f} s; peak RSS of the process {figures['rss_bytes'] / MIB:,.0f} MiB, "
        f"PostgreSQL backend private memory {postgres_text}\n"
        f"  {figures['allocations']:,} allocations summing to the emission: {figures['allocated_exactly']}; "
        f"proofs read back and verified: {figures['proofs_verified']}",
        flush=True,
    )


def print_table(runs: list[dict]) -> None:
    print("\ncontributors    sessions        total  per 1k contributors  claims proof  contribution proof  log2(contributors)")
    for figures in runs:
        per_thousand = figures["total"] / figures["contributors"] * 1000
        print(
            f"{figures['contributors']:>12,}  {figures['sessions']:>10,}  {figures['total']:>9.2f} s  "
            f"{per_thousand:>17.3f} s  {figures['claim_proof_length']:>12}  "
            f"{figures['contribution_proof_length']:>18}  {math.log2(figures['contributors']):>18.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contributors", type=int, help="run one size with this many contributors")
    parser.add_argument(
        "--sessions-per-contributor", type=int, default=3, help="scored sessions per contributor (default 3)"
    )
    parser.add_argument("--full", action="store_true", help="also run 1,000,000 contributors")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="URL of a user that may create databases")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    arguments = parser.parse_args()
    if arguments.contributors is not None and arguments.contributors < 2:
        parser.error("--contributors must be at least 2")
    if arguments.sessions_per_contributor < 1:
        parser.error("--sessions-per-contributor must be at least 1")

    if arguments.contributors is not None:
        sizes = [arguments.contributors]
    else:
        sizes = [10_000, 100_000] + ([1_000_000] if arguments.full else [])

    runs = []
    for contributors in sizes:
        print(f"epoch close with {contributors:,} contributors", flush=True)
        figures = bench_size(arguments.admin_url, contributors, arguments.sessions_per_contributor, arguments.keep)
        print_run(figures)
        runs.append(figures)
        if not figures["proofs_verified"] or not figures["allocated_exactly"]:
            print("FAILED: a proof read back from storage did not verify, or the allocation is inexact", file=sys.stderr)
            return 1
    print_table(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
