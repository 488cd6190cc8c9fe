"""Brand campaigns: a brand requests, the talent team approves or rejects; approval opens a
BRAND_CAMPAIGN deployment for the campaign's window. Exclusivity and the contract are checked.

A campaign row belongs to the talent's tenant; the brand's tenant files it (policy `brand_request`),
reads it (`brand_read`) and may only withdraw it (`campaign_withdraw`), never decide it.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.campaigns.models import Brand, BrandCampaign, CampaignStatus
from vibethink.campaigns.schemas import CampaignRequestCreate, Guidelines
from vibethink.core import outbox
from vibethink.core.errors import Conflict, InvalidInput, InvalidTransition, NotFound, PermissionDenied
from vibethink.core.pagination import newest_first
from vibethink.deployments import service as deployments
from vibethink.deployments.models import Deployment, DeploymentType
from vibethink.talent import service as talent_service
from vibethink.talent.models import EntityStatus
from vibethink.tenancy.access import Principal

DEFAULT_PAGE: Final = 50
DISCLOSURE: Final = "Paid partnership with {brand}"
DECIDED: Final = (CampaignStatus.APPROVED, CampaignStatus.ACTIVE)
FIND_CELEBRITY_SQL = text("SELECT tenant_id, celebrity_id, name, status FROM campaign_find_celebrity(:slug)")
WINDOW_TAKEN_SQL = text(
    "SELECT campaign_window_taken(:tenant, :celebrity, :category, :starts, :ends, :exclusive)"
)
WITHDRAW_SQL = text("SELECT campaign_withdraw(:tenant, :id)")


class CampaignConflict(Conflict):
    code = "campaign_conflict"
    default_message = "The campaign overlaps an exclusive campaign in the same category."


class ContractExclusivity(Conflict):
    code = "contract_exclusivity"
    default_message = "The talent's contract does not allow this campaign."


class NotABrand(PermissionDenied):
    code = "not_a_brand"
    default_message = "Only a brand tenant with a brand profile can request campaigns."


def disclosure(brand_name: str) -> str:
    return DISCLOSURE.format(brand=brand_name)


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    return slug or "campaign"


def effective_status(campaign: BrandCampaign, now: datetime | None = None) -> CampaignStatus:
    now = now or datetime.now(UTC)
    if campaign.status is CampaignStatus.APPROVED:
        if campaign.ends_at is not None and campaign.ends_at <= now:
            return CampaignStatus.COMPLETED
        if campaign.starts_at <= now:
            return CampaignStatus.ACTIVE
    return campaign.status


def guidelines_of(campaign: BrandCampaign) -> Guidelines:
    stored = {k: v for k, v in campaign.guidelines.items() if k in Guidelines.model_fields}
    return Guidelines.model_validate(stored)


def twin_guidelines(brand_name: str, guidelines: Guidelines) -> list[str]:
    """The campaign's rules as the twin engine reads them (`config.guidelines`)."""
    lines = list(guidelines.mention_rules)
    if guidelines.competitors:
        lines.append(f"Avoid mentioning competitors ({', '.join(guidelines.competitors)})")
    if guidelines.themes:
        lines.append(f"Focus on {', '.join(guidelines.themes)} themes")
    return lines


def deployment_config(campaign: BrandCampaign) -> dict[str, Any]:
    rules = guidelines_of(campaign)
    return {
        "brandId": str(campaign.brand_id),
        "brandName": campaign.brand_name,
        "campaignId": str(campaign.id),
        "guidelines": twin_guidelines(campaign.brand_name, rules),
        "competitors": list(rules.competitors),
        "themes": list(rules.themes),
        "disclosure": disclosure(campaign.brand_name),
    }


async def _brand(session: AsyncSession, principal: Principal) -> Brand:
    brand = await session.scalar(
        select(Brand).where(Brand.tenant_id == principal.tenant_id).order_by(Brand.created_at).limit(1)
    )
    if brand is None:
        raise NotABrand()
    return brand


