"""Satisfaction surveys 满意度追踪调查 (seed 002 l.35): a simple random sample 简单抽样 of the
customer files, reproducible from a seed and optionally stratified by tier; phone for high-tier
customers, face to face for the others; responses scored; results by branch and manager.

The draw: the active customers of the survey's org subtree, sorted by id, then
``random.Random(seed).sample`` — the same seed over the same customers draws the same sample.
Stratified, the strata (value tiers in the policy's order) are allocated in proportion to their
sizes by the largest-remainder rule and drawn in that order from one generator seeded once.

A score is the mean of the answers, each put on 0-100 as (value - min) / (max - min) * 100 of
its question's scale, rounded half up to two places; a group's mean score is the mean of its
responses' scores, rounded the same way. Strata, modes and who is high-tier are policy data
(``policy/surveys/<effective date>.json``).
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.clock import BUSINESS_TZ
from crmkit.db import count_rows, in_subtree
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from crmkit.policy import load_policy_file
from crmkit.replicas import owner_of
from services.visits import access, events
from services.visits.complaints import HighTier
from services.visits.models import CustomerCare, customer_refs, owner_refs
from services.visits.models_surveys import Survey, SurveyResponse, SurveySample
from services.visits.schemas_surveys import (
    AnswerIn,
    GroupResult,
    Mode,
    QuestionOut,
    ResponseIn,
    ResponseOut,
    SampledOut,
    StratumOut,
    SurveyDetail,
    SurveyIn,
    SurveyOut,
    SurveyResults,
)

POLICY_DIR = Path(__file__).with_name("policy") / "surveys"
ACTIVE = "active"
UNRATED = "unrated"
ALL = "all"
CENT = Decimal("0.01")
RATE = Decimal("0.0001")


class SurveyPolicyError(ValueError):
    """A survey policy file that cannot be used."""


class SurveyPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: str = Field(min_length=1, max_length=20)
    effective_from: date
    description: str
    strata: list[str] = Field(min_length=1)
    high_tier: HighTier
    high_tier_mode: Mode
    other_mode: Mode

    def stratum(self, value_tier: str | None) -> str:
        """The stratum of a customer: its value tier when listed, else ``unrated``."""
        return value_tier if value_tier in self.strata else UNRATED


@cache
def policies(directory: Path = POLICY_DIR) -> tuple[SurveyPolicy, ...]:
    """Every version of the survey policy, oldest first."""
    found = [
        load_policy_file(path, SurveyPolicy, "survey policy", SurveyPolicyError)
        for path in sorted(directory.glob("*.json"))
    ]
    if not found:
        raise SurveyPolicyError(f"no survey policy in {directory}")
    return tuple(sorted(found, key=lambda p: p.effective_from))


def policy_on(day: date) -> SurveyPolicy:
    """The policy in force on ``day`` (the latest effective on or before it)."""
    in_force = [p for p in policies() if p.effective_from <= day]
    if not in_force:
        raise SurveyPolicyError(f"no survey policy in force on {day}")
    return in_force[-1]


# -- the draw -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """An active customer of the subtree as the draw sees it."""

    customer_id: str
    org_unit: str
    tier: str
    high_tier: bool
    owner_id: str | None


def candidates(session: Session, org_unit: str, policy: SurveyPolicy) -> list[Candidate]:
    """The active customers of the subtree with their stratum, tier and owner, sorted by id
    (in Python: the database's collation does not decide the order)."""
    care = CustomerCare.__table__
    owner = owner_refs.alias("owner")
    rows = session.execute(
        select(
            customer_refs.c.customer_id,
            customer_refs.c.org_unit,
            care.c.value_tier,
            care.c.vip_level,
            care.c.wealth_layer,
            owner.c.staff_id,
        )
        .select_from(
            customer_refs.outerjoin(
                care, care.c.customer_id == customer_refs.c.customer_id
            ).outerjoin(
                owner,
                and_(
                    owner.c.customer_id == customer_refs.c.customer_id,
                    owner.c.role == "owner",
                ),
            )
        )
        .where(in_subtree(customer_refs.c.org_unit, org_unit), customer_refs.c.status == ACTIVE)
    ).all()
    found = [
        Candidate(
            customer_id=row.customer_id,
            org_unit=row.org_unit,
            tier=policy.stratum(row.value_tier),
            high_tier=policy.high_tier.matches(row.value_tier, row.vip_level, row.wealth_layer),
            owner_id=row.staff_id,
        )
        for row in rows
    ]
    return sorted(found, key=lambda c: c.customer_id)


def allocate(sizes: dict[str, int], sample_size: int) -> dict[str, int]:
    """Proportional allocation by the largest-remainder rule: each stratum gets the whole part of
    ``sample_size * size / population``; the units left go one each to the strata with the
    largest remainders, the one listed first on a tie. Never more than a stratum holds."""
    population = sum(sizes.values())
    if population == 0:
        return dict.fromkeys(sizes, 0)
    wanted = min(sample_size, population)
    shares = {tier: divmod(wanted * size, population) for tier, size in sizes.items()}
    allocated = {tier: whole for tier, (whole, _) in shares.items()}
    left = wanted - sum(allocated.values())
    order = list(sizes)
    by_remainder = sorted(order, key=lambda tier: (-shares[tier][1], order.index(tier)))
    for tier in by_remainder[:left]:
        allocated[tier] += 1
    return allocated


def draw(
    pool: Sequence[Candidate], sample_size: int, seed: int, strata: Sequence[str] | None
) -> tuple[list[Candidate], list[StratumOut]]:
    """Draw the sample from ``pool`` (sorted by id): simple random sampling with
    ``random.Random(seed)``, or, with ``strata``, in each stratum in that order from the same
    generator after proportional allocation. The whole pool when it is smaller than asked."""
    rng = random.Random(seed)
    if strata is None:
        chosen = rng.sample(list(pool), min(sample_size, len(pool)))
        return chosen, [StratumOut(tier=ALL, candidates=len(pool), drawn=len(chosen))]
    groups: dict[str, list[Candidate]] = {tier: [] for tier in strata}
    for candidate in pool:
        groups[candidate.tier].append(candidate)
    allocation = allocate({tier: len(members) for tier, members in groups.items()}, sample_size)
    chosen = []
    for tier in strata:
        chosen.extend(rng.sample(groups[tier], allocation[tier]))
    out = [
        StratumOut(tier=tier, candidates=len(groups[tier]), drawn=allocation[tier])
        for tier in strata
    ]
    return chosen, out


def mode_for(policy: SurveyPolicy, candidate: Candidate) -> Mode:
    """Phone for a high-tier customer, face to face for the others (by the policy)."""
    return policy.high_tier_mode if candidate.high_tier else policy.other_mode


# -- starting a survey --------------------------------------------------------------------------
def start_survey(
    session: Session, recorder: EventRecorder, body: SurveyIn, caller: Caller, now: datetime
) -> Survey:
    """Start a survey of ``body.org_unit`` (its heads or line department, administrators): draw
    its sample from the seed (generated when none is given) and record ``survey.started``."""
    if not access.may_manage(caller, body.org_unit):
        raise Forbidden(
            "surveys are started by the heads and line departments of the subtree and by "
            f"administrators; {body.org_unit} is outside yours"
        )
    policy = policy_on(now.astimezone(BUSINESS_TZ).date())
    seed = body.seed if body.seed is not None else secrets.randbits(32)
    pool = candidates(session, body.org_unit, policy)
    strata = [*policy.strata, UNRATED] if UNRATED not in policy.strata else policy.strata
    chosen, allocation = draw(
        pool, body.sample_size, seed, strata if body.stratify_by_tier else None
    )
    survey = Survey(
        id=str(uuid.uuid4()),
        name=body.name,
        org_unit=body.org_unit,
        seed=seed,
        stratify_by_tier=body.stratify_by_tier,
        sample_size=body.sample_size,
        population=len(pool),
        questions=[
            {"number": n, "text": q.text, "scale": q.scale.model_dump()}
            for n, q in enumerate(body.questions, start=1)
        ],
        strata=[s.model_dump() for s in allocation],
        policy_version=policy.version,
        started_by=caller.subject,
        started_at=now,
    )
    session.add(survey)
    session.flush()
    session.add_all(
        SurveySample(
            survey_id=survey.id,
            customer_id=c.customer_id,
            position=n,
            org_unit=c.org_unit,
            tier=c.tier,
            high_tier=c.high_tier,
            mode=mode_for(policy, c).value,
            owner_id=c.owner_id,
        )
        for n, c in enumerate(chosen, start=1)
    )
    modes = [mode_for(policy, c) for c in chosen]
    recorder.record(
        session,
        events.SURVEY_STARTED,
        {
            "survey_id": survey.id,
            "name": survey.name,
            "org_unit": survey.org_unit,
            "seed": seed,
            "stratify_by_tier": survey.stratify_by_tier,
            "sample_size": survey.sample_size,
            "population": survey.population,
            "drawn": len(chosen),
            "by_mode": {mode.value: modes.count(mode) for mode in Mode},
            "questions": len(survey.questions),
            "policy_version": policy.version,
            "started_by": caller.subject,
            "started_at": now.isoformat(),
        },
        key=survey.id,
        actor=caller.subject,
    )
    session.commit()
    return survey


# -- reading ------------------------------------------------------------------------------------
def _check_reader(caller: Caller) -> None:
    if not caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR, *access.HEADS):
        raise Forbidden(
            "surveys are read by heads, line departments, auditors and administrators: their "
            "scores feed the managers' assessment"
        )


