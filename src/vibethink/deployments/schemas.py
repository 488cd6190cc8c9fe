"""Pydantic shapes of the deployments API and the widget's session endpoint."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from vibethink.deployments.models import DeploymentStatus, DeploymentType

DOMAIN_PATTERN: Final = re.compile(
    r"^(?=.{4,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))+$"
)
SLUG_PATTERN: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _domain(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    if not DOMAIN_PATTERN.fullmatch(value) or value.replace(".", "").isdigit():
        raise ValueError("use a domain name such as andrescantor.ai (no scheme, path, port or IP address)")
    return value


def _slug(value: str) -> str:
    if not SLUG_PATTERN.fullmatch(value):
        raise ValueError("use lowercase letters, digits and single hyphens between them")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Domain = Annotated[str, Field(min_length=4, max_length=253), AfterValidator(_domain)]
PathSlug = Annotated[str, Field(min_length=2, max_length=80), AfterValidator(_slug)]
OriginText = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_no_nul)]
Config = Annotated[
    dict[str, Any],
    Field(description="Theme, branding, behaviour overrides, premium content; the deployment_config schema."),
]


class _Window(BaseModel):
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @model_validator(mode="after")
    def _window_order(self) -> _Window:
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-06-11T18:00:00Z)")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class DeploymentCreate(_Window):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: DeploymentType
    name: Name
    config: Config = Field(default_factory=dict)
    allowed_origins: list[OriginText] = Field(default_factory=list, max_length=50)
    require_identity: bool = False
    custom_domain: Domain | None = Field(
        default=None, description="WHITE_LABEL only; verified before activation."
    )
    slug: PathSlug | None = Field(
        default=None, description="Path part of a campaign page /{celebrity}/c/{slug}."
    )


class DeploymentUpdate(BaseModel):
    """Only the fields sent change; `config` is replaced whole."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    config: Config | None = None
    allowed_origins: list[OriginText] | None = Field(default=None, max_length=50)
    require_identity: bool | None = None
    custom_domain: Domain | None = None
    slug: PathSlug | None = None


class DeploymentSchedule(_Window):
    model_config = ConfigDict(extra="forbid")

    starts_at: datetime = Field(description="When the deployment opens to fans.")


class DomainVerification(BaseModel):
    domain: str
    verified: bool
    token: str
    url: str = Field(description="Where the token must be served (plain text) before verification.")


class DeploymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    type: DeploymentType
    name: str
    status: DeploymentStatus = Field(description="As stored: SCHEDULED, ACTIVE, INACTIVE or ARCHIVED.")
    effective_status: DeploymentStatus = Field(description="What fans see now, by status and window.")
    config: dict[str, Any]
    starts_at: datetime | None
    ends_at: datetime | None
    widget_key: str
    analytics_key: str
    allowed_origins: list[str]
    require_identity: bool
    has_identity_secret: bool
    slug: str | None
    custom_domain: str | None
    domain: DomainVerification | None
    public_url: str | None = Field(description="Where fans find it (portal, campaign page or custom domain).")
    embed_code: str
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class IdentitySecretRead(BaseModel):
    deployment_id: uuid.UUID
    secret: str = Field(description="Shown once: sign your users' ids with HMAC-SHA256 under it.")
    algorithm: str = "HMAC-SHA256(secret, user_id), hex"


class DeploymentStats(BaseModel):
    deployment_id: uuid.UUID
    analytics_key: str
    interactions: int
    unique_fans: int
    conversations: int
    conversions: int
    conversions_by_kind: dict[str, int]
    since: datetime | None
    until: datetime | None


class WidgetSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment_key: str = Field(min_length=8, max_length=40)
    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    user_signature: str | None = Field(default=None, min_length=1, max_length=200)


class WidgetSessionRead(BaseModel):
    token: str
    fan_key: str
    expires_at: datetime
    deployment_id: uuid.UUID
    name: str = Field(description="The twin's name, for the launcher's label.")
    frame_url: str
    verified_user: bool
    greeting: str | None
    disclosure: str | None
    theme: dict[str, Any]


class WidgetRefresh(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=8, max_length=2000)


class ConversionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(pattern="^(SUBSCRIBE_CLICK|LINK_CLICK)$")
    detail: str = Field(default="", max_length=200)


def embed_code(public_url: str, *, celebrity_slug: str, widget_key: str, theme: dict[str, Any]) -> str:
    """The snippet a site owner pastes: the spec's div plus this deployment's public key."""
    mode = theme.get("mode") if theme.get("mode") in ("light", "dark") else "dark"
    position = theme.get("position") or "bottom-right"
    return (
        f'<script src="{public_url}/widget.js" async></script>\n'
        f'<div id="vibethink-twin" data-celebrity-id="{celebrity_slug}" data-theme="{mode}"'
        f' data-position="{position}" data-deployment-key="{widget_key}"></div>'
    )


def public_url_of(
    public_url: str, *, type: DeploymentType, celebrity_slug: str, slug: str | None, custom_domain: str | None
) -> str | None:
    if type is DeploymentType.VIBETHINK_PORTAL:
        return f"{public_url}/{celebrity_slug}"
    if type is DeploymentType.BRAND_CAMPAIGN and slug:
        return f"{public_url}/{celebrity_slug}/c/{slug}"
    if type is DeploymentType.WHITE_LABEL and custom_domain:
        return f"https://{custom_domain}/"
    return None
