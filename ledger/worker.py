"""The scheduler: one leader across replicas closes epochs, builds them, anchors them and
indexes claims, on a fixed interval.

Leadership is a session-level PostgreSQL advisory lock held on a dedicated connection. When that
connection drops, the lock is released and another replica takes over on its next tick.
"""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from ledger.chain.anchoring import drive_anchoring
from ledger.chain.client import ChainContext
from ledger.chain.errors import ChainError
from ledger.chain.indexer import index_claims
from ledger.config import Settings
from ledger.db import unit_of_work
from ledger.epochs.build import build_epoch
from ledger.epochs.service import close_epoch, ensure_open_epoch
from ledger.models import Epoch, EpochStatus

logger = logging.getLogger(__name__)

LEADER_LOCK_SQL = "hashtextextended('ledger:scheduler-leader', 0)"


@dataclass
class Backoff:
    """Capped exponential backoff after chain errors: base, 2 x base, 4 x base ... up to `cap` seconds.

    Times are `time.monotonic()` seconds, passed in so that tests need no sleeping.
    """

    base: float
    cap: float
    failures: int = 0
    retry_at: float = 0.0

    def ready(self, now: float) -> bool:
        """Return whether the chain jobs may run at `now`."""
        return now >= self.retry_at

    def failed(self, now: float) -> float:
        """Record a failure at `now` and return the seconds to wait before the next attempt."""
        self.failures += 1
        delay = min(self.base * 2 ** (self.failures - 1), self.cap)
        self.retry_at = now + delay
        return delay

    def succeeded(self) -> None:
        """Forget earlier failures."""
        self.failures = 0
        self.retry_at = 0.0


class Worker:
    """Runs the epoch, anchoring and indexing jobs when this process is the leader."""

    def __init__(
        self,
        *,
        settings: Settings,
        factory: sessionmaker[DbSession],
        chain: ChainContext,
        anchorer: LocalAccount,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.chain = chain
        self.anchorer = anchorer
        self._leader_connection: Connection | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._tick_lock = threading.Lock()
        self.chain_backoff = Backoff(
            base=settings.scheduler_interval_seconds, cap=max(settings.chain_retry_max_seconds, settings.scheduler_interval_seconds)
        )

    def is_leader(self) -> bool:
        """Take or confirm leadership, and return whether this process is the leader."""
        connection = self._leader_connection
        if connection is not None:
            try:
                connection.execute(text("SELECT 1"))
                return True
            except Exception:  # noqa: BLE001 - a dropped connection means lost leadership
                logger.warning("worker.leader.lost")
                self._release()
        engine = self.factory.kw["bind"]
        connection = engine.connect()
        acquired = connection.execute(text(f"SELECT pg_try_advisory_lock({LEADER_LOCK_SQL})")).scalar()
        connection.commit()
        if not acquired:
            connection.close()
            return False
        self._leader_connection = connection
        logger.info("worker.leader.acquired")
        return True

    def _release(self) -> None:
        connection = self._leader_connection
        if connection is None:
            return
        self._leader_connection = None
        # Closing a pooled connection only returns it to the pool, where the session-level lock
        # would stay held: unlock first, and discard the connection if that fails.
        try:
            connection.execute(text(f"SELECT pg_advisory_unlock({LEADER_LOCK_SQL})"))
            connection.commit()
            connection.close()
            logger.info("worker.leader.released")
        except Exception as error:  # noqa: BLE001 - a broken connection loses the lock anyway
            logger.warning("worker.leader.unlock_failed error=%s", error)
            connection.invalidate()

    def tick(self, *, force_close: bool = False) -> None:
        """Run one round of every job. Errors are logged; the next tick retries."""
        with self._tick_lock:
            if not self.is_leader():
                logger.debug("worker.tick.skipped reason=not_leader")
                return
            try:
                self._close_and_build(force_close=force_close)
            except Exception:
                logger.exception("worker.tick.failed job=epochs")
            now = time.monotonic()
            if not self.chain_backoff.ready(now):
                logger.info(
                    "worker.chain.skipped failures=%s retry_in_seconds=%.1f",
                    self.chain_backoff.failures,
                    self.chain_backoff.retry_at - now,
                )
                return
            try:
                drive_anchoring(
                    self.factory,
                    self.chain,
                    self.anchorer,
                    confirmations=self.settings.confirmations,
                    replace_after_seconds=self.settings.anchor_replace_after_seconds,
                )
                index_claims(self.factory, self.chain, confirmations=self.settings.confirmations)
            except ChainError as error:
                delay = self.chain_backoff.failed(time.monotonic())
                # Retryable errors (node down, nonce races) clear up by themselves; the others
                # (insufficient funds, reverted anchor, root mismatch) need an operator.
                level = logging.WARNING if error.retryable else logging.ERROR
                logger.log(
                    level,
                    "worker.chain.error error_type=%s retryable=%s failures=%s retry_in_seconds=%.1f error=%s",
                    type(error).__name__,
                    error.retryable,
                    self.chain_backoff.failures,
                    delay,
                    error,
                )
            except Exception:
                delay = self.chain_backoff.failed(time.monotonic())
                logger.exception("worker.tick.failed job=chain retry_in_seconds=%.1f", delay)
            else:
                self.chain_backoff.succeeded()

    def _close_and_build(self, *, force_close: bool) -> None:
        now = datetime.now(tz=UTC)
        with unit_of_work(self.factory) as db:
            ensure_open_epoch(db, settings=self.settings, now=now)
            close_epoch(db, settings=self.settings, now=now, force=force_close)
        with self.factory() as db:
            closed = list(db.scalars(select(Epoch.number).where(Epoch.status == EpochStatus.CLOSED).order_by(Epoch.number)))
        for number in closed:
            with unit_of_work(self.factory) as db:
                build_epoch(db, number)

    def start(self) -> None:
        """Run `tick` every `scheduler_interval_seconds` in a background thread."""
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.settings.scheduler_interval_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(tz=UTC),
            id="ledger-tick",
        )
        scheduler.start()
        self._scheduler = scheduler
        logger.info("worker.started interval_seconds=%s", self.settings.scheduler_interval_seconds)

    def stop(self) -> None:
        """Stop the schedule, wait for a running tick and give up leadership."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        with self._tick_lock:
            self._release()
        logger.info("worker.stopped")
