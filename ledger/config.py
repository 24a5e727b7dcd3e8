"""Typed settings read from the environment (and an optional `.env` file).

Every setting has a name in the `LEDGER_` namespace; the database and the chain endpoint also
accept the conventional `DATABASE_URL` and `RPC_URL` names.
"""

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Categories that are never credited unless the operator changes the list.
DEFAULT_SENSITIVE_CATEGORIES = ("banking", "health", "adult", "government")

#: The fixed vocabulary of coarse session tags a collector may send.
CATEGORY_VOCABULARY = (
    "shopping",
    "travel",
    "productivity",
    "social",
    "news",
    "education",
    "entertainment",
    "developer",
    "search",
    "email",
    "banking",
    "health",
    "adult",
    "government",
)

#: One token has 18 decimals, as an ERC-20 with the default `decimals()`.
TOKEN_UNIT = 10**18


class Settings(BaseSettings):
    """Service configuration. Amounts are integers in token base units (18 decimals)."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", env_file=".env", extra="ignore")

    environment: str = Field(default="development", description="development, test or production")
    log_level: str = Field(default="INFO", description="logging level of services")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LEDGER_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL (postgresql+psycopg://...). Unset: embedded PostgreSQL.",
    )
    rpc_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LEDGER_RPC_URL", "RPC_URL"),
        description="EVM JSON-RPC endpoint. Unset: a local anvil started from node_modules.",
    )
    chain_id: int | None = Field(default=None, description="Expected chain id; checked at start.")
    deployment_file: str | None = Field(
        default=None, description="JSON record of the deployed contracts, written by `ledger contracts deploy`."
    )
    anchorer_private_key: SecretStr | None = Field(
        default=None, description="Hex private key of the anchorer account."
    )
    anchorer_keystore: str | None = Field(default=None, description="Path of an encrypted keystore.")
    anchorer_keystore_password: SecretStr | None = None
    relayer_private_key: SecretStr | None = Field(
        default=None,
        description="Hex private key of the account that pays gas for signed claims sent to POST /v1/claims/relay.",
    )

    confirmations: int = Field(default=1, ge=0, description="Blocks on top of an anchor or claim.")
    anchor_replace_after_seconds: float = Field(
        default=120.0,
        ge=0,
        description="Seconds an anchor transaction may stay unmined before it is replaced with higher fees.",
    )
    chain_retry_max_seconds: float = Field(
        default=300.0, gt=0, description="Maximum wait between retries after a chain error, in seconds."
    )
    challenge_period_seconds: int = Field(default=0, ge=0)
    emission_per_epoch: int = Field(
        default=1_000_000 * TOKEN_UNIT, gt=0, description="Tokens per epoch, in base units."
    )
    epoch_duration_seconds: int = Field(default=86_400, gt=0)
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)

    sensitive_categories: tuple[str, ...] = DEFAULT_SENSITIVE_CATEGORIES
    max_clock_skew_seconds: int = Field(default=300, ge=0)
    rate_limit_sessions_per_hour: int = Field(default=120, gt=0)
    public_rate_limit_per_minute: int = Field(
        default=120, gt=0, description="Requests per minute one client address may send to the public routes."
    )
    public_rate_limit_burst: int = Field(
        default=60, gt=0, description="Requests one client address may send at once after being idle."
    )
    database_pool_size: int = Field(
        default=16,
        gt=0,
        le=200,
        description=(
            "Connections each API process keeps open to PostgreSQL. The process runs half as "
            "many requests at once, as a request may hold two connections, and keeps as many "
            "again for its async read routes."
        ),
    )

    collector_api_key: SecretStr | None = Field(
        default=None, description="Bootstrap collector key, stored hashed at start."
    )
    auth_domain: str = Field(default="localhost", description="Domain expected in sign-in messages.")
    auth_token_ttl_seconds: int = Field(default=3_600, gt=0)

    @field_validator("sensitive_categories", mode="before")
    @classmethod
    def _split_categories(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
