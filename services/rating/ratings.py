"""Credit-grade assessments 信用等级评估: scored, confirmed or adjusted by an approver, rejected.

A manager (or a re-rating, or a campaign) assesses a customer with the scorecard in force for
its kind: the system's figures fill the factors it knows, the manager enters the rest. An
assessment with inputs missing is ``incomplete`` and has no grade; a complete one is
``assessed`` and waits for an approver of the customer's subtree who is not the assessor
(four-eyes 双人复核) to confirm it — as computed, as the manager proposed, or otherwise with a
note — or reject it. A new assessment supersedes the customer's open one.

A grade from the bank's credit system can be recorded as it is (``imported``): it is confirmed
by an approver like any other.

The functions that create or decide flush but do not commit: re-rating and campaigns call them
in their own transactions; the routes commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.clock import business_today
from crmkit.db import utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from services.rating import access, risk
from services.rating.events import RATING_ASSESSED, RATING_CONFIRMED, RATING_REJECTED
from services.rating.models import Assessment, CustomerFigures, customer_refs
from services.rating.scoring import (
    GRADES,
    ScoreInputError,
    ScoreResult,
    scorecard_for,
    system_inputs,
)

INCOMPLETE = "incomplete"
ASSESSED = "assessed"
CONFIRMED = "confirmed"
REJECTED = "rejected"
SUPERSEDED = "superseded"
OPEN = (INCOMPLETE, ASSESSED)
TRIGGERS = ("manual", "financials", "status", "guarantees", "yearly", "campaign")
IMPORTED_PREFIX = "imported:"
IMPORTED_VERSION = "external"
OWN_ASSESSMENT = "the assessor may not confirm their own assessment"


# -- the customer ------------------------------------------------------------------------------
def customer_ref(session: Session, customer_id: str, *, lock: bool = False) -> Row[Any]:
    """The service's copy of a customer (kind, unit, line), or 404 when it is not known here.
    ``lock`` holds the row to the end of the transaction: one assessment of a customer at a
    time, so that of two made at once the second supersedes the first."""
    query = select(customer_refs).where(customer_refs.c.customer_id == customer_id)
    row = session.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no customer {customer_id} (not known here yet)")
    return row


def require_proposer(session: Session, caller: Caller, customer_id: str) -> None:
    """403 unless the caller may assess the customer or propose its limit."""
    if not access.may_propose(session, caller, customer_id):
        raise Forbidden(
            f"only the customer's owner or a member of its serving team, as a customer manager"
            f" or head, may assess customer {customer_id} or propose its limit"
        )


def require_reader(session: Session, caller: Caller, customer_id: str, org_unit: str) -> None:
    """403, saying why, unless the caller may read the customer's ratings and limits."""
    if not access.may_read(session, caller, customer_id, org_unit):
        raise Forbidden(f"you may not read the ratings and limits of customer {customer_id}")


# -- assessing ---------------------------------------------------------------------------------
def _check_proposal(proposed_grade: str | None, reason: str | None) -> None:
    if proposed_grade is None:
        return
    if proposed_grade not in GRADES:
        raise ValidationFailed(
            f"{proposed_grade!r} is not a grade",
            errors=[{"field": "proposed_grade", "reason": f"one of {', '.join(GRADES)}"}],
        )
    if not (reason and reason.strip()):
        raise ValidationFailed(
            "a proposed grade needs the reason for the adjustment",
            errors=[{"field": "adjustment_reason", "reason": "required with proposed_grade"}],
        )


def _supersede_open(session: Session, customer_id: str) -> None:
    """The customer's undecided assessments are replaced by the one being made (the caller
    holds the customer's row, see :func:`customer_ref`)."""
    open_ones = session.scalars(
        select(Assessment).where(Assessment.customer_id == customer_id, Assessment.status.in_(OPEN))
    ).all()
    for old in open_ones:
        old.status = SUPERSEDED


def _score(
    kind: str, inputs: Mapping[str, object], figures: CustomerFigures | None
) -> tuple[ScoreResult, dict[str, object]]:
    card = scorecard_for(kind, business_today())
    unknown = card.unknown_codes(inputs)
    if unknown:
        raise ValidationFailed(
            f"not factors of scorecard {card.id} {card.version}: {', '.join(unknown)}",
            errors=[{"field": f"inputs.{code}", "reason": "no such factor"} for code in unknown],
        )
    used = card.inputs_from(system_inputs(figures), inputs)
    try:
        return card.score(used), used
    except ScoreInputError as exc:
        raise ValidationFailed(
            f"input {exc.code} cannot be scored: {exc.reason}",
            errors=[{"field": f"inputs.{exc.code}", "reason": exc.reason}],
        ) from None


def _stored(value: object) -> object:
    """An input as kept in JSON: numbers as exact decimal strings."""
    if isinstance(value, Decimal | float) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        return str(value)
    return value


