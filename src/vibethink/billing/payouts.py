"""Payout settings, payout batches (what each talent is owed), and what brands' campaigns cost."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing.models import Payout, PayoutMethod, PayoutSettings, PayoutStatus, RevenueTransaction
from vibethink.billing.providers.base import PaymentProvider
from vibethink.billing.schemas import PayoutSettingsWrite
from vibethink.billing.statements import month_bounds, month_start
from vibethink.core import outbox
from vibethink.core.errors import InvalidInput, InvalidTransition, NotFound, PlatformError
from vibethink.core.models import new_id
from vibethink.core.pagination import newest_first
from vibethink.talent import service as talent_service

if TYPE_CHECKING:
    from vibethink.tenancy.access import Principal

BRAND_COSTS_SQL = text(
    "SELECT campaign_id, campaign_name, celebrity_name, type, month, currency, gross_cents"
    " FROM billing_brand_campaign_costs(:start, :end)"
)


async def settings_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID
) -> PayoutSettings:
    found = await session.scalar(
        select(PayoutSettings).where(
            PayoutSettings.tenant_id == tenant_id, PayoutSettings.celebrity_id == celebrity_id
        )
    )
    if found is not None:
        return found
    return PayoutSettings(
        tenant_id=tenant_id,
        celebrity_id=celebrity_id,
        **PayoutSettingsWrite().model_dump(),
    )


async def put_settings(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, data: PayoutSettingsWrite
) -> PayoutSettings:
    celebrity = await talent_service.get(session, principal, celebrity_id)
    if data.method is PayoutMethod.STRIPE_CONNECT and not data.stripe_account_id:
        raise InvalidInput("Stripe Connect payouts need the connected account id.", field="stripe_account_id")
    found = await session.scalar(
        select(PayoutSettings)
        .where(PayoutSettings.tenant_id == principal.tenant_id, PayoutSettings.celebrity_id == celebrity.id)
        .with_for_update()
    )
    if found is None:
        found = PayoutSettings(tenant_id=principal.tenant_id, celebrity_id=celebrity.id)
        session.add(found)
    for key, value in data.model_dump().items():
        setattr(found, key, value)
    await session.flush()
    await outbox.emit(
        session,
        "PAYOUT_SETTINGS_UPDATED",
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="celebrity",
        subject_id=celebrity.id,
        payload={"method": data.method.value, "minimum_payout_cents": data.minimum_payout_cents},
    )
    return found


async def create_batch(session: AsyncSession, *, month: date) -> list[Payout]:
    """For every talent (admin context): celebrity shares posted through the month's end, less every
    earlier payout, when it reaches the talent's minimum. Run twice, the second finds nothing owed."""
    _, end = month_bounds(month_start(month))
    earned = (
        await session.execute(
            select(
                RevenueTransaction.tenant_id,
                RevenueTransaction.celebrity_id,
                RevenueTransaction.currency,
                func.sum(RevenueTransaction.celebrity_share_cents),
            )
            .where(RevenueTransaction.occurred_at < end)
            .group_by(
                RevenueTransaction.tenant_id, RevenueTransaction.celebrity_id, RevenueTransaction.currency
            )
        )
    ).all()
    paid_rows = (
        await session.execute(
            select(Payout.tenant_id, Payout.celebrity_id, Payout.currency, func.sum(Payout.amount_cents))
            .where(Payout.status.in_((PayoutStatus.PENDING, PayoutStatus.PAID)))
            .group_by(Payout.tenant_id, Payout.celebrity_id, Payout.currency)
        )
    ).all()
    paid = {(r[0], r[1], r[2]): int(r[3]) for r in paid_rows}
    batch_id = new_id()
    created: list[Payout] = []
    for tenant_id, celebrity_id, currency, total in earned:
        owed = int(total) - paid.get((tenant_id, celebrity_id, currency), 0)
        settings = await settings_of(session, tenant_id=tenant_id, celebrity_id=celebrity_id)
        if owed <= 0 or owed < settings.minimum_payout_cents:
            continue
        payout = Payout(
            tenant_id=tenant_id,
            id=new_id(),
            celebrity_id=celebrity_id,
            batch_id=batch_id,
            month=month_start(month),
            amount_cents=owed,
            currency=currency,
            method=settings.method,
            status=PayoutStatus.PENDING,
        )
        session.add(payout)
        created.append(payout)
    await session.flush()
    for payout in created:
        await session.refresh(payout, ["created_at"])
        await outbox.emit(
            session,
            "PAYOUT_CREATED",
            tenant_id=payout.tenant_id,
            subject_type="payout",
            subject_id=payout.id,
            payload={
                "amount_cents": payout.amount_cents,
                "currency": payout.currency,
                "batch_id": str(batch_id),
            },
        )
    return created


async def send_transfers(session: AsyncSession, provider: PaymentProvider, created: Sequence[Payout]) -> None:
    """Stripe Connect payouts are transferred now (idempotent per payout); ledger ones wait to be marked."""
    for payout in created:
        if payout.method is not PayoutMethod.STRIPE_CONNECT or provider.name != "stripe":
            continue
        settings = await settings_of(session, tenant_id=payout.tenant_id, celebrity_id=payout.celebrity_id)
        try:
            payout.transfer_id = await provider.transfer(
                payout.amount_cents,
                payout.currency,
                settings.stripe_account_id,
                idempotency_key=f"payout-{payout.id}",
            )
        except PlatformError as exc:
            payout.status = PayoutStatus.FAILED
            payout.failure = exc.message
        else:
            payout.status = PayoutStatus.PAID
            payout.paid_at = datetime.now(UTC)
            payout.reference = payout.transfer_id
    await session.flush()


async def mark_paid(session: AsyncSession, payout_id: uuid.UUID, *, reference: str) -> Payout:
    payout = await session.scalar(select(Payout).where(Payout.id == payout_id).with_for_update())
    if payout is None:
        raise NotFound("No such payout.")
    if payout.status is PayoutStatus.PAID:
        if payout.reference == reference:
            return payout
        raise InvalidTransition("This payout is already paid under another reference.")
    payout.status = PayoutStatus.PAID
    payout.reference = reference
    payout.paid_at = datetime.now(UTC)
    await session.flush()
    await outbox.emit(
        session,
        "PAYOUT_PAID",
        tenant_id=payout.tenant_id,
        subject_type="payout",
        subject_id=payout.id,
        payload={"reference": reference, "amount_cents": payout.amount_cents},
    )
    return payout


async def page(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[Payout], str | None]:
    query = select(Payout).where(Payout.tenant_id == tenant_id, Payout.celebrity_id == celebrity_id)
    return await newest_first(
        session, query, created_at=Payout.created_at, row_id=Payout.id, cursor=cursor, limit=limit
    )


async def brand_costs(session: AsyncSession, *, start: datetime, end: datetime) -> Sequence[Any]:
    """The calling brand tenant's campaign charges (a reviewed SECURITY DEFINER lookup)."""
    return (await session.execute(BRAND_COSTS_SQL, {"start": start, "end": end})).all()
