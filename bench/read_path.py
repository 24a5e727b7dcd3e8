"""Benchmark the public read path: earnings and claim payloads next to a constant route.

Builds its own data in a fresh database on the PostgreSQL server at --admin-url: N contributors
with sessions spread over two epochs. Epoch 1 is closed and built by the real code and anchored
on a local anvil by the real anchoring code, so it is active with a stored claims tree of N leaves.
Epoch 2's sessions are inserted without journal entries: the read path never reads the journal,
only the balance table, so they add table size without hours of generation.

It then starts `ledger serve --workers 2` on a free 127.0.0.1 port and drives it with wrk (Debian
package `wrk`, C, its own process) at --connections concurrent connections, for each route in
turn: /healthz (a constant), /v1/contributors/{address}/earnings and /v1/claims/{address}, the
address drawn at random per request from all contributors. It does so twice: flat out, each
client sending its next request as soon as a response arrives, and then with each client pausing
--think-ms between requests. It prints requests per second, latency percentiles, the ratio to the
constant route and the targets, then drops the database.

    .venv/bin/python bench/read_path.py                                # 1M contributors, 10M sessions
    .venv/bin/python bench/read_path.py --contributors 100000 --sessions 1000000
    .venv/bin/python bench/read_path.py --keep-database                # leave the data for reuse
    .venv/bin/python bench/read_path.py --database ledger_read_1a2b3c4d  # measure again on it

Targets (2-core machine, 1M contributors, 10M sessions, 50 clients): each read route at least
half the constant route's throughput, p99 at most 50 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from epoch_close import contributor_addresses, database_url, generate  # noqa: E402
from serving import free_port, start_api  # noqa: E402

from ledger.chain.anchoring import drive_anchoring  # noqa: E402
from ledger.chain.client import ChainContext, connect  # noqa: E402
from ledger.chain.contracts import deploy_contracts  # noqa: E402
from ledger.chain.contracts import Deployment  # noqa: E402
from ledger.chain.devnet import AnvilNode, start_anvil  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.db import migrate, session_factory, unit_of_work  # noqa: E402
from ledger.epochs.build import build_epoch  # noqa: E402
from ledger.epochs.service import close_epoch  # noqa: E402

DEFAULT_ADMIN_URL = os.environ.get("BENCH_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
EMISSION = 1_000_000 * 10**18

LUA_RANDOM_PATH = """
local addresses = {}
for line in io.lines("%(file)s") do addresses[#addresses + 1] = line end
math.randomseed(%(seed)d)
request = function()
  local address = addresses[math.random(#addresses)]
  return wrk.format("GET", string.format("%(template)s", address))
end
"""


# wrk waits this long after each response before the connection sends its next request, so
# each client behaves like a person or service that reads a result before asking again.
LUA_THINK_TIME = """
delay = function()
  return %(think_ms)d
end
"""


def add_epoch_two_sessions(url: str, contributors: int, count: int, at: datetime) -> None:
    """Insert `count` scored sessions into open epoch 2, spread over the contributors."""
    with psycopg.connect(url) as connection:
        connection.execute("SET session_replication_role = replica")
        connection.execute(
            """
            INSERT INTO sessions (
                session_id, contributor, started_at, ended_at, active_seconds, clicks, keystrokes,
                scrolls, navigations, categories, content_hash, client_version, payload_hash,
                status, points, policy_version, epoch)
            SELECT md5('epoch-two-' || g)::uuid, c.address,
                   %(at)s + (g %% 3600) * interval '1 second',
                   %(at)s + (g %% 3600 + 1200) * interval '1 second',
                   1200, 300, 200, 40, 10, ARRAY['travel']::varchar[],
                   sha256(('content-two-' || g)::bytea), 'bench/1', sha256(('payload-two-' || g)::bytea),
                   'scored', 100 + (g::bigint * 104729) %% 1900, 1, 2
            FROM generate_series(0, %(count)s - 1) AS g
            JOIN (SELECT address, row_number() OVER (ORDER BY address) - 1 AS n FROM contributors) c
              ON c.n = g %% %(contributors)s
            """,
            {"at": at, "count": count, "contributors": contributors},
        )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def deploy(node: AnvilNode) -> Deployment:
    """Deploy the contracts on a fresh anvil; the addresses are the same on every fresh node."""
    anchorer = node.accounts[0]
    return deploy_contracts(
        connect(node.url), anchorer, admin=anchorer.address, anchorer=anchorer.address,
        guardian=anchorer.address, emission_per_epoch=EMISSION, challenge_period=0,
    )


def prepare(url: str, node: AnvilNode, contributors: int, sessions: int, per_contributor_epoch_one: int) -> Deployment:
    """Generate the data, close, build and anchor epoch 1, then fill epoch 2; return the deployment."""
    migrate(url)
    opened = datetime.now(tz=UTC) - timedelta(days=2)
    started = time.perf_counter()
    generate(url, contributors, per_contributor_epoch_one, opened)
    epoch_one_sessions = contributors * per_contributor_epoch_one
    print(f"generated {contributors:,} contributors and {epoch_one_sessions:,} epoch-1 sessions in {time.perf_counter() - started:.0f} s")

    settings = Settings(_env_file=None, emission_per_epoch=EMISSION, database_url=url)
    factory = session_factory(url)
    started = time.perf_counter()
    with unit_of_work(factory) as db:
        closed = close_epoch(db, settings=settings, now=datetime.now(tz=UTC) - timedelta(days=1), force=True)
        build_epoch(db, closed.number)
    print(f"closed and built epoch 1 in {time.perf_counter() - started:.0f} s")

    remaining = max(sessions - epoch_one_sessions, 0)
    started = time.perf_counter()
    add_epoch_two_sessions(url, contributors, remaining, datetime.now(tz=UTC) - timedelta(hours=12))
    print(f"added {remaining:,} epoch-2 sessions in {time.perf_counter() - started:.0f} s")

    deployment = deploy(node)
    chain = ChainContext.open(node.url, deployment)
    for _ in range(3):
        drive_anchoring(factory, chain, node.accounts[0], confirmations=1)
    with psycopg.connect(url) as connection:
        status = connection.execute("SELECT status FROM epochs WHERE number = 1").fetchone()[0]
    if status != "active":
        raise SystemExit(f"epoch 1 is {status} after anchoring, expected active")
    print("epoch 1 anchored on anvil and active")
    return deployment


def check_reused(url: str, contributors: int) -> None:
    """Stop with a clear message when a kept database does not fit this run."""
    with psycopg.connect(url) as connection:
        count = connection.execute("SELECT count(*) FROM contributors").fetchone()[0]
        active = connection.execute("SELECT count(*) FROM epochs WHERE number = 1 AND status = 'active'").fetchone()[0]
    if count != contributors:
        raise SystemExit(f"the kept database has {count:,} contributors, not {contributors:,}: pass --contributors {count}")
    if not active:
        raise SystemExit("epoch 1 of the kept database is not active: generate the data again without --database")


def _largest_worker_rss_mib(server_pid: int) -> float:
    """Return the resident memory of the largest API process of `ledger serve`, in MiB.

    With several workers those are the children of `server_pid`; with one, it is the process.
    """
    largest = 0
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    for process in children or [str(server_pid)]:
        status = Path(f"/proc/{process}/status").read_text()
        largest = max(largest, int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)))
    return largest / 1024


def download_claims_tree(url: str, server_pid: int) -> dict:
    """Download a claims-tree dump while a thread samples the API workers' memory every 20 ms."""
    before = _largest_worker_rss_mib(server_pid)
    samples = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            samples.append(_largest_worker_rss_mib(server_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = 0
    started = time.perf_counter()
    try:
        with httpx2.stream("GET", url, timeout=600) as response:
            for piece in response.iter_bytes():
                size += len(piece)
    finally:
        done.set()
        sampler.join()
    return {
        "status": response.status_code,
        "bytes": size,
        "seconds": time.perf_counter() - started,
        "rss_before_mib": before,
        "rss_peak_mib": max(samples),
    }


def run_wrk(url: str, *, connections: int, seconds: int, script: Path | None) -> dict:
    """Run wrk against `url` and return requests per second, latency percentiles and errors."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for percentile in ("50", "90", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        value, unit = float(match.group(1)), match.group(2)
        figures[f"p{percentile}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    figures["non_2xx"] = int(errors.group(1)) if errors else 0
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contributors", type=int, default=1_000_000, help="contributors (default 1,000,000)")
    parser.add_argument("--sessions", type=int, default=10_000_000, help="sessions in all (default 10,000,000)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=int, default=20, help="duration of each wrk run (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="API worker processes (default 2)")
    parser.add_argument(
        "--think-ms",
        type=int,
        default=100,
        help="also measure with each client pausing this long between requests (default 100; 0 skips it)",
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL URL allowed to create databases")
    parser.add_argument("--keep-database", action="store_true", help="leave the generated database for --database")
    parser.add_argument(
        "--database",
        metavar="NAME",
        help="measure on a database a run with --keep-database left, with the same --contributors (kept too)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2

    per_contributor_epoch_one = max(1, min(3, args.sessions // args.contributors))
    epoch_one_sessions = args.contributors * per_contributor_epoch_one
    reuse = args.database is not None
    name = args.database or f"ledger_read_{uuid.uuid4().hex[:8]}"
    url = database_url(args.admin_url, name)
    workdir = Path(tempfile.mkdtemp(prefix="ledger-read-bench-"))
    if not reuse:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    server = None
    node = None
    try:
        node = start_anvil()
        if reuse:
            deployment = deploy(node)
            check_reused(url, args.contributors)
            print(f"measuring on the kept database {name}")
        else:
            deployment = prepare(url, node, args.contributors, args.sessions, per_contributor_epoch_one)
        deployment_file = workdir / "deployment.json"
        deployment.save(deployment_file)

        addresses_file = workdir / "addresses.txt"
        addresses_file.write_text("\n".join(contributor_addresses(args.contributors)) + "\n")
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "RPC_URL": node.url,
            "LEDGER_DEPLOYMENT_FILE": str(deployment_file),
            "LEDGER_CHAIN_ID": str(deployment.chain_id),
            "LEDGER_EMISSION_PER_EPOCH": str(EMISSION),
            "LEDGER_EPOCH_DURATION_SECONDS": str(30 * 86_400),
            "LEDGER_PUBLIC_RATE_LIMIT_PER_MINUTE": str(10**9),
            "LEDGER_PUBLIC_RATE_LIMIT_BURST": str(10**9),
            "LEDGER_LOG_LEVEL": "WARNING",
        }
        server = start_api(env, port=port, workers=args.workers, timeout=60)
        base = f"http://127.0.0.1:{port}"

        sample = contributor_addresses(min(args.contributors, 3))
        for path in (f"/v1/contributors/{sample[0]}/earnings", f"/v1/claims/{sample[0]}"):
            response = httpx2.get(base + path, timeout=10)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} returned {response.status_code}: {response.text[:300]}")

        routes = [
            ("constant /healthz", "/healthz"),
            ("earnings", "/v1/contributors/%s/earnings"),
            ("claim payload", "/v1/claims/%s"),
        ]
        passes = [("flat out", 0)] + ([(f"{args.think_ms} ms think time", args.think_ms)] if args.think_ms else [])
        results: dict[tuple[str, str], dict] = {}
        for mode, think_ms in passes:
            print(f"-- {args.connections} clients, {mode}")
            for label, template in routes:
                script = workdir / f"{label.replace(' ', '_').replace('/', '')}_{think_ms}.lua"
                script.write_text(
                    LUA_RANDOM_PATH % {"file": addresses_file, "seed": 7, "template": template}
                    + (LUA_THINK_TIME % {"think_ms": think_ms} if think_ms else "")
                )
                run_wrk(base, connections=args.connections, seconds=3, script=script)  # warm-up
                figures = results[(mode, label)] = run_wrk(base, connections=args.connections, seconds=args.seconds, script=script)
                print(
                    f"{label:<18} {figures['rps']:>9,.0f} req/s  p50 {figures['p50_ms']:6.1f} ms  "
                    f"p90 {figures['p90_ms']:6.1f} ms  p99 {figures['p99_ms']:6.1f} ms  non-2xx {figures['non_2xx']}"
                )

        print()
        print("| clients | route | req/s | ratio to constant (target >= 0.50) | p50 ms | p99 ms (target <= 50) |")
        print("|---|---|---:|---:|---:|---:|")
        for (mode, label), figures in results.items():
            constant = results[(mode, "constant /healthz")]["rps"]
            print(
                f"| {args.connections}, {mode} | {label} | {figures['rps']:,.0f} | {figures['rps'] / constant:.2f} "
                f"| {figures['p50_ms']:.1f} | {figures['p99_ms']:.1f} |"
            )

        dump = download_claims_tree(f"{base}/v1/epochs/1/claims-tree", server.pid)
        print(
            f"\nclaims tree of epoch 1 over HTTP: {dump['bytes'] / 2**20:,.1f} MiB in {dump['seconds']:.1f} s, "
            f"API worker memory {dump['rss_before_mib']:,.0f} MiB before, at most {dump['rss_peak_mib']:,.0f} MiB during"
        )
        return 0 if all(f["non_2xx"] == 0 for f in results.values()) and dump["status"] == 200 else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if node is not None:
            node.stop()
        if args.keep_database or reuse:
            print(f"kept database {name}: measure again with --database {name} --contributors {args.contributors}")
        else:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
