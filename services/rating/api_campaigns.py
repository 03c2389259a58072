"""Routes: Rating campaigns 集中评级授信 and their progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.clock import business_today
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.rating import campaigns
from services.rating.models_campaigns import RatingCampaign
from services.rating.schemas_campaigns import (
    CampaignIn,
    CampaignOut,
    CampaignStatus,
    CampaignSummary,
    TargetOut,
    TargetsIn,
)

router = APIRouter(prefix="/api/v1", tags=["rating campaigns"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


def _summary(campaign: RatingCampaign) -> CampaignSummary:
    day = business_today()
    out = CampaignSummary.model_validate(campaign)
    out.phases = campaigns.phases_of(campaign, day)
    out.current_phase = campaigns.current_phase(campaign, day)
    return out


def _out(campaign: RatingCampaign) -> CampaignOut:
    return CampaignOut(
        **_summary(campaign).model_dump(),
        business_date=business_today(),
        last_error=campaign.last_error,
    )


@router.post("/rating-campaigns", status_code=status.HTTP_201_CREATED, response_model=CampaignOut)
def create_campaign(
    body: CampaignIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> CampaignOut:
    """Create a campaign (``draft``) for the caller's subtree or a unit in it (branch presidents,
    head-office leaders, administrators); one campaign a year covers a customer."""
    campaign = campaigns.create(session, body, caller)
    response.headers["Location"] = f"{campaigns.CAMPAIGNS_PATH}/{campaign.id}"
    return _out(campaign)


@router.get("/rating-campaigns", response_model=Page[CampaignSummary])
def list_campaigns(
    caller: CurrentCaller,
    session: SessionDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    status_: Annotated[CampaignStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[CampaignSummary]:
    """Campaigns of the caller's subtree and those the caller works in, newest year first."""
    rows, total = campaigns.list_campaigns(
        session, caller, year, status_.value if status_ else None, limit, offset
    )
    return Page(items=[_summary(c) for c in rows], total=total, limit=limit, offset=offset)


@router.get("/rating-campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: str, caller: CurrentCaller, session: SessionDep) -> CampaignOut:
    """A campaign, its phases (and the current one by the business date), the batch's progress
    and the coverage per org unit and business line against the 100% goal (of the caller's
    part of the campaign)."""
    campaign = campaigns.load(session, campaign_id, caller)
    out = _out(campaign)
    out.coverage = campaigns.coverage(session, campaign, campaigns.coverage_scope(caller, campaign))
    return out


@router.post("/rating-campaigns/{campaign_id}/start", response_model=CampaignOut)
def start_campaign(campaign_id: str, caller: CurrentCaller, session: SessionDep) -> CampaignOut:
    """Start a draft campaign: the service's workers run its batch from now on (and resume it
    after a restart). Starting it again changes nothing."""
    return _out(campaigns.start(session, campaign_id, caller))


@router.post("/rating-campaigns/{campaign_id}/targets", response_model=list[TargetOut])
def add_targets(
    campaign_id: str,
    body: TargetsIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> list[TargetOut]:
    """List target customers 目标客户 willing to borrow: each is assessed in the campaign at
    once (by the caller) and counts in its scope from then on."""
    recorder = get_runtime(request).recorder
    return campaigns.add_targets(session, recorder, campaign_id, body, caller)