async def request(session: AsyncSession, principal: Principal, data: CampaignRequestCreate) -> BrandCampaign:
    """A brand's request to run a campaign with a talent's twin (named by its public slug)."""
    brand = await _brand(session, principal)
    found = (await session.execute(FIND_CELEBRITY_SQL, {"slug": data.celebrity_slug})).first()
    if found is None or EntityStatus(found.status) is not EntityStatus.ACTIVE:
        raise NotFound("No such twin.", field="celebrity_slug")
    taken = await session.scalar(
        WINDOW_TAKEN_SQL,
        {
            "tenant": found.tenant_id,
            "celebrity": found.celebrity_id,
            "category": data.category,
            "starts": data.starts_at,
            "ends": data.ends_at,
            "exclusive": data.is_exclusive,
        },
    )
    if taken:
        # Another brand's campaign is not this brand's business: say what, never whose.
        raise CampaignConflict(
            f"The twin already has an exclusive {data.category} campaign (or yours is exclusive and"
            " overlaps another) in that window; choose other dates or make it non-exclusive."
        )
    campaign = BrandCampaign(
        tenant_id=found.tenant_id,
        id=uuid.uuid4(),
        celebrity_id=found.celebrity_id,
        brand_tenant_id=principal.tenant_id,
        brand_id=brand.id,
        brand_name=brand.name,
        campaign_name=data.campaign_name,
        slug=slugify(data.campaign_name),
        category=data.category,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        is_exclusive=data.is_exclusive,
        fee_cents=data.fee_cents,
        cpm_cents=data.cpm_cents,
        cpc_cents=data.cpc_cents,
        currency=data.currency,
        guidelines=data.guidelines.model_dump(),
        status=CampaignStatus.REQUESTED,
        requested_by=principal.user_id,
    )
    session.add(campaign)
    await session.flush()
    await session.refresh(campaign, ["created_at", "updated_at"])
    await outbox.emit(
        session,
        "CAMPAIGN_REQUESTED",
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="brand_campaign",
        subject_id=campaign.id,
        payload={
            "talent_tenant_id": str(found.tenant_id),
            "celebrity_id": str(found.celebrity_id),
            "fee_cents": campaign.fee_cents,
            "currency": campaign.currency,
            "is_exclusive": campaign.is_exclusive,
        },
    )
    return campaign


@dataclass(frozen=True, slots=True)
class CampaignPage:
    items: list[BrandCampaign]
    next_cursor: str | None


async def brand_page(
    session: AsyncSession, principal: Principal, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
) -> CampaignPage:
    """The brand's own requests, and nothing of any other brand."""
    query = select(BrandCampaign).where(BrandCampaign.brand_tenant_id == principal.tenant_id)
    items, next_cursor = await newest_first(
        session,
        query,
        created_at=BrandCampaign.created_at,
        row_id=BrandCampaign.id,
        cursor=cursor,
        limit=limit,
    )
    return CampaignPage(items, next_cursor)


async def talent_page(
    session: AsyncSession,
    principal: Principal,
    *,
    celebrity_id: uuid.UUID | None = None,
    status: CampaignStatus | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> CampaignPage:
    query = select(BrandCampaign).where(BrandCampaign.tenant_id == principal.tenant_id)
    if celebrity_id is not None:
        query = query.where(BrandCampaign.celebrity_id == celebrity_id)
    if status is not None:
        query = query.where(BrandCampaign.status == status)
    items, next_cursor = await newest_first(
        session,
        query,
        created_at=BrandCampaign.created_at,
        row_id=BrandCampaign.id,
        cursor=cursor,
        limit=limit,
    )
    return CampaignPage(items, next_cursor)


async def for_brand(session: AsyncSession, principal: Principal, campaign_id: uuid.UUID) -> BrandCampaign:
    found = await session.scalar(
        select(BrandCampaign).where(
            BrandCampaign.brand_tenant_id == principal.tenant_id, BrandCampaign.id == campaign_id
        )
    )
    if found is None:
        raise NotFound("No such campaign.")
    return found


async def for_talent(
    session: AsyncSession, principal: Principal, campaign_id: uuid.UUID, *, lock: bool = False
) -> BrandCampaign:
    query = select(BrandCampaign).where(
        BrandCampaign.tenant_id == principal.tenant_id, BrandCampaign.id == campaign_id
    )
    found = await session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound("No such campaign.")
    return found


def _overlaps(a: BrandCampaign, b: BrandCampaign) -> bool:
    far = datetime.max.replace(tzinfo=UTC)
    return a.starts_at < (b.ends_at or far) and b.starts_at < (a.ends_at or far)


async def check_conflicts(session: AsyncSession, principal: Principal, campaign: BrandCampaign) -> None:
    """409 naming the campaign it would collide with, or the contract rule it would break."""
    celebrity = await talent_service.get(session, principal, campaign.celebrity_id)
    contract = await talent_service.current_contract(session, principal, celebrity)
    rules = contract.exclusivity_rules if contract is not None else {}
    blocked = {str(b).casefold() for b in rules.get("blockedBrands") or []}
    if campaign.brand_name.casefold() in blocked:
        raise ContractExclusivity(f"The contract does not allow campaigns with {campaign.brand_name}.")
    exclusive_categories = {str(c).casefold() for c in rules.get("exclusiveCategories") or []}
    category = (campaign.category or "").casefold()
    # A category the contract makes exclusive admits one campaign at a time, whatever the request says.
    exclusive = campaign.is_exclusive or category in exclusive_categories
    others = (
        await session.scalars(
            select(BrandCampaign)
            .where(
                BrandCampaign.tenant_id == campaign.tenant_id,
                BrandCampaign.celebrity_id == campaign.celebrity_id,
                BrandCampaign.status.in_(DECIDED),
                BrandCampaign.id != campaign.id,
            )
            .order_by(BrandCampaign.starts_at)
        )
    ).all()
    for other in others:
        if (other.category or "").casefold() != category or not _overlaps(campaign, other):
            continue
        if exclusive or other.is_exclusive:
            window = (
                f"{other.starts_at:%Y-%m-%d} to {other.ends_at:%Y-%m-%d}" if other.ends_at else "open-ended"
            )
            raise CampaignConflict(
                f"It overlaps the exclusive {other.category} campaign '{other.campaign_name}' by"
                f" {other.brand_name} ({window}).",
                details={"conflicting_campaign_id": str(other.id), "campaign_name": other.campaign_name},
            )


async def _portal_look(session: AsyncSession, campaign: BrandCampaign) -> dict[str, Any]:
    """The talent's portal theme and branding, so the campaign page looks like the talent's own."""
    config = await session.scalar(
        select(Deployment.config)
        .where(
            Deployment.tenant_id == campaign.tenant_id,
            Deployment.celebrity_id == campaign.celebrity_id,
            Deployment.type == DeploymentType.VIBETHINK_PORTAL,
        )
        .order_by(Deployment.created_at)
        .limit(1)
    )
    found = config or {}
    return {key: found[key] for key in ("theme", "branding") if isinstance(found.get(key), dict)}


async def _free_slug(session: AsyncSession, campaign: BrandCampaign) -> str:
    base = campaign.slug or slugify(campaign.campaign_name)
    taken = set(
        (
            await session.scalars(
                select(Deployment.slug).where(
                    Deployment.tenant_id == campaign.tenant_id,
                    Deployment.celebrity_id == campaign.celebrity_id,
                    Deployment.slug.like(f"{base}%"),
                )
            )
        ).all()
    )
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, 10_000) if f"{base}-{n}" not in taken)


