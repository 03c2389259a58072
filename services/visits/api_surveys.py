"""Routes: Satisfaction surveys 满意度调查: start (the sample is drawn), read with the sample,
responses, results by branch and manager."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.db import utcnow
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.visits import surveys
from services.visits.schemas_surveys import (
    ResponseIn,
    ResponseOut,
    SurveyDetail,
    SurveyIn,
    SurveyOut,
    SurveyResults,
)

router = APIRouter(prefix="/api/v1", tags=["surveys"])

SURVEYS_PATH = "/api/v1/surveys"
REFUSED = {"description": "Not a head, line department, auditor or administrator of the unit"}


@router.post(
    "/surveys",
    status_code=status.HTTP_201_CREATED,
    response_model=SurveyDetail,
    responses={403: REFUSED},
)
def post_survey(
    body: SurveyIn, caller: CurrentCaller, session: SessionDep, request: Request, response: Response
) -> SurveyDetail:
    """Start a satisfaction survey of an org subtree (its heads or line department): a simple
    random sample of its active customers is drawn at once from `seed` (generated and returned
    when absent; the same seed over the same customers draws the same sample), stratified by
    value tier with `stratify_by_tier` (proportional, largest remainders). Each sampled customer
    is to be surveyed by phone when high-tier, else face to face."""
    survey = surveys.start_survey(session, get_runtime(request).recorder, body, caller, utcnow())
    response.headers["Location"] = f"{SURVEYS_PATH}/{survey.id}"
    return surveys.survey_detail(session, survey)


@router.get("/surveys", response_model=Page[SurveyOut], responses={403: REFUSED})
def list_surveys(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: Annotated[str | None, Query(pattern=r"^/[A-Za-z0-9_./-]*$", max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[SurveyOut]:
    """Surveys of the caller's subtree (all for auditors and administrators), newest first."""
    rows, total = surveys.list_surveys(session, caller, org_unit, limit, offset)
    return Page(items=surveys.surveys_out(session, rows), total=total, limit=limit, offset=offset)


@router.get("/surveys/{survey_id}", response_model=SurveyDetail, responses={403: REFUSED})
def get_survey(survey_id: str, caller: CurrentCaller, session: SessionDep) -> SurveyDetail:
    """A survey with its sample in draw order: each customer's tier, mode and owner at the draw
    and whether it has responded."""
    return surveys.survey_detail(session, surveys.load(session, survey_id, caller))


@router.post(
    "/surveys/{survey_id}/responses",
    status_code=status.HTTP_201_CREATED,
    response_model=ResponseOut,
    responses={
        403: REFUSED,
        409: {"description": "The customer has responded already"},
        422: {"description": "Not in the sample, or answers that do not fit the questions"},
    },
)
def post_response(
    survey_id: str,
    body: ResponseIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> ResponseOut:
    """Record a sampled customer's answers, one per question on its scale (heads or line
    department of the survey's unit). The score is the mean of the answers on 0-100, two
    places; it counts for the customer's owner now."""
    answer = surveys.record_response(
        session, get_runtime(request).recorder, survey_id, body, caller, utcnow()
    )
    return surveys.response_out(answer)


@router.get("/surveys/{survey_id}/results", response_model=SurveyResults, responses={403: REFUSED})
def get_results(survey_id: str, caller: CurrentCaller, session: SessionDep) -> SurveyResults:
    """Sampled, responded, response rate and mean score: overall, by branch (the sampled
    customer's org unit), by manager (the owner when the response came) and by mode."""
    return surveys.results(session, surveys.load(session, survey_id, caller))