def assess(
    session: Session,
    recorder: EventRecorder,
    *,
    customer_id: str,
    inputs: Mapping[str, object],
    actor: str,
    trigger: str,
    campaign_id: str | None = None,
    proposed_grade: str | None = None,
    reason: str | None = None,
) -> Assessment:
    """Score the customer with the scorecard in force for its kind, store the assessment
    (``incomplete`` with the missing inputs listed, else ``assessed``), supersede its open one
    and record ``rating.assessed``. Flushes; the caller commits."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    _check_proposal(proposed_grade, reason)
    ref = customer_ref(session, customer_id, lock=True)
    result, used = _score(ref.kind, inputs, session.get(CustomerFigures, customer_id))
    if proposed_grade == result.grade:
        proposed_grade, reason = None, None  # the computed grade: no adjustment
    _supersede_open(session, customer_id)
    assessment = Assessment(
        id=str(uuid.uuid4()),
        customer_id=customer_id,
        kind=ref.kind,
        org_unit=ref.org_unit,
        business_line=ref.business_line,
        scorecard_id=result.scorecard_id,
        scorecard_version=result.version,
        inputs={code: _stored(value) for code, value in used.items()},
        lines=[line.as_dict() for line in result.lines],
        missing=list(result.missing),
        score=result.score,
        computed_grade=result.grade,
        proposed_grade=proposed_grade,
        adjustment_reason=reason.strip() if proposed_grade and reason else None,
        status=INCOMPLETE if result.missing else ASSESSED,
        trigger=trigger,
        campaign_id=campaign_id,
        assessed_by=actor,
        assessed_at=utcnow(),
    )
    session.add(assessment)
    session.flush()
    _record_assessed(session, recorder, assessment)
    return assessment


def record_imported(
    session: Session,
    recorder: EventRecorder,
    *,
    customer_id: str,
    grade: str,
    source: str,
    actor: str,
    note: str | None = None,
) -> Assessment:
    """Record a grade the bank's credit system gave (``source`` names it) as an assessment
    awaiting confirmation like any other: no score (0.00), one explanation line."""
    if grade not in GRADES:
        raise ValidationFailed(
            f"{grade!r} is not a grade",
            errors=[{"field": "imported_grade", "reason": f"one of {', '.join(GRADES)}"}],
        )
    ref = customer_ref(session, customer_id, lock=True)
    _supersede_open(session, customer_id)
    line = {
        "code": "imported_grade",
        "name": f"Grade from {source}",
        "side": "imported",
        "value": grade,
        "bin": note,
        "points": "0.00",
        "max_points": "0.00",
    }
    assessment = Assessment(
        id=str(uuid.uuid4()),
        customer_id=customer_id,
        kind=ref.kind,
        org_unit=ref.org_unit,
        business_line=ref.business_line,
        scorecard_id=IMPORTED_PREFIX + source,
        scorecard_version=IMPORTED_VERSION,
        inputs={"imported_grade": grade, "source": source},
        lines=[line],
        missing=[],
        score=Decimal("0.00"),
        computed_grade=grade,
        status=ASSESSED,
        trigger="manual",
        assessed_by=actor,
        assessed_at=utcnow(),
    )
    session.add(assessment)
    session.flush()
    _record_assessed(session, recorder, assessment)
    return assessment


def _record_assessed(session: Session, recorder: EventRecorder, assessment: Assessment) -> None:
    recorder.record(
        session,
        RATING_ASSESSED,
        {
            "customer_id": assessment.customer_id,
            "assessment_id": assessment.id,
            "kind": assessment.kind,
            "org_unit": assessment.org_unit,
            "scorecard_id": assessment.scorecard_id,
            "scorecard_version": assessment.scorecard_version,
            "score": f"{assessment.score:.2f}",
            "computed_grade": assessment.computed_grade,
            "proposed_grade": assessment.proposed_grade,
            "status": assessment.status,
            "missing": list(assessment.missing),
            "trigger": assessment.trigger,
            "campaign_id": assessment.campaign_id,
        },
        key=assessment.customer_id,
        actor=assessment.assessed_by,
    )


# -- reading -----------------------------------------------------------------------------------
def current_grade(session: Session, customer_id: str) -> Assessment | None:
    """The customer's grade in force: its latest confirmed assessment, if any."""
    return session.scalars(
        select(Assessment)
        .where(Assessment.customer_id == customer_id, Assessment.status == CONFIRMED)
        .order_by(Assessment.decided_at.desc(), Assessment.id.desc())
        .limit(1)
    ).first()


def load_assessment(session: Session, assessment_id: str, caller: Caller) -> Assessment:
    """An assessment the caller may read."""
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound(f"no assessment {assessment_id}")
    require_reader(session, caller, assessment.customer_id, _unit_of(session, assessment))
    return assessment


