"""The `ledger` command line: serve, worker, migrate, contracts, epochs, verify, check, demo."""

import argparse
import json
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from ledger.config import Settings, get_settings
from ledger.logs import configure_logging

logger = logging.getLogger("ledger.cli")


def _database_url(settings: Settings, stack: ExitStack) -> str:
    """Return the configured database URL, or start the embedded database and migrate it."""
    if settings.database_url:
        return settings.database_url
    from ledger.db import migrate  # noqa: PLC0415
    from ledger.runtime import STATE_DIR, embedded_postgres  # noqa: PLC0415

    url = stack.enter_context(embedded_postgres(STATE_DIR / "pgdata"))
    # The embedded database is a development convenience, so it is kept at the latest schema.
    migrate(url)
    return url


#: What the CLI prints when the configured database has no tables of the ledger yet.
NO_SCHEMA_MESSAGE = "the database has no ledger schema: run `ledger migrate` first"


def _require_schema(url: str) -> None:
    """Exit with a clear message when the database is not at the latest migration."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    from ledger.db import alembic_config, get_engine  # noqa: PLC0415

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with get_engine(url).connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        raise SystemExit(f"error: {NO_SCHEMA_MESSAGE}")
    if current != head:
        raise SystemExit(f"error: the database schema is at revision {current}, not {head}: run `ledger migrate` first")


def _chain(settings: Settings):  # type: ignore[no-untyped-def]
    """Return a ChainContext when RPC_URL and a deployment record are configured, else None."""
    from ledger.chain.client import ChainContext  # noqa: PLC0415
    from ledger.chain.contracts import Deployment  # noqa: PLC0415

    if not settings.rpc_url or not settings.deployment_file:
        return None
    deployment = Deployment.load(settings.deployment_file)
    return ChainContext.open(settings.rpc_url, deployment, expected_chain_id=settings.chain_id)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.db import migrate  # noqa: PLC0415

    with ExitStack() as stack:
        migrate(_database_url(settings, stack), args.revision)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415

    from api.app import create_app  # noqa: PLC0415
    from ledger.auth.keys import InvalidApiKey, Scope  # noqa: PLC0415
    from ledger.auth.service import register_api_key  # noqa: PLC0415
    from ledger.db import session_factory, unit_of_work  # noqa: PLC0415
    from ledger.epochs.service import ensure_open_epoch  # noqa: PLC0415

    # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into SystemExit lets the
    # embedded database, if any, stop cleanly instead of outliving the process.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        url = _database_url(settings, stack)
        _require_schema(url)
        factory = session_factory(url, settings.database_pool_size)
        with unit_of_work(factory) as db:
            ensure_open_epoch(db, settings=settings, now=datetime.now(tz=UTC))
            if settings.collector_api_key is not None:
                try:
                    register_api_key(
                        db, key=settings.collector_api_key.get_secret_value(), name="bootstrap collector", scope=Scope.sessions_write
                    )
                except InvalidApiKey as error:
                    print(
                        f"error: LEDGER_COLLECTOR_API_KEY is not an API key ({error}): "
                        "create one with `ledger keys create --scope sessions_write`",
                        file=sys.stderr,
                    )
                    return 2
        logger.info("serve.start host=%s port=%s workers=%s", args.host, args.port, args.workers)
        if args.workers > 1:
            os.environ["DATABASE_URL"] = url
            uvicorn.run(
                "api.main:build_app",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                log_config=None,
                access_log=False,
            )
        else:
            app = create_app(settings, factory, _chain(settings))
            uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.chain.client import load_anchorer  # noqa: PLC0415
    from ledger.chain.errors import RpcUnavailable  # noqa: PLC0415
    from ledger.db import session_factory  # noqa: PLC0415
    from ledger.worker import Worker  # noqa: PLC0415

    if not settings.rpc_url or not settings.deployment_file:
        print("error: the worker needs RPC_URL and LEDGER_DEPLOYMENT_FILE (run `ledger contracts deploy`)", file=sys.stderr)
        return 2
    stop = threading.Event()
    if args.once:
        try:
            chain = _chain(settings)
        except RpcUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        chain = _wait_for_chain(settings, stop)
        if chain is None:
            return 0
    with ExitStack() as stack:
        url = _database_url(settings, stack)
        _require_schema(url)
        worker = Worker(settings=settings, factory=session_factory(url), chain=chain, anchorer=load_anchorer(settings))
        if args.once:
            worker.tick(force_close=args.close)
            return 0
        worker.start()
        stop.wait()
        worker.stop()
    return 0


def _wait_for_chain(settings: Settings, stop: threading.Event):  # type: ignore[no-untyped-def]
    """Connect to the chain, retrying with capped backoff while the endpoint is unreachable.

    A restarting node then delays the worker instead of making it exit and restart in a loop.
    Returns None when `stop` is set first. A chain id mismatch is raised at once.
    """
    import time  # noqa: PLC0415

    from ledger.chain.errors import RpcUnavailable  # noqa: PLC0415
    from ledger.worker import Backoff  # noqa: PLC0415

    backoff = Backoff(base=1.0, cap=settings.chain_retry_max_seconds)
    while True:
        try:
            return _chain(settings)
        except RpcUnavailable as error:
            delay = backoff.failed(time.monotonic())
            logger.warning("worker.chain.unreachable failures=%s retry_in_seconds=%.1f error=%s", backoff.failures, delay, error)
            if stop.wait(delay):
                return None


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.chain.client import connect, load_anchorer  # noqa: PLC0415
    from ledger.chain.contracts import Deployment, DeploymentError, deploy_contracts  # noqa: PLC0415
    from ledger.chain.errors import ChainError, classify  # noqa: PLC0415

    out = Path(args.out or settings.deployment_file or "deployment.json")
    if out.exists() and not args.force:
        existing = Deployment.load(out)
        print(f"contracts already deployed (distributor {existing.distributor_address}); pass --force to deploy new ones")
        return 0
    rpc_url = args.rpc_url or settings.rpc_url
    if not rpc_url:
        print("error: give --rpc-url or set RPC_URL", file=sys.stderr)
        return 2
    if args.keystore:
        settings = settings.model_copy(update={"anchorer_private_key": None, "anchorer_keystore": args.keystore})
    if settings.anchorer_keystore and settings.anchorer_keystore_password is None and sys.stdin.isatty():
        from getpass import getpass  # noqa: PLC0415
        from pydantic import SecretStr  # noqa: PLC0415

        password = SecretStr(getpass(f"password of keystore {settings.anchorer_keystore}: "))
        settings = settings.model_copy(update={"anchorer_keystore_password": password})
    try:
        deployer = load_anchorer(settings)
    except (OSError, ValueError) as error:
        print(f"error: cannot load the deployer key: {error}", file=sys.stderr)
        return 2

    try:
        w3 = connect(rpc_url, expected_chain_id=settings.chain_id)
        print(f"deploying from {deployer.address} on chain {w3.eth.chain_id}")
        deployment = deploy_contracts(
            w3,
            deployer,
            admin=args.admin or deployer.address,
            anchorer=args.anchorer or deployer.address,
            guardian=args.guardian or deployer.address,
            emission_per_epoch=settings.emission_per_epoch,
            challenge_period=settings.challenge_period_seconds,
        )
    except (DeploymentError, ValueError) as error:
        print(f"error: deployment failed: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - RPC failures are reported as chain errors
        mapped = classify(error)
        if type(mapped) is ChainError:
            raise  # not a known RPC failure: keep the traceback
        print(f"error: deployment failed: {type(mapped).__name__}: {mapped}", file=sys.stderr)
        return 1
    deployment.save(out)
    print(f"token {deployment.token_address}\ndistributor {deployment.distributor_address}\nrecord {out}")
    return 0


def cmd_epoch_close(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.db import session_factory, unit_of_work  # noqa: PLC0415
    from ledger.epochs.build import build_epoch  # noqa: PLC0415
    from ledger.epochs.service import close_epoch  # noqa: PLC0415

    with ExitStack() as stack:
        factory = session_factory(_database_url(settings, stack))
        with unit_of_work(factory) as db:
            closed = close_epoch(db, settings=settings, now=datetime.now(tz=UTC), force=True)
            assert closed is not None
            built = build_epoch(db, closed.number)
            print(f"epoch {built.number} closed: {built.total_points} points, {built.allocated} base units allocated")
            print(f"claims root 0x{built.claims_root.hex()}\ncontributions root 0x{built.contributions_root.hex()}")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.chain.verify import verify_against_chain  # noqa: PLC0415
    from ledger.merkle import InvalidProofFile, load_proof_file, verify_proof_file  # noqa: PLC0415

    try:
        document = load_proof_file(Path(args.proof).read_text(encoding="utf-8"))
    except (OSError, InvalidProofFile) as error:
        print(f"error: cannot read proof {args.proof}: {error}", file=sys.stderr)
        return 2
    offline = verify_proof_file(document)
    print(f"leaf {offline.leaf_hash}\nproof leads to {offline.computed_root}: {'matches' if offline.valid else 'DOES NOT match'} the document's root")
    if not args.rpc_url:
        return 0 if offline.valid else 1
    try:
        result = verify_against_chain(document, rpc_url=args.rpc_url, distributor=args.distributor)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"on-chain root of epoch {document.epoch}: {result.chain_root} ({'matches' if result.root_on_chain else 'DOES NOT match'})")
    if result.contract_accepts is not None:
        print(f"contract verifyContribution: {result.contract_accepts}")
    for message in result.messages:
        print(f"failed: {message}")
    print("VALID" if result.ok else "INVALID")
    return 0 if result.ok else 1


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.db import session_factory  # noqa: PLC0415
    from ledger.journal.service import check_journal  # noqa: PLC0415

    with ExitStack() as stack:
        factory = session_factory(_database_url(settings, stack))
        with factory() as db:
            result = check_journal(db)
    print(f"{result.entries} journal entries, postings sum to {result.journal_total}")
    for entry_id in result.unbalanced_entries:
        print(f"unbalanced entry {entry_id}")
    for account, (maintained, recomputed) in sorted(result.drift.items()):
        print(f"drift {account}: balance table {maintained}, journal {recomputed}")
    print("OK" if result.ok else "DRIFT FOUND")
    return 0 if result.ok else 1


def cmd_score_explain(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.db import session_factory  # noqa: PLC0415
    from ledger.errors import NotFound  # noqa: PLC0415
    from ledger.scoring.service import explain_score  # noqa: PLC0415

    try:
        session_id = uuid.UUID(args.session_id)
    except ValueError:
        print(f"error: {args.session_id!r} is not a UUID", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        factory = session_factory(_database_url(settings, stack))
        with factory() as db:
            try:
                explanation = explain_score(db, session_id)
            except NotFound as error:
                print(f"error: {error.message}", file=sys.stderr)
                return 1
    print(f"session {session_id} under policy v{explanation.policy_version}")
    for step in explanation.steps:
        print(f"  {step}")
    print(f"stored {explanation.stored_points} points, recomputed {explanation.recomputed_points}: {'consistent' if explanation.matches else 'MISMATCH'}")
    return 0 if explanation.matches else 1


def cmd_policy_publish(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.db import session_factory, unit_of_work  # noqa: PLC0415
    from ledger.errors import InvalidInput  # noqa: PLC0415
    from ledger.scoring.service import publish_policy  # noqa: PLC0415

    try:
        rules = json.loads(Path(args.rules).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"error: cannot read the rules {args.rules}: {error}", file=sys.stderr)
        return 2
    try:
        effective_from = datetime.fromisoformat(args.effective_from)
    except ValueError:
        print(
            f"error: --effective-from {args.effective_from!r} is not an RFC 3339 instant: "
            "write it like 2027-01-01T00:00:00+00:00",
            file=sys.stderr,
        )
        return 2
    with ExitStack() as stack:
        factory = session_factory(_database_url(settings, stack))
        try:
            with unit_of_work(factory) as db:
                policy = publish_policy(db, rules=rules, effective_from=effective_from, now=datetime.now(tz=UTC))
        except InvalidInput as error:
            print(f"error: {error.message}", file=sys.stderr)
            return 2
    print(f"published policy v{policy.version}, in force for sessions starting from {policy.effective_from.isoformat()}")
    return 0


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.auth.keys import Scope  # noqa: PLC0415
    from ledger.auth.service import create_api_key  # noqa: PLC0415
    from ledger.db import session_factory, unit_of_work  # noqa: PLC0415

    with ExitStack() as stack:
        factory = session_factory(_database_url(settings, stack))
        with unit_of_work(factory) as db:
            key = create_api_key(db, name=args.name, scope=Scope(args.scope))
    print(key)
    print("store this key now: only its hash is kept", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.demo.runner import DemoOptions, run_demo  # noqa: PLC0415

    options = DemoOptions(
        contributors=args.contributors,
        sessions=args.sessions,
        epochs=args.epochs,
        seed=args.seed,
        epoch_seconds=args.epoch_seconds,
        report_json=Path(args.report_json) if args.report_json else None,
    )
    return run_demo(options, settings)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("LEDGER_LOG_LEVEL", "INFO"), help="logging level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API under uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="API worker processes (default 1)")
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="run the scheduler: close, build, anchor, index")
    worker.add_argument("--once", action="store_true", help="run one tick and exit")
    worker.add_argument("--close", action="store_true", help="with --once: close the open epoch now")
    worker.set_defaults(handler=cmd_worker)

    migrate = commands.add_parser("migrate", help="upgrade the database schema with alembic")
    migrate.add_argument("--revision", default="head", help="target revision (default head)")
    migrate.set_defaults(handler=cmd_migrate)

    contracts = commands.add_parser("contracts", help="contract operations").add_subparsers(dest="action", required=True)
    deploy = contracts.add_parser("deploy", help="deploy OwnershipToken and RewardDistributor")
    deploy.add_argument("--rpc-url", help="JSON-RPC endpoint (default RPC_URL)")
    deploy.add_argument("--out", help="deployment record path (default LEDGER_DEPLOYMENT_FILE or deployment.json)")
    deploy.add_argument(
        "--keystore",
        help="encrypted JSON keystore of the deployer (default LEDGER_ANCHORER_KEYSTORE); the password comes from "
        "LEDGER_ANCHORER_KEYSTORE_PASSWORD or a prompt",
    )
    deploy.add_argument("--anchorer", help="anchorer role holder (default the deployer)")
    deploy.add_argument("--admin", help="admin role holder (default the deployer)")
    deploy.add_argument("--guardian", help="guardian and pauser role holder (default the deployer)")
    deploy.add_argument("--force", action="store_true", help="deploy even if the record file exists")
    deploy.set_defaults(handler=cmd_deploy)

    epoch = commands.add_parser("epoch", help="epoch operations").add_subparsers(dest="action", required=True)
    close = epoch.add_parser("close", help="close the open epoch now and build its trees")
    close.set_defaults(handler=cmd_epoch_close)

    verify = commands.add_parser("verify", help="verify a proof JSON offline and against the chain")
    verify.add_argument("proof", help="path of a proof JSON from the API")
    verify.add_argument("--rpc-url", help="JSON-RPC endpoint; without it only the offline check runs")
    verify.add_argument("--distributor", help="distributor address, if the proof names none")
    verify.set_defaults(handler=cmd_verify)

    check = commands.add_parser("check", help="recompute balances from the journal and report drift")
    check.set_defaults(handler=cmd_check)

    score = commands.add_parser("score", help="scoring tools").add_subparsers(dest="action", required=True)
    explain = score.add_parser("explain", help="recompute a stored score step by step")
    explain.add_argument("session_id", help="session UUID")
    explain.set_defaults(handler=cmd_score_explain)

    policy = commands.add_parser("policy", help="scoring policies").add_subparsers(dest="action", required=True)
    publish = policy.add_parser("publish", help="publish a new scoring policy version")
    publish.add_argument("rules", help="JSON file with the policy rules (same keys as policy v1)")
    publish.add_argument("--effective-from", required=True, help="RFC 3339 instant with a time zone, not in the past")
    publish.set_defaults(handler=cmd_policy_publish)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create an API key and print it once")
    create.add_argument("--name", required=True, help="who uses the key")
    create.add_argument("--scope", required=True, choices=["sessions_write", "admin"], help="permission of the key")
    create.set_defaults(handler=cmd_keys_create)

    demo = commands.add_parser("demo", help="run the whole loop end to end on embedded defaults")
    demo.add_argument("--contributors", type=int, default=200, help="contributors, each with a key (default 200)")
    demo.add_argument("--sessions", type=int, default=3000, help="sessions submitted in all (default 3000)")
    demo.add_argument("--epochs", type=int, default=3, help="epochs to close and anchor (default 3)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the generated population")
    demo.add_argument("--epoch-seconds", type=int, default=10, help="epoch length the scheduler uses (default 10)")
    demo.add_argument("--report-json", help="also write the summary as JSON to this path")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    from psycopg import errors as psycopg_errors  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415
    from sqlalchemy.exc import OperationalError, ProgrammingError  # noqa: PLC0415

    from ledger.chain.errors import ChainError, ChainIdMismatch  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415

    try:
        settings = get_settings()
    except ValidationError as error:
        for problem in error.errors():
            name = "LEDGER_" + "_".join(str(part) for part in problem["loc"]).upper()
            print(f"error: setting {name}={problem.get('input')!r} is invalid: {problem['msg']}", file=sys.stderr)
        return 2
    try:
        return args.handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except ChainIdMismatch as error:
        logger.error("chain.id_mismatch error=%s", error)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ChainError as error:
        logger.error("cli.chain_failed error_type=%s", type(error).__name__)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except LedgerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OperationalError as error:
        logger.error("cli.database_unreachable")
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "unknown"
        print(f"error: cannot use the database: {reason}; check DATABASE_URL", file=sys.stderr)
        return 2
    except ProgrammingError as error:
        if isinstance(getattr(error, "orig", None), psycopg_errors.UndefinedTable):
            print(f"error: {NO_SCHEMA_MESSAGE}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
