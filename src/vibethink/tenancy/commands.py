"""`vibethink user …` and `vibethink api-key …`: tenancy writes from the console, as a platform operator."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.database import Database, RlsContext, apply_context, stop_embedded
from vibethink.core.errors import PlatformError
from vibethink.core.settings import get_settings
from vibethink.tenancy import service
from vibethink.tenancy.models import Role
from vibethink.tenancy.service import Operator

T = TypeVar("T")

user_app = typer.Typer(help="Dashboard users.", no_args_is_help=True)
api_key_app = typer.Typer(help="API keys of a tenant (shown once, only a hash stored).", no_args_is_help=True)

OPERATOR_ROLE = Role.PLATFORM_ADMIN.value


def _in_tenant(slug: str, work: Callable[[AsyncSession, Operator], Awaitable[T]]) -> T:
    """Runs `work` in one admin-context transaction scoped to the tenant `slug`, then stops the database."""

    async def run() -> T:
        db = Database(get_settings())
        try:
            async with db.transaction(RlsContext(is_admin=True, role=OPERATOR_ROLE)) as session:
                tenant = await service.get_tenant_by_slug(session, slug)
                context = RlsContext(is_admin=True, role=OPERATOR_ROLE, tenant_id=tenant.id)
                await apply_context(session, context)
                return await work(
                    session, Operator(tenant_id=tenant.id, user_id=None, role=Role.PLATFORM_ADMIN)
                )
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except PlatformError as exc:
        where = f" ({exc.field})" if exc.field else ""
        typer.secho(f"error{where}: {exc.message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from exc
    finally:
        stop_embedded()


@user_app.command("create")
def create_user(
    email: str = typer.Option(..., help="The user's e-mail address (their sign-in name)."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters."
    ),
    tenant: str = typer.Option(..., help="Slug of the tenant the user joins."),
    role: Role = typer.Option(..., case_sensitive=False, help="The user's role in that tenant."),
    display_name: str = typer.Option(None, help="Shown in dashboards (default: the e-mail's local part)."),
) -> None:
    """Create a dashboard user with a password and a role in one tenant."""

    async def work(session: AsyncSession, operator: Operator) -> service.MemberView:
        return await service.add_user(
            session, operator, email, password=password, role=role, display_name=display_name
        )

    member = _in_tenant(tenant, work)
    typer.echo(f"created {member.email} ({member.user_id}) as {member.role.value} in {tenant}")


@api_key_app.command("create")
def create_api_key(
    tenant: str = typer.Option(..., help="Slug of the tenant the key acts for."),
    name: str = typer.Option(..., help="What the key is for, e.g. 'CI' or 'website'."),
    scope: list[str] = typer.Option(
        ..., "--scope", help="A scope such as celebrities:read; repeat for more."
    ),
    expires_at: datetime = typer.Option(
        None, help="When the key stops working (ISO 8601 with a time zone, e.g. 2027-01-01T00:00:00+00:00)."
    ),
) -> None:
    """Create an API key and print it once; only its hash is stored."""

    async def work(session: AsyncSession, operator: Operator) -> service.CreatedApiKey:
        return await service.create_api_key(session, operator, name=name, scopes=scope, expires_at=expires_at)

    created = _in_tenant(tenant, work)
    typer.echo(f"id:     {created.key.id}")
    typer.echo(f"scopes: {' '.join(created.key.scopes)}")
    typer.echo(f"key:    {created.plaintext}")
    typer.echo("Store the key now: it is never shown again.")


@api_key_app.command("list")
def list_api_keys(tenant: str = typer.Option(..., help="Slug of the tenant.")) -> None:
    """List a tenant's API keys (never their secrets)."""

    async def work(session: AsyncSession, operator: Operator) -> list[service.ApiKeyView]:
        keys: list[service.ApiKeyView] = []
        cursor: str | None = None
        while True:
            page, cursor = await service.list_api_keys(session, operator, cursor=cursor, limit=100)
            keys += page
            if cursor is None:
                return keys

    keys = _in_tenant(tenant, work)
    if not keys:
        typer.echo(f"{tenant} has no API keys")
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        if key.expires_at and not key.revoked_at:
            state += f" until {key.expires_at.isoformat()}"
        typer.echo(f"{key.id}  {key.prefix:<16} {key.name:<24} {state:<10} {','.join(key.scopes)}")


@api_key_app.command("revoke")
def revoke_api_key(
    key_id: uuid.UUID = typer.Argument(..., help="The key's id, as `api-key list` shows it."),
    tenant: str = typer.Option(..., help="Slug of the tenant that owns the key."),
) -> None:
    """Revoke an API key; it stops working at once."""

    async def work(session: AsyncSession, operator: Operator) -> service.ApiKeyView:
        return await service.revoke_api_key(session, operator, key_id)

    key = _in_tenant(tenant, work)
    typer.echo(f"revoked {key.id} ({key.name})")