def list_assessments(
    session: Session, caller: Caller, customer_id: str, limit: int, offset: int
) -> tuple[list[Assessment], int]:
    """A customer's assessments, newest first, for a caller who may read them."""
    ref = customer_ref(session, customer_id)
    require_reader(session, caller, customer_id, ref.org_unit)
    where = Assessment.customer_id == customer_id
    total = session.scalar(select(func.count()).select_from(Assessment).where(where)) or 0
    rows = session.scalars(
        select(Assessment)
        .where(where)
        .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def customer_unit(session: Session, customer_id: str, fallback: str) -> str:
    """The customer's unit now (its copy), else ``fallback`` (the unit it had then)."""
    unit = session.scalar(
        select(customer_refs.c.org_unit).where(customer_refs.c.customer_id == customer_id)
    )
    return unit or fallback


def _unit_of(session: Session, assessment: Assessment) -> str:
    return customer_unit(session, assessment.customer_id, assessment.org_unit)


# -- deciding ----------------------------------------------------------------------------------
def _open_for_decision(session: Session, assessment_id: str, caller: Caller) -> Assessment:
    assessment = session.get(Assessment, assessment_id, with_for_update=True)
    if assessment is None:
        raise NotFound(f"no assessment {assessment_id}")
    unit = _unit_of(session, assessment)
    if not access.may_decide(caller, unit):
        raise Forbidden(
            f"only an approver of the customer's subtree ({unit}) may confirm or reject its grade"
        )
    if assessment.assessed_by == caller.subject:
        raise Forbidden(OWN_ASSESSMENT)
    if assessment.status not in OPEN:
        raise Conflict(
            f"assessment {assessment_id} is {assessment.status}; it is not waiting for a decision",
            status_now=assessment.status,
        )
    return assessment


def valid_until(day: date) -> date:
    """A grade confirmed on ``day`` holds one year (29 February → 28 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def confirm(
    session: Session,
    recorder: EventRecorder,
    assessment_id: str,
    *,
    caller: Caller,
    grade: str | None = None,
    note: str | None = None,
) -> Assessment:
    """Confirm an assessed grade: the manager's proposed grade (when there is one) or the
    computed one unless ``grade`` says otherwise; a grade that is neither needs a note. Sets the
    final grade valid for a year, records ``rating.confirmed`` and tells the risk watch."""
    assessment = _open_for_decision(session, assessment_id, caller)
    if assessment.status == INCOMPLETE or assessment.computed_grade is None:
        raise Conflict(
            f"assessment {assessment_id} is incomplete: inputs missing:"
            f" {', '.join(assessment.missing)}",
            missing=list(assessment.missing),
        )
    chosen = grade or assessment.proposed_grade or assessment.computed_grade
    if chosen not in GRADES:
        raise ValidationFailed(
            f"{chosen!r} is not a grade", errors=[{"field": "grade", "reason": "not a grade"}]
        )
    offered = {assessment.computed_grade, assessment.proposed_grade}
    if chosen not in offered and not (note and note.strip()):
        raise ValidationFailed(
            "a grade other than the computed or the proposed one needs a note",
            errors=[{"field": "note", "reason": "required for another grade"}],
        )
    previous = current_grade(session, assessment.customer_id)
    previous_grade = previous.final_grade if previous is not None else None
    today = business_today()
    assessment.final_grade = chosen
    assessment.status = CONFIRMED
    assessment.decided_by = caller.subject
    assessment.decided_at = utcnow()
    assessment.decision_note = note
    assessment.valid_until = valid_until(today)
    session.flush()
    recorder.record(
        session,
        RATING_CONFIRMED,
        {
            "customer_id": assessment.customer_id,
            "assessment_id": assessment.id,
            "grade": chosen,
            "computed_grade": assessment.computed_grade,
            "adjusted": chosen != assessment.computed_grade,
            "previous_grade": previous_grade,
            "valid_until": assessment.valid_until.isoformat(),
            "decided_by": caller.subject,
        },
        key=assessment.customer_id,
        actor=caller.subject,
    )
    risk.on_grade_confirmed(session, assessment.customer_id, previous_grade, chosen)
    return assessment


def reject(
    session: Session,
    recorder: EventRecorder,
    assessment_id: str,
    *,
    caller: Caller,
    note: str | None,
) -> Assessment:
    """Reject an open assessment with the reason; records ``rating.rejected``."""
    if not (note and note.strip()):
        raise ValidationFailed(
            "say why the assessment is rejected",
            errors=[{"field": "note", "reason": "required to reject"}],
        )
    assessment = _open_for_decision(session, assessment_id, caller)
    assessment.status = REJECTED
    assessment.decided_by = caller.subject
    assessment.decided_at = utcnow()
    assessment.decision_note = note.strip()
    session.flush()
    recorder.record(
        session,
        RATING_REJECTED,
        {
            "customer_id": assessment.customer_id,
            "assessment_id": assessment.id,
            "reason": note.strip(),
            "decided_by": caller.subject,
        },
        key=assessment.customer_id,
        actor=caller.subject,
    )
    return assessment
