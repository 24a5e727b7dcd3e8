"""Session payloads a collector sends, and the outcome it gets back.

The payload is strict: an unknown field is rejected, so no URL, page text or other raw browsing
data can enter the ledger by accident.
"""

import hashlib
import json
import uuid
from datetime import UTC
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator

from ledger.config import CATEGORY_VOCABULARY
from ledger.contributors.service import normalize_address
from ledger.errors import InvalidInput

Category = Literal[CATEGORY_VOCABULARY]  # type: ignore[valid-type]

#: Bounds of a PostgreSQL `integer`; values outside cannot be stored.
INT32_MIN, INT32_MAX = -(2**31) + 1, 2**31 - 1

Count = Annotated[StrictInt, Field(ge=INT32_MIN, le=INT32_MAX)]

#: An EVM address as text, documented in the schema; the validator below checks it and the
#: EIP-55 checksum of mixed case, naming the bad value.
ADDRESS_REGEX = r"^0x[0-9a-fA-F]{40}$"


class SessionSubmission(BaseModel):
    """Metadata of one recorded session. The recording itself stays with the collector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: uuid.UUID = Field(description="UUID chosen by the client; resubmitting is safe.")
    contributor: str = Field(
        json_schema_extra={"pattern": ADDRESS_REGEX},
        description="EVM address, any case; mixed case must be a valid checksum.",
    )
    started_at: AwareDatetime = Field(description="RFC 3339 with a time zone.")
    ended_at: AwareDatetime
    active_seconds: Count = Field(description="Seconds of activity within the session.")
    clicks: Count
    keystrokes: Count
    scrolls: Count
    navigations: Count
    categories: list[Category] = Field(max_length=len(CATEGORY_VOCABULARY))
    content_hash: str = Field(
        pattern=r"^(0x)?[0-9a-fA-F]{64}$",
        description="SHA-256 of the encrypted recording, 64 hex digits.",
    )
    client_version: str = Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")

    @field_validator("contributor")
    @classmethod
    def _checksum_contributor(cls, value: str) -> str:
        try:
            return normalize_address(value)
        except InvalidInput as error:
            raise ValueError(error.message) from None

    @field_validator("categories")
    @classmethod
    def _sort_categories(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @property
    def content_hash_bytes(self) -> bytes:
        """The content hash as 32 raw bytes."""
        return bytes.fromhex(self.content_hash.removeprefix("0x"))

    def payload_hash(self) -> bytes:
        """SHA-256 of the canonical payload: equal for the same session sent again."""
        canonical = {
            "session_id": str(self.session_id),
            "contributor": self.contributor,
            "started_at": self.started_at.astimezone(UTC).isoformat(),
            "ended_at": self.ended_at.astimezone(UTC).isoformat(),
            "active_seconds": self.active_seconds,
            "clicks": self.clicks,
            "keystrokes": self.keystrokes,
            "scrolls": self.scrolls,
            "navigations": self.navigations,
            "categories": self.categories,
            "content_hash": self.content_hash.removeprefix("0x").lower(),
            "client_version": self.client_version,
        }
        encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).digest()


class SessionBatch(BaseModel):
    """Several sessions in one request; each gets its own result."""

    model_config = ConfigDict(extra="forbid")

    sessions: list[dict] = Field(min_length=1, max_length=1000)


class SessionResult(BaseModel):
    """Outcome of one submitted session."""

    session_id: uuid.UUID | None
    status: Literal["accepted", "scored", "rejected", "withdrawn", "invalid", "conflict"]
    reason: str | None = Field(
        default=None,
        description="Rejection reason code, `daily_cap` or a zero-score reason; null when none.",
    )
    points: int | None = None
    policy_version: int | None = None
    epoch: int | None = None
    replayed: bool = Field(default=False, description="True when this repeats an earlier result.")
    errors: list[dict] | None = Field(
        default=None, description="Field errors of an invalid batch item; nothing was stored."
    )


class BatchResult(BaseModel):
    """Results of a batch, in the order of the request."""

    results: list[SessionResult]