def load(session: Session, survey_id: str, caller: Caller) -> Survey:
    """A survey the caller may read: of a subtree they head, or any for auditors and
    administrators."""
    _check_reader(caller)
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise NotFound(f"no survey {survey_id}")
    if not access.may_read_unit(caller, survey.org_unit):
        raise Forbidden(f"survey {survey_id} is of {survey.org_unit}, outside your subtree")
    return survey


def list_surveys(
    session: Session, caller: Caller, org_unit: str | None, limit: int, offset: int
) -> tuple[list[Survey], int]:
    """The surveys of the caller's subtree (all for auditors and administrators), newest first."""
    _check_reader(caller)
    query = select(Survey)
    if not caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR):
        query = query.where(in_subtree(Survey.org_unit, caller.org_unit))
    if org_unit:
        query = query.where(in_subtree(Survey.org_unit, org_unit))
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(Survey.started_at.desc(), Survey.id).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


def _responded(session: Session, survey_ids: Iterable[str]) -> dict[str, int]:
    ids = list(survey_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(SurveyResponse.survey_id, func.count())
        .where(SurveyResponse.survey_id.in_(ids))
        .group_by(SurveyResponse.survey_id)
    ).all()
    return {survey_id: int(count) for survey_id, count in rows}


def survey_out(survey: Survey, responded: int) -> SurveyOut:
    return SurveyOut(
        id=survey.id,
        name=survey.name,
        org_unit=survey.org_unit,
        seed=survey.seed,
        stratify_by_tier=survey.stratify_by_tier,
        sample_size=survey.sample_size,
        population=survey.population,
        drawn=sum(int(s["drawn"]) for s in survey.strata),
        questions=[QuestionOut.model_validate(q) for q in survey.questions],
        strata=[StratumOut.model_validate(s) for s in survey.strata],
        policy_version=survey.policy_version,
        started_by=survey.started_by,
        started_at=survey.started_at,
        responded=responded,
    )


