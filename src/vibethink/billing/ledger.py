"""The revenue ledger: immutable postings, shares by contract, reversals by the cumulative method.

Each posting's share basis is direct revenue (gross less third-party processing fees). SETUP_FEE
and PLATFORM_FEE are the platform's alone, outside the share. A posting that names what it is for
(`external_ref`) is written at most once, so retried month closes and provider events never count twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing.models import RevenueTransaction, TransactionType
from vibethink.core import outbox
from vibethink.core.errors import Conflict, InvalidInput, NotFound
from vibethink.core.models import new_id
from vibethink.core.money import BASIS_POINTS, check_currency, cumulative_split, largest_remainder, split
from vibethink.talent import service as talent_service

PLATFORM_ONLY: Final = frozenset({TransactionType.SETUP_FEE, TransactionType.PLATFORM_FEE})
CELEBRITY, PLATFORM = "celebrity", "platform"


class NothingToReverse(Conflict):
    code = "nothing_to_reverse"
    default_message = "This posting has already been reversed in full."


def parties(celebrity_bp: int) -> dict[str, int]:
    if not 0 <= celebrity_bp <= BASIS_POINTS:
        raise ValueError("a share is between 0 and 10,000 basis points")
    return {CELEBRITY: celebrity_bp, PLATFORM: BASIS_POINTS - celebrity_bp}


def celebrity_bp(kind: TransactionType, shares_bp: Mapping[str, int]) -> int:
    """The celebrity's basis points for a revenue type under a contract's shares."""
    return 0 if kind in PLATFORM_ONLY else int(shares_bp[kind.value])


def shares_of(net_cents: int, bp: int) -> tuple[int, int]:
    """(celebrity, platform) parts of `net_cents`; they always sum to it."""
    parts = split(net_cents, parties(bp))
    return parts[CELEBRITY], parts[PLATFORM]


async def contract_shares(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID
) -> dict[str, int]:
    return await talent_service.revenue_shares(session, tenant_id=tenant_id, celebrity_id=celebrity_id)


@dataclass(slots=True)
class Posting:
    """One money movement to record. Shares are computed from the contract unless given."""

    tenant_id: uuid.UUID
    celebrity_id: uuid.UUID
    type: TransactionType
    gross_cents: int
    occurred_at: datetime
    currency: str = "USD"
    fee_cents: int = 0
    external_ref: str | None = None
    deployment_id: uuid.UUID | None = None
    brand_campaign_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None
    purchase_id: uuid.UUID | None = None
    reverses_id: uuid.UUID | None = None
    fan_key: str | None = None
    provider: str = "ledger"
    description: str = ""
    celebrity_share_cents: int | None = None
    platform_share_cents: int | None = None
    id: uuid.UUID = field(default_factory=new_id)

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.fee_cents

    def with_shares(self, bp: int) -> Posting:
        if self.celebrity_share_cents is None or self.platform_share_cents is None:
            self.celebrity_share_cents, self.platform_share_cents = shares_of(self.net_cents, bp)
        return self

    def row(self) -> dict[str, object]:
        check_currency(self.currency)
        if self.celebrity_share_cents is None or self.platform_share_cents is None:
            raise ValueError("shares are computed before a posting is written")
        if self.type in PLATFORM_ONLY and self.celebrity_share_cents != 0:
            raise ValueError(f"{self.type.value} is the platform's alone")
        return {
            "tenant_id": self.tenant_id,
            "id": self.id,
            "celebrity_id": self.celebrity_id,
            "deployment_id": self.deployment_id,
            "brand_campaign_id": self.brand_campaign_id,
            "subscription_id": self.subscription_id,
            "purchase_id": self.purchase_id,
            "reverses_id": self.reverses_id,
            "fan_key": self.fan_key,
            "provider": self.provider,
            "description": self.description[:500],
            "type": self.type,
            "currency": self.currency,
            "gross_cents": self.gross_cents,
            "fee_cents": self.fee_cents,
            "net_cents": self.net_cents,
            "celebrity_share_cents": self.celebrity_share_cents,
            "platform_share_cents": self.platform_share_cents,
            "external_ref": self.external_ref,
            "occurred_at": self.occurred_at,
        }


async def write(session: AsyncSession, postings: Sequence[Posting]) -> list[uuid.UUID]:
    """Inserts postings whose shares are set; those whose `external_ref` exists already are skipped.

    Returns the ids actually written.
    """
    if not postings:
        return []
    written: list[uuid.UUID] = []
    for start in range(0, len(postings), 1_000):
        rows = [p.row() for p in postings[start : start + 1_000]]
        statement = (
            insert(RevenueTransaction)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=["tenant_id", "external_ref"], index_where=text("external_ref IS NOT NULL")
            )
            .returning(RevenueTransaction.id)
        )
        written.extend((await session.scalars(statement)).all())
    return written


async def post(
    session: AsyncSession, posting: Posting, *, shares_bp: Mapping[str, int] | None = None
) -> bool:
    """Records one posting with the contract's shares (or `shares_bp`); False when it existed already."""
    if posting.celebrity_share_cents is None:
        shares = shares_bp or await contract_shares(
            session, tenant_id=posting.tenant_id, celebrity_id=posting.celebrity_id
        )
        posting.with_shares(celebrity_bp(posting.type, shares))
    written = await write(session, [posting])
    if written:
        await outbox.emit(
            session,
            "REVENUE_RECORDED",
            tenant_id=posting.tenant_id,
            subject_type="revenue_transaction",
            subject_id=posting.id,
            payload={
                "type": posting.type.value,
                "gross_cents": posting.gross_cents,
                "currency": posting.currency,
                "celebrity_id": str(posting.celebrity_id),
                "reverses_id": str(posting.reverses_id) if posting.reverses_id else None,
            },
        )
    return bool(written)


