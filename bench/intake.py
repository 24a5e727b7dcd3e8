"""Benchmark session intake through the batch endpoint of a real uvicorn server.

Creates a fresh database on the PostgreSQL server at TEST_DATABASE_ADMIN_URL (default
127.0.0.1:5432, user postgres), starts `ledger serve` on a free 127.0.0.1 port, and has N
concurrent clients post pre-serialized batches of valid sessions (validated, scored, journaled,
balances updated). Prints sessions per second and the latency of a batch. The database is
dropped at the end.

    .venv/bin/python bench/intake.py --clients 8 --sessions 48000 --batch 250
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import psycopg

from ledger.auth.keys import generate_api_key

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import free_port, start_api  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def make_batches(sessions: int, batch: int, contributors: int) -> list[bytes]:
    """Return JSON bodies of valid sessions spread over `contributors` addresses."""
    now = datetime.now(tz=UTC)
    addresses = ["0x" + hashlib.sha256(f"bench-{i}".encode()).hexdigest()[:40] for i in range(contributors)]
    bodies = []
    for start in range(0, sessions, batch):
        items = []
        for index in range(start, min(start + batch, sessions)):
            began = now - timedelta(hours=2, seconds=index % 3600)
            items.append(
                {
                    "session_id": str(uuid.uuid4()),
                    "contributor": addresses[index % contributors],
                    "started_at": began.isoformat(),
                    "ended_at": (began + timedelta(minutes=20)).isoformat(),
                    "active_seconds": 900,
                    "clicks": 300,
                    "keystrokes": 200,
                    "scrolls": 100,
                    "navigations": 20,
                    "categories": ["productivity"],
                    "content_hash": hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
                    "client_version": "bench/1",
                }
            )
        bodies.append(json.dumps({"sessions": items}).encode())
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--sessions", type=int, default=48_000, help="sessions in all (default 48,000)")
    parser.add_argument("--batch", type=int, default=250, help="sessions per request (default 250)")
    parser.add_argument("--contributors", type=int, default=20_000, help="distinct contributors (default 20,000)")
    parser.add_argument("--workers", type=int, default=2, help="API worker processes (default 2, one per core)")
    args = parser.parse_args()

    name = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    key, _ = generate_api_key()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LEDGER_COLLECTOR_API_KEY": key,
        "LEDGER_RATE_LIMIT_SESSIONS_PER_HOUR": "1000000",
        "LEDGER_LOG_LEVEL": "WARNING",
    }
    server = None
    try:
        subprocess.run([sys.executable, "-m", "ledger.cli", "migrate"], env=env, check=True, cwd=ROOT)
        server = start_api(env, port=port, workers=args.workers, timeout=30)
        base = f"http://127.0.0.1:{port}"

        print(f"preparing {args.sessions:,} sessions in batches of {args.batch}")
        bodies = make_batches(args.sessions, args.batch, args.contributors)
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        next_index = iter(range(len(bodies)))

        def client() -> None:
            with httpx2.Client(base_url=base, timeout=120, headers={"X-API-Key": key, "Content-Type": "application/json"}) as http:
                while True:
                    with lock:
                        index = next(next_index, None)
                    if index is None:
                        return
                    started = time.perf_counter()
                    response = http.post("/v1/sessions/batch", content=bodies[index])
                    elapsed = time.perf_counter() - started
                    with lock:
                        latencies.append(elapsed)
                        if response.status_code != 200:
                            failures.append(f"{response.status_code}: {response.text[:200]}")
                        elif any(r["status"] != "scored" for r in response.json()["results"]):
                            failures.append("a session was not scored")

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started

        with psycopg.connect(database_url) as check:
            scored = check.execute("SELECT count(*) FROM sessions WHERE status = 'scored'").fetchone()[0]
            total = check.execute("SELECT coalesce(sum(amount), 0) FROM journal_postings").fetchone()[0]
        latencies.sort()
        print(f"API workers {args.workers}, clients {args.clients}, batch {args.batch}, sessions {args.sessions:,}, scored in database {scored:,}")
        print(f"wall {wall:.2f} s -> {scored / wall:,.0f} sessions/s (target >= 3,000)")
        print(
            f"batch latency: median {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.0f} ms"
        )
        print(f"journal sum {total} (must be 0), failures {len(failures)}")
        for failure in failures[:5]:
            print(f"  {failure}")
        return 0 if not failures and total == 0 and scored == args.sessions else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
