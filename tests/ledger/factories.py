"""Builders of valid session payloads and contributor keys for tests."""

import hashlib
import os
import uuid
from datetime import datetime, timedelta
from typing import Any

from eth_account import Account

from ledger.intake.schemas import SessionSubmission


def new_address() -> str:
    """Return the checksummed address of a fresh random key."""
    return Account.create().address


def session_payload(contributor: str, start: datetime, **overrides: Any) -> dict[str, Any]:
    """Return a valid 10-minute session payload; `overrides` replace fields."""
    payload: dict[str, Any] = {
        "session_id": str(uuid.uuid4()),
        "contributor": contributor,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(minutes=12)).isoformat(),
        "active_seconds": 600,
        "clicks": 200,
        "keystrokes": 150,
        "scrolls": 80,
        "navigations": 20,
        "categories": ["shopping"],
        "content_hash": "0x" + hashlib.sha256(os.urandom(16)).hexdigest(),
        "client_version": "extension/1.4.2",
    }
    payload.update(overrides)
    return payload


def submission(contributor: str, start: datetime, **overrides: Any) -> SessionSubmission:
    """Return a validated `SessionSubmission` built from `session_payload`."""
    return SessionSubmission.model_validate(session_payload(contributor, start, **overrides))