async def get(session: AsyncSession, tenant_id: uuid.UUID, transaction_id: uuid.UUID) -> RevenueTransaction:
    found = await session.scalar(
        select(RevenueTransaction).where(
            RevenueTransaction.tenant_id == tenant_id, RevenueTransaction.id == transaction_id
        )
    )
    if found is None:
        raise NotFound("No such revenue transaction.")
    return found


async def by_ref(session: AsyncSession, tenant_id: uuid.UUID, external_ref: str) -> RevenueTransaction | None:
    return await session.scalar(
        select(RevenueTransaction).where(
            RevenueTransaction.tenant_id == tenant_id, RevenueTransaction.external_ref == external_ref
        )
    )


async def reversed_so_far(session: AsyncSession, original: RevenueTransaction) -> tuple[int, int, int]:
    """(gross, fee, celebrity share) already reversed of `original`, as positive amounts."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(RevenueTransaction.gross_cents), 0),
                func.coalesce(func.sum(RevenueTransaction.fee_cents), 0),
                func.coalesce(func.sum(RevenueTransaction.celebrity_share_cents), 0),
            ).where(
                RevenueTransaction.tenant_id == original.tenant_id,
                RevenueTransaction.reverses_id == original.id,
            )
        )
    ).one()
    return -int(row[0]), -int(row[1]), -int(row[2])


async def reverse(
    session: AsyncSession,
    original: RevenueTransaction,
    *,
    occurred_at: datetime,
    amount_cents: int | None = None,
    external_ref: str | None = None,
    description: str = "",
    provider: str | None = None,
) -> Posting | None:
    """A reversing posting for `amount_cents` of `original`'s gross (all that is left by default).

    Fee and shares are reversed by the cumulative method over every reversal of the original, so a
    series of partial refunds ends exactly at the original's parts. None when `external_ref` exists.
    """
    if original.reverses_id is not None or original.gross_cents <= 0:
        raise InvalidInput("Only an original payment can be reversed; post a new transaction instead.")
    if external_ref is not None and await by_ref(session, original.tenant_id, external_ref) is not None:
        return None
    gross_done, fee_done, celebrity_done = await reversed_so_far(session, original)
    left = original.gross_cents - gross_done
    amount = left if amount_cents is None else amount_cents
    if left <= 0:
        raise NothingToReverse()
    if not 0 < amount <= left:
        raise InvalidInput(
            f"A reversal must be between 1 and {left} minor units of this posting.", field="amount_cents"
        )
    gross_after = gross_done + amount
    # Fee and shares reversed so far track the gross reversed so far (largest remainder), so the
    # last reversal lands exactly on the original's parts.
    fee_target = largest_remainder(original.fee_cents, [gross_after, original.gross_cents - gross_after])[0]
    fee = fee_target - fee_done
    net_after = gross_after - fee_target
    weights = [original.celebrity_share_cents, original.platform_share_cents]
    celebrity_target = largest_remainder(net_after, weights)[0] if net_after and sum(weights) > 0 else 0
    celebrity = celebrity_target - celebrity_done
    net = amount - fee
    posting = Posting(
        tenant_id=original.tenant_id,
        celebrity_id=original.celebrity_id,
        type=original.type,
        gross_cents=-amount,
        fee_cents=-fee,
        currency=original.currency,
        occurred_at=occurred_at,
        external_ref=external_ref,
        deployment_id=original.deployment_id,
        brand_campaign_id=original.brand_campaign_id,
        subscription_id=original.subscription_id,
        purchase_id=original.purchase_id,
        reverses_id=original.id,
        fan_key=original.fan_key,
        provider=provider or original.provider,
        description=description or f"Reversal of {original.description or original.type.value}",
        celebrity_share_cents=-celebrity,
        platform_share_cents=-(net - celebrity),
    )
    await post(session, posting)
    return posting


def recognise(
    amounts: Sequence[int], bp: int, *, already_celebrity: int = 0, already_platform: int = 0
) -> list[tuple[int, int]]:
    """(celebrity, platform) per period by the cumulative method, after what earlier periods gave."""
    periods = cumulative_split(
        amounts, parties(bp), already={CELEBRITY: already_celebrity, PLATFORM: already_platform}
    )
    return [(p[CELEBRITY], p[PLATFORM]) for p in periods]
