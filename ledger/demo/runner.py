"""Orchestration of `ledger demo`: start everything, drive it as the real world would, check it.

The stages are: the database, the chain and contracts, the API under uvicorn and the scheduler.
Then come epochs of submissions (with invalid, duplicate, sensitive, paused, resubmitted and
withdrawn sessions) and claims signed by each contributor's own key. Last, every claim and a
sample of contribution proofs are verified against the chain.
"""

import logging
import random
import socket
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select
from web3 import Web3

from api.app import create_app
from api.ratelimit import RateLimit
from ledger.auth.keys import Scope
from ledger.auth.service import create_api_key
from ledger.chain.client import ChainContext, connect, load_anchorer
from ledger.chain.contracts import deploy_contracts
from ledger.chain.devnet import start_anvil
from ledger.chain.verify import verify_against_chain
from ledger.config import Settings
from ledger.db import migrate, session_factory, unit_of_work
from ledger.demo.client import ApiError, DemoClient
from ledger.demo.population import (
    DemoContributor,
    PlannedSession,
    conflicting_copy,
    make_contributors,
    ordinary_payload,
    paused_session,
    plan_wave,
)
from ledger.demo.report import DemoReport, print_report
from ledger.epochs.service import ensure_open_epoch
from ledger.journal.service import check_journal
from ledger.merkle import ContributionProof, load_proof_file
from ledger.chain.indexer import CURSOR_NAME
from ledger.models import Allocation, AnchorTransaction, Epoch, IndexerCursor
from ledger.runtime import embedded_postgres
from ledger.worker import Worker

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
WAIT_TIMEOUT_SECONDS = 180
FUNDING_WEI = 10**17
DEMO_RATE_LIMIT = 40
PROOF_SAMPLE = 60


@dataclass(frozen=True)
class DemoOptions:
    """Options of a demo run."""

    contributors: int = 200
    sessions: int = 3000
    epochs: int = 3
    seed: int = 7
    epoch_seconds: int = 10
    report_json: Path | None = None