def surveys_out(session: Session, surveys: Sequence[Survey]) -> list[SurveyOut]:
    counts = _responded(session, (s.id for s in surveys))
    return [survey_out(s, counts.get(s.id, 0)) for s in surveys]


def survey_detail(session: Session, survey: Survey) -> SurveyDetail:
    """A survey with its sample in draw order, each with its mode and whether it responded."""
    sample = session.scalars(
        select(SurveySample)
        .where(SurveySample.survey_id == survey.id)
        .order_by(SurveySample.position)
    ).all()
    responded = set(
        session.scalars(
            select(SurveyResponse.customer_id).where(SurveyResponse.survey_id == survey.id)
        )
    )
    return SurveyDetail(
        **survey_out(survey, len(responded)).model_dump(),
        sample=[
            SampledOut(
                customer_id=s.customer_id,
                position=s.position,
                org_unit=s.org_unit,
                tier=s.tier,
                high_tier=s.high_tier,
                mode=Mode(s.mode),
                owner_id=s.owner_id,
                responded=s.customer_id in responded,
            )
            for s in sample
        ],
    )


# -- responses ----------------------------------------------------------------------------------
def score(questions: Sequence[dict[str, Any]], answers: Sequence[AnswerIn]) -> Decimal:
    """The mean of the answers on 0-100, two places (half up): one answer for every question,
    each a whole number on its question's scale (422 naming every fault)."""
    scales = {int(q["number"]): q["scale"] for q in questions}
    errors: list[dict[str, Any]] = []
    points: list[Decimal] = []
    seen: set[int] = set()
    for i, answer in enumerate(answers):
        scale = scales.get(answer.question)
        if scale is None:
            errors.append({"field": f"answers.{i}.question", "reason": "no such question"})
        elif answer.question in seen:
            errors.append({"field": f"answers.{i}.question", "reason": "answered twice"})
        elif not scale["min"] <= answer.value <= scale["max"]:
            reason = f"outside the scale {scale['min']}-{scale['max']}"
            errors.append({"field": f"answers.{i}.value", "reason": reason})
        else:
            span = Decimal(scale["max"] - scale["min"])
            points.append(Decimal(answer.value - scale["min"]) * 100 / span)
        seen.add(answer.question)
    for number in sorted(set(scales) - seen):
        errors.append({"field": "answers", "reason": f"question {number} is not answered"})
    if errors:
        raise ValidationFailed("the answers do not fit the survey's questions", errors=errors)
    return mean(points)


