"""SQLAlchemy mappings of every table. The schema itself is created by alembic migrations."""

from ledger.models.auth import AccessToken, ApiKey, SignInNonce
from ledger.models.base import Base, TokenAmount
from ledger.models.chain import AnchorTransaction, AnchorTxStatus, ChainClaim, IndexerCursor, SignerNonce
from ledger.models.contributor import ConsentEvent, Contributor
from ledger.models.epoch import (
    Allocation,
    Entitlement,
    EntitlementDebit,
    Epoch,
    EpochStatus,
    MerkleLeaf,
    MerkleTreeRecord,
)
from ledger.models.journal import EMISSION_ACCOUNT, JournalEntry, JournalPosting, PointBalance
from ledger.models.policy import ScoringPolicy
from ledger.models.session import CreditedContent, DailyPoints, Session, SessionStatus

__all__ = [
    "EMISSION_ACCOUNT",
    "AccessToken",
    "Allocation",
    "AnchorTransaction",
    "AnchorTxStatus",
    "ApiKey",
    "Base",
    "ChainClaim",
    "ConsentEvent",
    "Contributor",
    "CreditedContent",
    "DailyPoints",
    "Entitlement",
    "EntitlementDebit",
    "Epoch",
    "EpochStatus",
    "IndexerCursor",
    "JournalEntry",
    "JournalPosting",
    "MerkleLeaf",
    "MerkleTreeRecord",
    "PointBalance",
    "ScoringPolicy",
    "Session",
    "SessionStatus",
    "SignInNonce",
    "SignerNonce",
    "TokenAmount",
]