async def approve(
    session: AsyncSession, principal: Principal, campaign_id: uuid.UUID, *, note: str = ""
) -> BrandCampaign:
    """Approves a request: checks exclusivity and the contract, then opens the campaign's deployment."""
    campaign = await for_talent(session, principal, campaign_id, lock=True)
    if campaign.status is not CampaignStatus.REQUESTED:
        raise InvalidTransition(f"A {campaign.status.value} campaign cannot be approved.")
    # One decision at a time per twin, so two overlapping exclusive approvals cannot both pass.
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtext(f"campaigns:{campaign.celebrity_id}")))
    )
    await check_conflicts(session, principal, campaign)
    if campaign.ends_at is not None and campaign.ends_at <= datetime.now(UTC):
        raise InvalidInput("The campaign's window has already ended.", field="ends_at")
    deployment = await deployments.create(
        session,
        principal,
        campaign.celebrity_id,
        type=DeploymentType.BRAND_CAMPAIGN,
        name=f"{campaign.brand_name} · {campaign.campaign_name}",
        config={**await _portal_look(session, campaign), **deployment_config(campaign)},
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        slug=await _free_slug(session, campaign),
    )
    campaign.deployment_id = deployment.id
    campaign.slug = deployment.slug or campaign.slug
    return await _decide(session, principal, campaign, CampaignStatus.APPROVED, note)


async def reject(
    session: AsyncSession, principal: Principal, campaign_id: uuid.UUID, *, note: str = ""
) -> BrandCampaign:
    campaign = await for_talent(session, principal, campaign_id, lock=True)
    if campaign.status is not CampaignStatus.REQUESTED:
        raise InvalidTransition(f"A {campaign.status.value} campaign cannot be rejected.")
    return await _decide(session, principal, campaign, CampaignStatus.REJECTED, note)


async def _decide(
    session: AsyncSession, principal: Principal, campaign: BrandCampaign, status: CampaignStatus, note: str
) -> BrandCampaign:
    campaign.status = status
    campaign.decision_note = note or None
    campaign.decided_at = datetime.now(UTC)
    campaign.decided_by = principal.user_id
    await session.flush()
    await session.refresh(campaign, ["updated_at"])
    await outbox.emit(
        session,
        f"CAMPAIGN_{status.value}",
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="brand_campaign",
        subject_id=campaign.id,
        payload={
            "brand_tenant_id": str(campaign.brand_tenant_id),
            "celebrity_id": str(campaign.celebrity_id),
            "deployment_id": str(campaign.deployment_id) if campaign.deployment_id else None,
            "note": note,
        },
    )
    return campaign


async def withdraw(session: AsyncSession, principal: Principal, campaign_id: uuid.UUID) -> BrandCampaign:
    """The brand takes back a request the talent has not decided yet."""
    campaign = await for_brand(session, principal, campaign_id)
    done = await session.scalar(WITHDRAW_SQL, {"tenant": campaign.tenant_id, "id": campaign.id})
    if not done:
        raise InvalidTransition(f"A {campaign.status.value} campaign can no longer be withdrawn.")
    await session.refresh(campaign)
    return campaign