@dataclass
class DemoState:
    """Outcomes the demo observed, for the checks and the report."""

    outcomes: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    claim_gas: list[int] = field(default_factory=list)
    claims_sent: int = 0
    scored: list[tuple[DemoContributor, PlannedSession]] = field(default_factory=list)
    withdrawn: set[str] = field(default_factory=set)

    def fail(self, message: str) -> None:
        """Record a failed check."""
        self.failures.append(message)
        logger.error("demo.check_failed %s", message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def run_demo(options: DemoOptions, settings: Settings) -> int:
    """Run the demo and return the exit status: 0 when every check passed."""
    for name in ("contributors", "sessions", "epochs"):
        if getattr(options, name) < 1:
            raise SystemExit(f"error: --{name} must be at least 1")
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ledger-demo-"))
    log_file = workdir / "demo.log"
    _log_to_file(log_file)
    console.print(f"[bold]Contributor Ledger demo[/bold]: {options.contributors} contributors, about {options.sessions} sessions, {options.epochs} epochs")
    console.print(f"service logs: {log_file}")

    with ExitStack() as stack:
        with console.status("starting PostgreSQL"):
            url = settings.database_url or stack.enter_context(embedded_postgres())
            migrate(url)
        factory = session_factory(url)
        with factory() as db:
            if db.scalar(select(func.count()).select_from(Epoch)):
                console.print("[red]error: the database already contains epochs, but the demo needs an empty database (unset DATABASE_URL to use an embedded one)")
                return 2
        console.print(f"database ready ({'configured' if settings.database_url else 'embedded pgserver'})")

        with console.status("starting the chain and deploying contracts"):
            if settings.rpc_url:
                rpc_url = settings.rpc_url
                anchorer = load_anchorer(settings)
                funder = anchorer
            else:
                node = stack.enter_context(start_anvil())
                rpc_url = node.url
                anchorer, funder = node.accounts[0], node.accounts[1]
            w3 = connect(rpc_url, expected_chain_id=settings.chain_id)
            deployment = deploy_contracts(
                w3,
                anchorer,
                admin=anchorer.address,
                anchorer=anchorer.address,
                guardian=anchorer.address,
                emission_per_epoch=settings.emission_per_epoch,
                challenge_period=settings.challenge_period_seconds,
            )
            deployment_file = workdir / "deployment.json"
            deployment.save(deployment_file)
        console.print(f"contracts deployed on chain {deployment.chain_id}: distributor {deployment.distributor_address}, token {deployment.token_address}")

        port = _free_port()
        demo_settings = settings.model_copy(
            update={
                "database_url": url,
                "rpc_url": rpc_url,
                "deployment_file": str(deployment_file),
                "epoch_duration_seconds": options.epoch_seconds,
                "scheduler_interval_seconds": 0.5,
                "rate_limit_sessions_per_hour": DEMO_RATE_LIMIT,
                "auth_domain": f"127.0.0.1:{port}",
                "chain_id": deployment.chain_id,
            }
        )
        chain = ChainContext.open(rpc_url, deployment)

        contributors = make_contributors(options.contributors, seed=options.seed)
        _fund(console, w3, funder, contributors, chain_id=deployment.chain_id)

        with unit_of_work(factory) as db:
            collector_key = create_api_key(db, name="demo collector", scope=Scope.sessions_write)
        # Every demo contributor connects from 127.0.0.1, so one client address carries them all.
        app = create_app(demo_settings, factory, chain, public_rate_limit=RateLimit(per_minute=600_000, burst=100_000))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
        server_thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        server_thread.start()
        stack.callback(server_thread.join, 10)
        stack.callback(setattr, server, "should_exit", True)
        _wait(lambda: server.started, "the API to start")
        console.print(f"API serving on http://127.0.0.1:{port} (OpenAPI at /docs)")

        with unit_of_work(factory) as db:
            ensure_open_epoch(db, settings=demo_settings, now=datetime.now(tz=UTC))
        worker = Worker(settings=demo_settings, factory=factory, chain=chain, anchorer=anchorer)
        worker.start()
        stack.callback(worker.stop)

        client = DemoClient(f"http://127.0.0.1:{port}", collector_key, domain=demo_settings.auth_domain)
        stack.callback(client.close)
        state = DemoState()
        rng = random.Random(options.seed)
        try:
            _drive(console, client, chain, w3, contributors, options, state, rng)
            _verify(console, client, chain, w3, factory, contributors, rpc_url, state, rng)
        except (ApiError, TimeoutError) as error:
            state.fail(str(error))

        report = DemoReport.collect(
            factory,
            chain,
            state=state,
            wall_seconds=time.monotonic() - started,
            settings=demo_settings,
        )
        print_report(console, report)
        if options.report_json:
            options.report_json.write_text(report.to_json(), encoding="utf-8")
        if state.failures:
            console.print(f"[red bold]{len(state.failures)} check(s) failed[/red bold]")
            for message in state.failures[:20]:
                console.print(f"  [red]- {message}")
            return 1
        console.print("[green bold]all checks passed[/green bold]")
        return 0


def _log_to_file(path: Path) -> None:
    from ledger.logs import _RequestIdFilter  # noqa: PLC0415

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s request_id=%(request_id)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    for noisy in ("httpx2", "httpcore2", "web3", "urllib3", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _wait(condition, what: str, timeout: float = WAIT_TIMEOUT_SECONDS, interval: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _fund(console: Console, w3: Web3, funder: LocalAccount, contributors: list[DemoContributor], *, chain_id: int) -> None:
    """Give each contributor gas money so they can send their own claim."""
    nonce = w3.eth.get_transaction_count(funder.address, "pending")
    fee = int(w3.eth.get_block("latest")["baseFeePerGas"]) * 2 + 10**9
    hashes = []
    with _progress(console) as progress:
        task = progress.add_task("funding contributor wallets", total=len(contributors))
        for offset, contributor in enumerate(contributors):
            signed = funder.sign_transaction(
                {
                    "to": contributor.address,
                    "value": FUNDING_WEI,
                    "gas": 21_000,
                    "maxFeePerGas": fee,
                    "maxPriorityFeePerGas": 10**9,
                    "nonce": nonce + offset,
                    "chainId": chain_id,
                }
            )
            hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
            progress.advance(task)
    for tx_hash in hashes:
        w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)


def _epoch_status(client: DemoClient, number: int) -> str | None:
    epoch = client.epoch(number)
    return None if epoch is None else epoch["status"]


def _open_epoch(client: DemoClient) -> int:
    page = client.request("GET", "/v1/epochs", params={"limit": 1}).json()
    return page["items"][0]["number"]


def _drive(
    console: Console,
    client: DemoClient,
    chain: ChainContext,
    w3: Web3,
    contributors: list[DemoContributor],
    options: DemoOptions,
    state: DemoState,
    rng: random.Random,
) -> None:
    chain_id = chain.chain_id
    credited_hashes: list[str] = []
    burst, regular = contributors[0], contributors[1:] or contributors
    per_wave = max(options.sessions // options.epochs, 1)

    for wave in range(1, options.epochs + 1):
        now = datetime.now(tz=UTC)
        planned = plan_wave(regular, per_wave, now=now, rng=rng, credited_hashes=credited_hashes)

        if wave == 1 and len(contributors) > 1:
            _burst(client, burst, now, rng, state)
        if wave == 2:
            _pause_and_resume(client, contributors, chain_id, rng, state)
        if wave >= 2:
            _withdraw_anchored(client, chain_id, rng, state)

        with _progress(console) as progress:
            task = progress.add_task(f"epoch {_open_epoch(client)}: submitting sessions", total=len(planned))
            for start in range(0, len(planned), BATCH_SIZE):
                chunk = planned[start : start + BATCH_SIZE]
                results = client.submit_batch([plan.payload for _, plan in chunk])
                for (contributor, plan), result in zip(chunk, results):
                    _check_result(plan, result, state)
                    if result["status"] == "scored":
                        state.scored.append((contributor, plan))
                progress.advance(task, len(chunk))

        _resubmit_and_conflict(client, planned, rng, state)
        _withdraw_planned(client, planned, chain_id, state)

        last_epoch = _open_epoch(client)
        console.print(f"waiting for the scheduler to close and anchor epoch {last_epoch}")
        _wait(lambda: _epoch_status(client, last_epoch) == "active", f"epoch {last_epoch} to become active")
        _wait(lambda: all(_epoch_status(client, n) == "active" for n in range(1, last_epoch + 1)), "earlier epochs to become active")
        console.print(f"epoch {last_epoch} anchored and active")

        if wave == options.epochs - 1 and options.epochs > 1:
            _claim(console, client, chain, w3, contributors[::2], state, label="first claims (every other contributor)")

    _claim(console, client, chain, w3, contributors, state, label="claims by every contributor")


def _check_result(plan: PlannedSession, result: dict, state: DemoState) -> None:
    status, reason = result["status"], result.get("reason")
    state.outcomes[(status, reason if status != "scored" or reason == "daily_cap" else None)] += 1
    if status != plan.expected_status or (plan.expected_status == "rejected" and reason != plan.expected_reason):
        state.fail(f"session {plan.payload['session_id']}: expected {plan.expected_status}/{plan.expected_reason}, got {status}/{reason}")


def _burst(client: DemoClient, contributor: DemoContributor, now: datetime, rng: random.Random, state: DemoState) -> None:
    """Submit more sessions for one contributor within an hour than the rate limit allows."""
    plans = [
        PlannedSession(ordinary_payload(rng, contributor.address, now - timedelta(minutes=rng.randint(240, 4000))), "scored")
        for _ in range(DEMO_RATE_LIMIT + 10)
    ]
    for index, plan in enumerate(plans):
        if index >= DEMO_RATE_LIMIT:
            plan.expected_status, plan.expected_reason = "rejected", "rate_limited"
    results = client.submit_batch([plan.payload for plan in plans])
    for plan, result in zip(plans, results):
        _check_result(plan, result, state)
        if result["status"] == "scored":
            state.scored.append((contributor, plan))


def _pause_and_resume(client: DemoClient, contributors: list[DemoContributor], chain_id: int, rng: random.Random, state: DemoState) -> None:
    """Contributors who pause sharing get the sessions that start meanwhile rejected."""
    for contributor in [c for c in contributors if c.pauses]:
        headers = client.as_contributor(contributor.account, chain_id=chain_id)
        client.request("PUT", "/v1/me/sharing", json={"sharing": False}, headers=headers)
        plan = paused_session(rng, contributor, datetime.now(tz=UTC) + timedelta(seconds=1))
        result = client.submit_one(plan.payload).json()
        _check_result(plan, result, state)
        client.request("PUT", "/v1/me/sharing", json={"sharing": True}, headers=headers)


def _resubmit_and_conflict(client: DemoClient, planned: list[tuple[DemoContributor, PlannedSession]], rng: random.Random, state: DemoState) -> None:
    """Send some payloads again (same result back) and some changed under the same id (409)."""
    scored = [(c, p) for c, p in planned if p.expected_status == "scored"]
    for _, plan in [(c, p) for c, p in scored if p.resubmit]:
        first = client.submit_one(plan.payload).json()
        if not first["replayed"]:
            state.fail(f"resubmitted session {plan.payload['session_id']} was not a replay")
        state.outcomes[("replayed", None)] += 1
    for _, plan in rng.sample(scored, min(len(scored), max(len(scored) // 100, 1))):
        response = client.submit_one(conflicting_copy(plan, rng), expect=(409,))
        if response.json()["error"]["code"] != "session_conflict":
            state.fail(f"conflicting resubmission of {plan.payload['session_id']} did not return session_conflict")
        state.outcomes[("conflict", "session_conflict")] += 1


def _withdraw(client: DemoClient, contributor: DemoContributor, plan: PlannedSession, chain_id: int, state: DemoState) -> None:
    session_id = plan.payload["session_id"]
    headers = client.as_contributor(contributor.account, chain_id=chain_id)
    view = client.request("DELETE", f"/v1/me/sessions/{session_id}", headers=headers).json()
    if view["status"] != "withdrawn":
        state.fail(f"withdrawing {session_id} left it {view['status']}")
    state.withdrawn.add(session_id)
    state.outcomes[("withdrawn", None)] += 1


def _withdraw_planned(client: DemoClient, planned: list[tuple[DemoContributor, PlannedSession]], chain_id: int, state: DemoState) -> None:
    """Contributors delete some sessions of the open epoch: their points are reversed."""
    for contributor, plan in planned:
        if plan.withdraw and plan.expected_status == "scored" and plan.payload["session_id"] not in state.withdrawn:
            _withdraw(client, contributor, plan, chain_id, state)


def _withdraw_anchored(client: DemoClient, chain_id: int, rng: random.Random, state: DemoState) -> None:
    """Contributors delete a few sessions of anchored epochs: the next tree debits them."""
    candidates = [(c, p) for c, p in state.scored if p.payload["session_id"] not in state.withdrawn]
    for contributor, plan in rng.sample(candidates, min(len(candidates), 5)):
        _withdraw(client, contributor, plan, chain_id, state)


def _claim(
    console: Console,
    client: DemoClient,
    chain: ChainContext,
    w3: Web3,
    contributors: list[DemoContributor],
    state: DemoState,
    *,
    label: str,
) -> None:
    """Claim for every contributor with a claimable amount, each signing with their own key."""
    with _progress(console) as progress:
        task = progress.add_task(label, total=len(contributors))
        for contributor in contributors:
            progress.advance(task)
            response = client.request("GET", f"/v1/claims/{contributor.address}", expect=(200, 404))
            if response.status_code == 404:
                continue
            payload = response.json()
            if int(payload["claimable"]) == 0:
                continue
            account = contributor.account
            transaction = {
                "from": account.address,
                "to": payload["contract"],
                "data": payload["calldata"],
                "value": 0,
                "chainId": payload["chain_id"],
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            }
            transaction["gas"] = w3.eth.estimate_gas(transaction) * 12 // 10
            base_fee = int(w3.eth.get_block("latest")["baseFeePerGas"])
            transaction.update({"maxFeePerGas": 2 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9})
            signed = account.sign_transaction(transaction)
            receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), poll_latency=0.01)
            state.claims_sent += 1
            if receipt["status"] != 1:
                state.fail(f"claim of {account.address} reverted")
                continue
            state.claim_gas.append(int(receipt["gasUsed"]))
            balance = chain.token.functions.balanceOf(account.address).call()
            if balance != int(payload["cumulative_amount"]):
                state.fail(f"{account.address} holds {balance} tokens after claiming {payload['cumulative_amount']}")


def _verify(
    console: Console,
    client: DemoClient,
    chain: ChainContext,
    w3: Web3,
    factory,  # type: ignore[no-untyped-def]
    contributors: list[DemoContributor],
    rpc_url: str,
    state: DemoState,
    rng: random.Random,
) -> None:
    """Check every claim against the chain and the API, a sample of proofs, and the journal."""
    head = chain.head()
    _wait(lambda: _indexed_through(factory, head), "the claim indexer to reach the last claim")

    with _progress(console) as progress:
        task = progress.add_task("verifying claims and earnings", total=len(contributors))
        for contributor in contributors:
            progress.advance(task)
            response = client.request("GET", f"/v1/contributors/{contributor.address}/earnings", expect=(200, 404))
            if response.status_code == 404:
                continue
            earnings = response.json()
            balance = chain.token.functions.balanceOf(contributor.address).call()
            on_chain_claimed = chain.distributor.functions.claimed(contributor.address).call()
            if int(earnings["claimed"]) != on_chain_claimed or balance != on_chain_claimed:
                state.fail(f"{contributor.address}: API claimed {earnings['claimed']}, contract {on_chain_claimed}, balance {balance}")
            if int(earnings["claimable"]) != 0:
                state.fail(f"{contributor.address} still has {earnings['claimable']} claimable after claiming")

    supply = chain.token.functions.totalSupply().call()
    last = chain.distributor.functions.lastEpoch().call()
    cap = chain.distributor.functions.cumulativeEmission(last).call()
    if supply > cap:
        state.fail(f"total supply {supply} exceeds the cumulative emission {cap}")

    scored = [(c, p) for c, p in state.scored if p.payload["session_id"] not in state.withdrawn]
    sample = rng.sample(scored, min(len(scored), PROOF_SAMPLE))
    with _progress(console) as progress:
        task = progress.add_task("verifying contribution proofs", total=len(sample))
        for _, plan in sample:
            progress.advance(task)
            document = load_proof_file(client.request("GET", f"/v1/sessions/{plan.payload['session_id']}/proof").json())
            assert isinstance(document, ContributionProof)
            result = verify_against_chain(document, rpc_url=rpc_url)
            if not result.ok:
                state.fail(f"proof of session {plan.payload['session_id']} failed: {'; '.join(result.messages)}")

    with factory() as db:
        journal = check_journal(db)
        if not journal.ok:
            state.fail(f"journal check failed: total {journal.journal_total}, drift {journal.drift}")
        for epoch in db.scalars(select(Epoch).where(Epoch.total_points.is_not(None))):
            allocated = db.scalar(select(func.coalesce(func.sum(Allocation.tokens), 0)).where(Allocation.epoch == epoch.number))
            expected = epoch.emission if epoch.total_points else 0
            if int(allocated) != expected:
                state.fail(f"epoch {epoch.number} allocated {allocated}, expected {expected}")
        failed_anchors = db.scalar(select(func.count()).select_from(AnchorTransaction).where(AnchorTransaction.status == "failed"))
        if failed_anchors:
            state.fail(f"{failed_anchors} anchor transactions failed")


def _indexed_through(factory, block: int) -> bool:  # type: ignore[no-untyped-def]
    with factory() as db:
        cursor = db.scalar(select(IndexerCursor.block_number).where(IndexerCursor.name == CURSOR_NAME))
    return cursor is not None and cursor >= block