def mean(values: Sequence[Decimal]) -> Decimal:
    return (sum(values, Decimal(0)) / len(values)).quantize(CENT, rounding=ROUND_HALF_UP)


def record_response(
    session: Session,
    recorder: EventRecorder,
    survey_id: str,
    body: ResponseIn,
    caller: Caller,
    now: datetime,
) -> SurveyResponse:
    """Record and score a sampled customer's answers (once per customer), counted for the
    customer's owner now; by the heads or line department of the survey's unit, never by the
    managers it assesses."""
    survey = load(session, survey_id, caller)
    if not access.may_manage(caller, survey.org_unit):
        raise Forbidden(
            "responses are recorded by the heads or line department of the survey's unit "
            f"({survey.org_unit}), not by the managers the scores assess"
        )
    sampled = session.get(SurveySample, (survey.id, body.customer_id))
    if sampled is None:
        raise ValidationFailed(
            f"customer {body.customer_id} is not in the sample of survey {survey_id}",
            errors=[{"field": "customer_id", "reason": "not in the sample"}],
        )
    points = score(survey.questions, body.answers)
    if session.get(SurveyResponse, (survey.id, body.customer_id)) is not None:
        raise Conflict(f"customer {body.customer_id} has responded to survey {survey_id} already")
    response = SurveyResponse(
        survey_id=survey.id,
        customer_id=body.customer_id,
        org_unit=sampled.org_unit,
        mode=sampled.mode,
        manager_id=owner_of(session, owner_refs, body.customer_id),
        answers=[a.model_dump() for a in body.answers],
        score=points,
        recorded_by=caller.subject,
        responded_at=now,
    )
    session.add(response)
    try:
        session.flush()
    except IntegrityError as exc:  # the same customer's response, recorded concurrently
        session.rollback()
        raise Conflict(f"customer {body.customer_id} has responded to survey {survey_id}") from exc
    recorder.record(
        session,
        events.SURVEY_RESPONDED,
        {
            "customer_id": response.customer_id,
            "survey_id": survey.id,
            "org_unit": response.org_unit,
            "mode": response.mode,
            "manager_id": response.manager_id,
            "score": f"{points:.2f}",
            "answered": len(body.answers),
            "recorded_by": caller.subject,
            "responded_at": now.isoformat(),
        },
        key=response.customer_id,
        actor=caller.subject,
    )
    session.commit()
    return response


