"""Brand campaign API: brands request and follow their campaigns; talent teams decide and preview."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from vibethink.campaigns import preview, service
from vibethink.campaigns.models import BrandCampaign, CampaignStatus
from vibethink.campaigns.schemas import (
    CampaignDecision,
    CampaignRead,
    CampaignRequestCreate,
    PreviewItem,
    PreviewRead,
    PreviewRequest,
)
from vibethink.core.pagination import MAX_PAGE, Page
from vibethink.tenancy.access import DbSession, Principal, require, settings_of
from vibethink.tenancy.permissions import Permission

router = APIRouter(tags=["campaigns"])

CampaignReader = Annotated[Principal, Depends(require(Permission.CAMPAIGNS_READ))]
CampaignWriter = Annotated[Principal, Depends(require(Permission.CAMPAIGNS_WRITE))]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Cursor = Annotated[str | None, Query(max_length=512)]


def campaign_read(campaign: BrandCampaign) -> CampaignRead:
    return CampaignRead(
        id=campaign.id,
        celebrity_id=campaign.celebrity_id,
        brand_id=campaign.brand_id,
        brand_name=campaign.brand_name,
        campaign_name=campaign.campaign_name,
        slug=campaign.slug,
        category=campaign.category,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        is_exclusive=campaign.is_exclusive,
        fee_cents=campaign.fee_cents,
        cpm_cents=campaign.cpm_cents,
        cpc_cents=campaign.cpc_cents,
        currency=campaign.currency,
        guidelines=service.guidelines_of(campaign),
        status=campaign.status,
        effective_status=service.effective_status(campaign),
        decision_note=campaign.decision_note,
        decided_at=campaign.decided_at,
        deployment_id=campaign.deployment_id,
        disclosure=service.disclosure(campaign.brand_name),
        created_at=campaign.created_at,
    )


@router.post("/brand/campaigns", status_code=201)
async def request_campaign(
    body: CampaignRequestCreate, principal: CampaignWriter, session: DbSession
) -> CampaignRead:
    """A brand asks a talent (by the twin's public slug) for a campaign; the talent team decides."""
    return campaign_read(await service.request(session, principal, body))


@router.get("/brand/campaigns")
async def list_brand_campaigns(
    principal: CampaignReader, session: DbSession, limit: Limit = service.DEFAULT_PAGE, cursor: Cursor = None
) -> Page[CampaignRead]:
    found = await service.brand_page(session, principal, limit=limit, cursor=cursor)
    return Page[CampaignRead](items=[campaign_read(c) for c in found.items], next_cursor=found.next_cursor)


@router.get("/brand/campaigns/{campaign_id}")
async def get_brand_campaign(
    campaign_id: uuid.UUID, principal: CampaignReader, session: DbSession
) -> CampaignRead:
    return campaign_read(await service.for_brand(session, principal, campaign_id))


@router.post("/brand/campaigns/{campaign_id}/withdraw")
async def withdraw_campaign(
    campaign_id: uuid.UUID, principal: CampaignWriter, session: DbSession
) -> CampaignRead:
    return campaign_read(await service.withdraw(session, principal, campaign_id))


@router.get("/campaigns")
async def list_campaigns(
    principal: CampaignReader,
    session: DbSession,
    celebrity_id: uuid.UUID | None = None,
    status: CampaignStatus | None = None,
    limit: Limit = service.DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[CampaignRead]:
    """The talent's campaign requests and campaigns, newest first."""
    found = await service.talent_page(
        session, principal, celebrity_id=celebrity_id, status=status, limit=limit, cursor=cursor
    )
    return Page[CampaignRead](items=[campaign_read(c) for c in found.items], next_cursor=found.next_cursor)


@router.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: uuid.UUID, principal: CampaignReader, session: DbSession) -> CampaignRead:
    return campaign_read(await service.for_talent(session, principal, campaign_id))


@router.post("/campaigns/{campaign_id}/approve")
async def approve_campaign(
    campaign_id: uuid.UUID,
    principal: CampaignWriter,
    session: DbSession,
    body: CampaignDecision | None = None,
) -> CampaignRead:
    """Approves the request (409 naming a conflicting exclusive campaign or contract rule) and opens
    its BRAND_CAMPAIGN deployment, live only inside the campaign's window."""
    campaign = await service.approve(session, principal, campaign_id, note=body.note if body else "")
    return campaign_read(campaign)


@router.post("/campaigns/{campaign_id}/reject")
async def reject_campaign(
    campaign_id: uuid.UUID,
    principal: CampaignWriter,
    session: DbSession,
    body: CampaignDecision | None = None,
) -> CampaignRead:
    return campaign_read(
        await service.reject(session, principal, campaign_id, note=body.note if body else "")
    )


@router.post("/campaigns/{campaign_id}/preview")
async def preview_campaign(
    campaign_id: uuid.UUID,
    principal: CampaignReader,
    session: DbSession,
    request: Request,
    body: PreviewRequest | None = None,
) -> PreviewRead:
    """The twin's replies to probing prompts under the campaign's guidelines, with any breaches."""
    campaign, probes = await preview.run(
        session, settings_of(request), principal, campaign_id, prompts=body.prompts if body else None
    )
    items = [
        PreviewItem(
            prompt=p.prompt, reply=p.reply, guardrails=p.decisions, breaches=p.breaches, leaked=p.leaked
        )
        for p in probes
    ]
    return PreviewRead(
        campaign_id=campaign.id,
        disclosure=service.disclosure(campaign.brand_name),
        items=items,
        breaches=sum(len(i.breaches) for i in items),
        leaked=sum(len(i.leaked) for i in items),
    )
