"""Pydantic shapes of the talent API: celebrities, their twin configuration and their contract."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from vibethink.talent.models import CelebrityType, EntityStatus

SLUG_PATTERN: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Portal paths are `/{slug}`: a slug must never shadow one of the platform's own paths.
RESERVED_SLUGS: Final = frozenset(
    {
        "about", "account", "admin", "api", "app", "assets", "auth", "billing", "blog", "brand", "brands",
        "callback", "campaigns", "dashboard", "docs", "embed", "healthz", "help", "home", "internal",
        "legal", "login", "logout", "metrics", "new", "oauth", "openapi", "platform", "portal", "pricing",
        "privacy", "readyz", "redoc", "root", "search", "settings", "signin", "signout", "signup",
        "static", "status", "studio", "support", "system", "terms", "twin", "twins", "vibethink",
        "webhooks", "widget", "www",
    }
)  # fmt: skip

# SETUP_FEE and PLATFORM_FEE are always 100 % platform revenue, so they are not in a contract.
PLATFORM_ONLY_REVENUE_TYPES: Final = ("SETUP_FEE", "PLATFORM_FEE")
BASIS_POINTS = Annotated[StrictInt, Field(ge=0, le=10_000)]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _slug(value: str) -> str:
    if not SLUG_PATTERN.fullmatch(value):
        raise ValueError("use lowercase letters, digits and single hyphens between them")
    if value in RESERVED_SLUGS:
        raise ValueError(f"'{value}' is reserved by the platform")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Bio = Annotated[str, Field(max_length=5_000), AfterValidator(_no_nul)]
Slug = Annotated[str, Field(min_length=3, max_length=64), AfterValidator(_slug)]
Label = Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_no_nul)]


class CelebrityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    slug: Slug = Field(description="Global public identifier (portal path): lowercase a-z, 0-9 and '-'.")
    type: CelebrityType
    bio: Bio = ""
    twin_config: dict[str, Any] | None = Field(
        default=None,
        description="Validated against the active twin_config schema; omit it to start in PENDING_SETUP.",
    )


class CelebrityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    bio: Bio | None = None
    type: CelebrityType | None = None
    status: EntityStatus | None = None


class CelebrityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    type: CelebrityType
    status: EntityStatus
    bio: str
    twin_config_version: int | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class TwinConfigRead(BaseModel):
    celebrity_id: uuid.UUID
    twin_config: dict[str, Any]
    twin_config_version: int | None
    updated_at: datetime


class RevenueShares(BaseModel):
    """The celebrity's share per revenue type in basis points (7000 = 70 %); the platform keeps the rest."""

    model_config = ConfigDict(extra="forbid")

    SUBSCRIPTION: BASIS_POINTS = 7_000
    TRANSACTION_FEE: BASIS_POINTS = 7_000
    CAMPAIGN_FEE: BASIS_POINTS = 8_000
    CPM: BASIS_POINTS = 8_000
    CPC: BASIS_POINTS = 8_000


class RevenueSharesUpdate(RevenueShares):
    # Declared only to refuse them with the field named: these types are never the celebrity's.
    SETUP_FEE: None = Field(default=None, exclude=True, description="Not configurable: always 100% platform.")
    PLATFORM_FEE: None = Field(
        default=None, exclude=True, description="Not configurable: always 100% platform."
    )

    @field_validator("SETUP_FEE", "PLATFORM_FEE", mode="before")
    @classmethod
    def _platform_only(cls, value: Any, info: ValidationInfo) -> None:
        raise ValueError(f"{info.field_name} is always 100% platform revenue and cannot be configured")


class ExclusivityRules(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    exclusiveCategories: list[Label] = Field(default_factory=list, max_length=100)
    blockedBrands: list[Label] = Field(default_factory=list, max_length=500)


class ContractUpdate(BaseModel):
    """The celebrity's contract as a whole; absent revenue types take the platform's default share."""

    model_config = ConfigDict(extra="forbid")

    revenue_shares_bp: RevenueSharesUpdate = Field(default_factory=RevenueSharesUpdate)
    exclusivity_rules: ExclusivityRules = Field(default_factory=ExclusivityRules)
    starts_on: date
    ends_on: date | None = None

    @field_validator("ends_on")
    @classmethod
    def _term_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        starts_on = info.data.get("starts_on")
        if value is not None and isinstance(starts_on, date) and value <= starts_on:
            raise ValueError("ends_on must be after starts_on")
        return value


class ContractRead(BaseModel):
    id: uuid.UUID
    celebrity_id: uuid.UUID
    revenue_shares_bp: RevenueShares
    platform_only_revenue_types: list[str] = Field(default_factory=lambda: list(PLATFORM_ONLY_REVENUE_TYPES))
    exclusivity_rules: ExclusivityRules
    starts_on: date
    ends_on: date | None
    created_at: datetime
    updated_at: datetime
