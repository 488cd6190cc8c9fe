"""One settings object for the whole platform, read from `VIBETHINK_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret-change-me"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIBETHINK_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Owner URL: migrations and maintenance. Unset means the embedded PostgreSQL in `data_dir/pg`.
    database_url: str | None = None
    # The app role's URL. Unset means: the owner URL with the app role's name and password.
    app_database_url: str | None = None
    app_db_role: str = "vibethink_app"
    app_db_password: str = "vibethink-app-local"  # noqa: S105
    database_name: str = "vibethink"
    data_dir: Path = Path("var")
    pool_size: int = 10
    pool_max_overflow: int = 10
    # Connections for the chat turn's two calls; 0: twice the CPU cores. They are CPU-bound in
    # PostgreSQL: more of them at once than the cores can run only adds contention.
    chat_pool_size: int = Field(default=0, ge=0)

    secret_key: str = DEVELOPMENT_SECRET
    session_max_age_seconds: int = 60 * 60 * 12
    session_cookie_name: str = "vt_session"
    cookie_secure: bool = False

    login_max_failures_per_account: int = 5
    login_max_failures_per_ip: int = 20
    login_window_seconds: int = 900

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    in_process_dispatcher: bool = True
    outbox_poll_seconds: float = Field(default=5.0, gt=0)
    outbox_max_attempts: int = 10
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)  # events a worker claims at a time
    outbox_tenants_at_once: int = Field(default=4, ge=1, le=32)  # tenants' shares handled side by side
    outbox_claims_at_once: int = Field(default=2, ge=1, le=8)  # claims a worker has in hand at once

    # Model providers. `grounded` needs no model and no network; a twin may choose another in its
    # twin_config (`model.provider`), and the keys come from here, never from tenant data.
    model_provider: Literal["grounded", "openai", "anthropic"] = "grounded"
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: str | None = None
    anthropic_model: str = "claude-haiku-4-5"
    provider_timeout_seconds: float = Field(default=30.0, gt=0)
    provider_connect_timeout_seconds: float = Field(default=5.0, gt=0)

    # Embeddings for vector retrieval: `none` keeps retrieval to full-text search.
    embedding_provider: Literal["none", "openai", "local"] = "none"
    embedding_base_url: str = "https://api.openai.com/v1"
    embedding_api_key: str | None = None
    embedding_model: str = "text-embedding-3-small"

    # Chat limits (the spec's conversation growth rules).
    chat_max_messages: int = Field(default=1000, ge=2)
    chat_warning_ratio: float = Field(default=0.9, gt=0, le=1)
    chat_history_turns: int = Field(default=12, ge=0)
    fan_token_max_age_seconds: int = Field(default=60 * 60 * 24 * 30, gt=0)

    # Deployments. Hosts that serve the platform itself; any other Host must be a verified custom
    # domain (white-label) or gets a plain 404. The public URL's host is always one of them.
    platform_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]", "testserver")
    # Where a custom domain's verification token is fetched; {domain} and {path} are filled in.
    domain_verification_url: str = "http://{domain}{path}"
    domain_verification_timeout_seconds: float = Field(default=5.0, gt=0)
    # Browser session tokens of the embedded widget (bound to tenant, deployment and origin).
    widget_session_seconds: int = Field(default=15 * 60, gt=0, le=15 * 60)
    # Payments: `ledger` (offline: the platform records what it is told was paid) or `stripe`.
    payment_provider: Literal["ledger", "stripe"] = "ledger"
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"
    subscription_grace_days: int = Field(default=7, ge=0, le=60)
    # Compliance evidence ledger: the Ed25519 signing key lives outside the database (a folder of
    # keys, default `data_dir/compliance/keys`, or a base64 seed here), and so does the pseudonym pepper.
    compliance_keys_dir: Path | None = None
    compliance_signing_key: str | None = None
    compliance_checkpoint_every: int = Field(default=1000, ge=1)
    # The background runner (`vibethink worker`, or in-process beside `serve`) runs periodic jobs:
    # due scheduled reports and the evidence retention purge, each at its own interval.
    periodic_jobs: bool = True
    compliance_reports_every_seconds: float = Field(default=600.0, gt=0)
    compliance_purge_every_seconds: float = Field(default=3600.0, gt=0)
    compliance_purge_batch: int = Field(default=50_000, ge=1)

    # Outgoing e-mail (scheduled compliance reports). No host: reports are kept, not mailed.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_from: str = "compliance@vibethink.local"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEVELOPMENT_SECRET:
            raise ValueError("VIBETHINK_SECRET_KEY must be set to a strong secret in production")
        if self.environment == "production" and len(self.secret_key) < 32:
            raise ValueError("VIBETHINK_SECRET_KEY must be at least 32 characters in production")
        return self

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def pg_data_dir(self) -> Path:
        return (self.data_dir / "pg").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()
