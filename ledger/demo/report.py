"""The demo's summary: sessions by outcome, points, tokens and roots per epoch, gas figures."""

import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from ledger.config import TOKEN_UNIT, Settings
from ledger.models import EMISSION_ACCOUNT, AnchorTransaction, Epoch, PointBalance, Session


@dataclass
class EpochRow:
    """One epoch's line of the summary."""

    number: int
    status: str
    points: int
    allocated: int
    rollover: int
    claims_root: str
    contributions_root: str
    anchor_tx: str
    anchor_gas: int | None


@dataclass
class DemoReport:
    """Figures the demo prints and can write as JSON."""

    wall_seconds: float
    outcomes: list[tuple[str, str, int]]
    stored_by_status: dict[str, int]
    points_total: int
    epochs: list[EpochRow] = field(default_factory=list)
    claims: int = 0
    claim_gas_min: int | None = None
    claim_gas_median: int | None = None
    claim_gas_max: int | None = None
    failures: list[str] = field(default_factory=list)

    @classmethod
    def collect(cls, factory, chain, *, state, wall_seconds: float, settings: Settings) -> "DemoReport":  # type: ignore[no-untyped-def]
        """Gather the figures from the database and what the demo observed."""
        del chain, settings
        with factory() as db:
            stored = {status.value: count for status, count in db.execute(select(Session.status, func.count()).group_by(Session.status))}
            points = db.scalar(select(func.coalesce(func.sum(PointBalance.balance), 0)).where(PointBalance.account != EMISSION_ACCOUNT))
            epochs = []
            for epoch in db.scalars(select(Epoch).order_by(Epoch.number)):
                gas = None
                if epoch.anchor_tx_hash:
                    gas = db.scalar(select(AnchorTransaction.gas_used).where(AnchorTransaction.tx_hash == epoch.anchor_tx_hash))
                epochs.append(
                    EpochRow(
                        number=epoch.number,
                        status=epoch.status.value,
                        points=epoch.total_points or 0,
                        allocated=epoch.allocated or 0,
                        rollover=epoch.rollover,
                        claims_root=_hex(epoch.claims_root),
                        contributions_root=_hex(epoch.contributions_root),
                        anchor_tx=_hex(epoch.anchor_tx_hash),
                        anchor_gas=gas,
                    )
                )
        outcomes: Counter = state.outcomes
        gas = state.claim_gas
        return cls(
            wall_seconds=round(wall_seconds, 1),
            outcomes=sorted((status, reason or "", count) for (status, reason), count in outcomes.items()),
            stored_by_status=stored,
            points_total=int(points or 0),
            epochs=epochs,
            claims=len(gas),
            claim_gas_min=min(gas) if gas else None,
            claim_gas_median=int(statistics.median(gas)) if gas else None,
            claim_gas_max=max(gas) if gas else None,
            failures=list(state.failures),
        )

    def to_json(self) -> str:
        """Return the report as JSON text."""
        return json.dumps(asdict(self), indent=2) + "\n"


def _hex(value: bytes | None) -> str:
    return "-" if value is None else "0x" + value.hex()


def _tokens(amount: int) -> str:
    whole, fraction = divmod(amount, TOKEN_UNIT)
    return f"{whole:,}.{fraction:018d}".rstrip("0").rstrip(".")


def _short(value: str) -> str:
    return value if len(value) <= 20 else f"{value[:10]}…{value[-8:]}"


def print_report(console: Console, report: DemoReport) -> None:
    """Print the summary tables."""
    sessions = Table(title="Sessions by outcome (as the API returned them)")
    sessions.add_column("outcome")
    sessions.add_column("reason")
    sessions.add_column("count", justify="right")
    for status, reason, count in report.outcomes:
        sessions.add_row(status, reason or "-", f"{count:,}")
    console.print(sessions)
    stored = ", ".join(f"{status} {count:,}" for status, count in sorted(report.stored_by_status.items()))
    console.print(f"stored sessions: {stored}; points in contributor accounts: {report.points_total:,}")

    epochs = Table(title="Epochs")
    for column in ("epoch", "status", "points", "tokens allocated", "claims root", "contributions root", "anchor tx", "anchor gas"):
        epochs.add_column(column, justify="right" if column in ("epoch", "points", "tokens allocated", "anchor gas") else "left")
    for row in report.epochs:
        epochs.add_row(
            str(row.number),
            row.status,
            f"{row.points:,}",
            _tokens(row.allocated) if row.status != "open" else "-",
            _short(row.claims_root),
            _short(row.contributions_root),
            _short(row.anchor_tx),
            "-" if row.anchor_gas is None else f"{row.anchor_gas:,}",
        )
    console.print(epochs)
    for row in report.epochs:
        if row.status != "open":
            console.print(
                f"epoch {row.number}: claims root {row.claims_root}, contributions root "
                f"{row.contributions_root}, anchor tx {row.anchor_tx}"
            )

    if report.claims:
        console.print(
            f"claims: {report.claims} transactions signed by contributors, gas used min {report.claim_gas_min:,}, "
            f"median {report.claim_gas_median:,}, max {report.claim_gas_max:,}"
        )
    console.print(f"wall time: {report.wall_seconds} s")