def response_out(response: SurveyResponse) -> ResponseOut:
    return ResponseOut(
        survey_id=response.survey_id,
        customer_id=response.customer_id,
        org_unit=response.org_unit,
        mode=Mode(response.mode),
        manager_id=response.manager_id,
        answers=[AnswerIn.model_validate(a) for a in response.answers],
        score=Decimal(response.score).quantize(CENT),
        recorded_by=response.recorded_by,
        responded_at=response.responded_at,
    )


# -- results ------------------------------------------------------------------------------------
def _group(key: str | None, sampled: int | None, scores: Sequence[Decimal]) -> GroupResult:
    rate = None
    if sampled:
        rate = (Decimal(len(scores)) / sampled).quantize(RATE, rounding=ROUND_HALF_UP)
    return GroupResult(
        key=key,
        sampled=sampled,
        responded=len(scores),
        response_rate=rate,
        mean_score=mean(scores) if scores else None,
    )


def results(session: Session, survey: Survey) -> SurveyResults:
    """Sampled, responded, response rate and mean score: overall, by branch (the sampled
    customer's org unit), by manager (the owner when the response came; null: none) and by
    mode."""
    sampled = session.execute(
        select(SurveySample.org_unit, SurveySample.mode).where(SurveySample.survey_id == survey.id)
    ).all()
    answered = session.execute(
        select(
            SurveyResponse.org_unit,
            SurveyResponse.manager_id,
            SurveyResponse.mode,
            SurveyResponse.score,
        ).where(SurveyResponse.survey_id == survey.id)
    ).all()
    sampled_by_unit: dict[str, int] = defaultdict(int)
    sampled_by_mode: dict[str, int] = defaultdict(int)
    for unit, mode in sampled:
        sampled_by_unit[unit] += 1
        sampled_by_mode[mode] += 1
    by_unit: dict[str, list[Decimal]] = defaultdict(list)
    by_manager: dict[str | None, list[Decimal]] = defaultdict(list)
    by_mode: dict[str, list[Decimal]] = defaultdict(list)
    for unit, manager, mode, points in answered:
        value = Decimal(points).quantize(CENT)
        by_unit[unit].append(value)
        by_manager[manager].append(value)
        by_mode[mode].append(value)
    everyone = [Decimal(row.score).quantize(CENT) for row in answered]
    managers = sorted(by_manager, key=lambda m: (m is None, m or ""))
    return SurveyResults(
        survey_id=survey.id,
        overall=_group(ALL, len(sampled), everyone),
        by_branch=[
            _group(unit, count, by_unit.get(unit, []))
            for unit, count in sorted(sampled_by_unit.items())
        ],
        by_manager=[_group(m, None, by_manager[m]) for m in managers],
        by_mode=[
            _group(mode.value, sampled_by_mode[mode.value], by_mode.get(mode.value, []))
            for mode in Mode
            if sampled_by_mode.get(mode.value)
        ],
    )
