"""Tenancy API shapes: what comes in (validated, unknown fields refused) and what goes out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vibethink.tenancy.models import Role, TenantKind, TenantStatus, TenantTier


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SignUp(Input):
    email: str | None = Field(default=None, max_length=320, description="Optional with an invitation.")
    password: str = Field(min_length=1, max_length=1024)
    display_name: str | None = Field(default=None, max_length=200)
    tenant_name: str | None = Field(
        default=None, max_length=200, description="The talent or brand this account manages."
    )
    tenant_slug: str | None = Field(
        default=None, max_length=64, description="Derived from the name if empty."
    )
    tenant_kind: Literal["TALENT", "BRAND"] = "TALENT"
    invite: str | None = Field(default=None, max_length=200, description="The invitation link's token.")


class Login(Input):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class UserRead(Output):
    id: uuid.UUID
    email: str
    display_name: str
    created_at: datetime
    last_login_at: datetime | None


class MembershipRead(Output):
    tenant_id: uuid.UUID
    slug: str
    name: str
    kind: TenantKind
    role: Role


class SessionRead(BaseModel):
    user: UserRead
    memberships: list[MembershipRead]


class MeRead(BaseModel):
    via: Literal["session", "api_key"]
    user: UserRead | None
    memberships: list[MembershipRead]
    tenant_id: uuid.UUID | None
    role: Role | None
    permissions: list[str]


class TenantRead(Output):
    id: uuid.UUID
    kind: TenantKind
    slug: str
    name: str
    tier: TenantTier
    status: TenantStatus
    created_at: datetime


class TenantUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tier: TenantTier | None = Field(default=None, description="Platform admins only.")


class TenantCreate(Input):
    kind: TenantKind
    slug: str = Field(max_length=64)
    name: str = Field(min_length=1, max_length=200)
    tier: TenantTier = TenantTier.FREE
    owner_email: str = Field(max_length=320, description="Joins at once, or receives an invitation link.")
    owner_display_name: str | None = Field(default=None, max_length=200)


class MemberRead(Output):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    is_pending: bool = Field(description="Invited, has not set a password yet.")
    joined_at: datetime


class MemberInvite(Input):
    email: str = Field(max_length=320)
    role: Role
    display_name: str | None = Field(default=None, max_length=200)


class MemberInvited(BaseModel):
    member: MemberRead
    invite_url: str | None = Field(
        default=None, description="For a new account: the one-time sign-up link. Shown only in this response."
    )


class TenantCreated(BaseModel):
    tenant: TenantRead
    owner: MemberInvited


class MemberUpdate(Input):
    role: Role


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=32)
    expires_at: AwareDatetime | None = None


class ApiKeyRead(Output):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it; never the secret.")
    scopes: list[str]
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The full key. Store it now: it is never shown again.")
