"""Routes: Scorecards and assessments 信用等级评估."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.errors import NotFound
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.rating import campaigns, ratings, scoring
from services.rating.schemas_ratings import (
    AssessmentIn,
    AssessmentOut,
    RatingDecisionIn,
    ScorecardOut,
)

router = APIRouter(prefix="/api/v1", tags=["ratings"])

RATINGS_PATH = "/api/v1/ratings"


def _card_out(card: scoring.Scorecard) -> ScorecardOut:
    return ScorecardOut.model_validate(card.policy.model_dump())


@router.get("/scorecards", response_model=list[ScorecardOut])
def list_scorecards(caller: CurrentCaller) -> list[ScorecardOut]:
    """Every scorecard version, with its factors, bins or choices and its grade scale."""
    return [_card_out(card) for card in scoring.scorecards()]


@router.get("/scorecards/{scorecard_id}", response_model=ScorecardOut)
def get_scorecard(
    scorecard_id: str, caller: CurrentCaller, version: str | None = None
) -> ScorecardOut:
    """A scorecard: its latest version, or the ``version`` asked for."""
    card = scoring.scorecard(scorecard_id, version)
    if card is None:
        raise NotFound(f"no scorecard {scorecard_id}" + (f" version {version}" if version else ""))
    return _card_out(card)


@router.post("/ratings", status_code=status.HTTP_201_CREATED, response_model=AssessmentOut)
def post_rating(
    body: AssessmentIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    response: Response,
) -> AssessmentOut:
    """Assess a customer (its owner or serving manager): the score, the computed grade and
    each factor's points; ``incomplete`` with the missing inputs listed and no grade while any
    is missing. A proposed grade needs its reason. With ``imported_grade`` and ``source`` the
    grade of the bank's credit system is recorded instead. Either waits for an approver."""
    recorder = get_runtime(request).recorder
    ratings.require_proposer(session, caller, body.customer_id)
    if body.campaign_id is not None:
        campaigns.require_running(session, body.campaign_id)
    if body.imported_grade is not None and body.source is not None:
        assessment = ratings.record_imported(
            session,
            recorder,
            customer_id=body.customer_id,
            grade=body.imported_grade.value,
            source=body.source,
            actor=caller.subject,
        )
    else:
        assessment = ratings.assess(
            session,
            recorder,
            customer_id=body.customer_id,
            inputs=body.inputs,
            actor=caller.subject,
            trigger="manual",
            campaign_id=body.campaign_id,
            proposed_grade=body.proposed_grade.value if body.proposed_grade else None,
            reason=body.adjustment_reason,
        )
    session.commit()
    response.headers["Location"] = f"{RATINGS_PATH}/{assessment.id}"
    return AssessmentOut.model_validate(assessment)


@router.get("/customers/{customer_id}/ratings", response_model=Page[AssessmentOut])
def list_ratings(
    customer_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AssessmentOut]:
    """A customer's assessments, newest first."""
    rows, total = ratings.list_assessments(session, caller, customer_id, limit, offset)
    return Page(
        items=[AssessmentOut.model_validate(a) for a in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/ratings/{assessment_id}", response_model=AssessmentOut)
def get_rating(assessment_id: str, caller: CurrentCaller, session: SessionDep) -> AssessmentOut:
    return AssessmentOut.model_validate(ratings.load_assessment(session, assessment_id, caller))


@router.post("/ratings/{assessment_id}/confirm", response_model=AssessmentOut)
def decide_rating(
    assessment_id: str,
    body: RatingDecisionIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> AssessmentOut:
    """Confirm (the proposed or computed grade, or another with a note) or reject (with a
    note) an assessment, as an approver of the customer's subtree who did not assess it."""
    recorder = get_runtime(request).recorder
    if body.decision.value == "confirm":
        assessment = ratings.confirm(
            session,
            recorder,
            assessment_id,
            caller=caller,
            grade=body.grade.value if body.grade else None,
            note=body.note,
        )
    else:
        assessment = ratings.reject(session, recorder, assessment_id, caller=caller, note=body.note)
    session.commit()
    return AssessmentOut.model_validate(assessment)
