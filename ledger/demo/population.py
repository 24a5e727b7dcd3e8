"""A reproducible population of contributors and the sessions they submit, with what to expect.

Most sessions are ordinary; a share is invalid, sensitive, duplicated, resubmitted or withdrawn,
so every intake rule is exercised through the real API.
"""

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

ORDINARY_CATEGORIES = ("shopping", "travel", "productivity", "news", "education", "developer", "email", "search")
SENSITIVE_CATEGORIES = ("banking", "health")


@dataclass
class PlannedSession:
    """One submission the demo will make, and the outcome it expects."""

    payload: dict[str, Any]
    expected_status: str
    """`scored`, `rejected` or `conflict`."""
    expected_reason: str | None = None
    withdraw: bool = False
    """Whether the contributor deletes this session after it is scored."""
    resubmit: bool = False
    """Whether the same payload is sent again, expecting the first result back."""


@dataclass
class DemoContributor:
    """A contributor with their own key."""

    account: LocalAccount
    pauses: bool = False
    sessions: list[PlannedSession] = field(default_factory=list)

    @property
    def address(self) -> str:
        """Checksummed address."""
        return self.account.address


def _content_hash(rng: random.Random) -> str:
    return "0x" + hashlib.sha256(rng.randbytes(32)).hexdigest()


def ordinary_payload(rng: random.Random, contributor: str, start: datetime, *, long: bool = False) -> dict[str, Any]:
    """Return a valid session payload with random activity starting at `start`."""
    active_minutes = rng.randint(90, 200) if long else rng.randint(3, 45)
    wall = active_minutes * 60 + rng.randint(0, 900)
    actions = active_minutes * rng.randint(6, 90)
    clicks = actions * rng.randint(30, 50) // 100
    keystrokes = actions * rng.randint(20, 40) // 100
    scrolls = actions * rng.randint(10, 20) // 100
    navigations = max(actions - clicks - keystrokes - scrolls, 0)
    return {
        "session_id": str(uuid.UUID(bytes=rng.randbytes(16), version=4)),
        "contributor": contributor,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(seconds=wall)).isoformat(),
        "active_seconds": active_minutes * 60,
        "clicks": clicks,
        "keystrokes": keystrokes,
        "scrolls": scrolls,
        "navigations": navigations,
        "categories": sorted(set(rng.sample(ORDINARY_CATEGORIES, rng.randint(1, 2)))),
        "content_hash": _content_hash(rng),
        "client_version": "extension/2.3.1",
    }


def make_contributors(count: int, *, seed: int) -> list[DemoContributor]:
    """Create `count` contributors with keys derived from `seed`; about 5 % will pause sharing."""
    rng = random.Random(seed)
    contributors = []
    for index in range(count):
        account = Account.from_key(hashlib.sha256(f"ledger-demo:{seed}:{index}".encode()).digest())
        contributors.append(DemoContributor(account=account, pauses=rng.random() < 0.05 and index > 0))
    return contributors


def plan_wave(
    contributors: list[DemoContributor],
    sessions: int,
    *,
    now: datetime,
    rng: random.Random,
    credited_hashes: list[str],
) -> list[tuple[DemoContributor, PlannedSession]]:
    """Plan about `sessions` submissions spread over the contributors, with known outcomes.

    `credited_hashes` collects content hashes of sessions expected to be credited, so later
    sessions can reuse one as duplicate data.
    """
    planned: list[tuple[DemoContributor, PlannedSession]] = []
    for _ in range(sessions):
        contributor = rng.choice(contributors)
        long = contributor.address[-1] in "0123"
        start = now - timedelta(minutes=rng.randint(240, 3 * 24 * 60))
        payload = ordinary_payload(rng, contributor.address, start, long=long)
        roll = rng.random()
        if roll < 0.015:
            payload["ended_at"] = (start - timedelta(minutes=5)).isoformat()
            plan = PlannedSession(payload, "rejected", "ended_before_started")
        elif roll < 0.03:
            payload["active_seconds"] = 10 * 3600
            payload["ended_at"] = (start + timedelta(hours=1)).isoformat()
            plan = PlannedSession(payload, "rejected", "active_exceeds_wall_time")
        elif roll < 0.04:
            payload["scrolls"] = -rng.randint(1, 50)
            plan = PlannedSession(payload, "rejected", "negative_count")
        elif roll < 0.05:
            future = now + timedelta(hours=rng.randint(2, 48))
            payload["started_at"] = future.isoformat()
            payload["ended_at"] = (future + timedelta(minutes=30)).isoformat()
            plan = PlannedSession(payload, "rejected", "start_in_future")
        elif roll < 0.09:
            payload["categories"] = sorted({rng.choice(SENSITIVE_CATEGORIES), rng.choice(ORDINARY_CATEGORIES)})
            plan = PlannedSession(payload, "rejected", "sensitive_category")
        elif roll < 0.12 and credited_hashes:
            payload["content_hash"] = rng.choice(credited_hashes)
            plan = PlannedSession(payload, "rejected", "duplicate_content")
        else:
            plan = PlannedSession(payload, "scored")
            credited_hashes.append(payload["content_hash"])
            plan.resubmit = rng.random() < 0.03
            plan.withdraw = rng.random() < 0.02
        contributor.sessions.append(plan)
        planned.append((contributor, plan))
    return planned


def conflicting_copy(plan: PlannedSession, rng: random.Random) -> dict[str, Any]:
    """Return the payload of `plan` with a changed count: same id, different content (409)."""
    payload = dict(plan.payload)
    payload["clicks"] = int(payload["clicks"]) + rng.randint(1, 9)
    return payload


def paused_session(rng: random.Random, contributor: DemoContributor, start: datetime) -> PlannedSession:
    """Plan a session that starts while its contributor has paused sharing."""
    payload = ordinary_payload(rng, contributor.address, start)
    payload["active_seconds"] = 120
    payload["ended_at"] = (start + timedelta(minutes=3)).isoformat()
    plan = PlannedSession(payload, "rejected", "sharing_paused")
    contributor.sessions.append(plan)
    return plan
