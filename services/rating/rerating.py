"""Re-rating 重新评级: a new assessment proposed when a customer's inputs change, and the yearly
re-rating of every grade past its validity.

Only a customer with a confirmed grade is re-rated automatically (an unrated one waits for its
manager or a campaign). The proposal is an ordinary assessment by ``system`` with the trigger
that caused it: the bank's latest figures fill the system factors, the inputs of the customer's
latest assessment are carried as the entries, and an approver confirms or rejects it.

No pile-up: core banking sends a snapshot a day, and a change that moves no factor into another
bin changes nothing. A new figure proposes an assessment only when the outcome — scorecard
version, score, computed grade, missing inputs — differs from the one it would replace: the
open automatic proposal if there is one, else the confirmed grade. A status change (dormant,
closed, active again …) or a change of the guarantees a limit rests on proposes one whatever
the score, since the grade and the limit on it must be reviewed, unless an automatic proposal
with the same outcome is already open. An assessment a staff member has opened is theirs to
finish: new figures do not supersede it (the next change after its decision is compared with
the grade it confirmed). A closed customer gets the one proposal of its closing and no more
from later figures, guarantees or the yearly sweep.
"""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased

from crmkit.clock import business_today
from crmkit.errors import DomainError
from crmkit.outbox import EventRecorder, recorder_of
from crmkit.replicas import MERGED_STATUS
from crmkit.runtime import ServiceRuntime
from services.rating import ratings
from services.rating.campaigns import last_inputs, score_inputs, usable_entries
from services.rating.models import Assessment, CustomerFigures, customer_refs
from services.rating.scoring import ScorecardError, ScoreResult, scorecard_for, system_inputs

log = logging.getLogger(__name__)

SYSTEM = "system"
STATUS = "status"
# Changes that call for a review of the grade whatever the score: the customer's status, and
# the guarantees its limit rests on (which the scorecards do not read).
REVIEW_TRIGGERS = frozenset({STATUS, "guarantees"})
YEARLY = "yearly"
CLOSED = "closed"
# Records re-rating leaves alone: closed customers (after the one review of their closing) and
# records merged into another (the survivor is rated).
NOT_RERATED = (CLOSED, MERGED_STATUS)
SWEEP_CHUNK = 500


def _outcome(assessment: Assessment) -> tuple[object, ...]:
    return (
        assessment.scorecard_id,
        assessment.scorecard_version,
        assessment.score,
        assessment.computed_grade,
        tuple(assessment.missing),
    )


def _new_outcome(result: ScoreResult) -> tuple[object, ...]:
    return (result.scorecard_id, result.version, result.score, result.grade, result.missing)


def _open_assessment(session: Session, customer_id: str) -> Assessment | None:
    """The customer's latest undecided assessment, if any."""
    return session.scalars(
        select(Assessment)
        .where(Assessment.customer_id == customer_id, Assessment.status.in_(ratings.OPEN))
        .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
        .limit(1)
    ).first()


def propose(
    session: Session,
    recorder: EventRecorder,
    customer_id: str,
    kind: str,
    trigger: str,
    day: date,
) -> Assessment:
    """Assess the customer automatically with its latest inputs and the bank's figures."""
    card = scorecard_for(kind, day)
    system = system_inputs(session.get(CustomerFigures, customer_id))
    entered = usable_entries(card, system, last_inputs(session, customer_id))
    return ratings.assess(
        session, recorder, customer_id=customer_id, inputs=entered, actor=SYSTEM, trigger=trigger
    )


def on_inputs_changed(session: Session, customer_id: str, trigger: str) -> None:
    """Propose a new assessment of a rated customer whose inputs changed (``trigger``:
    financials, status or guarantees), in the caller's transaction."""
    confirmed = ratings.current_grade(session, customer_id)
    if confirmed is None:
        return  # not rated yet: its manager or a campaign rates it
    ref = session.execute(
        select(customer_refs.c.kind, customer_refs.c.status).where(
            customer_refs.c.customer_id == customer_id
        )
    ).first()
    review = trigger in REVIEW_TRIGGERS
    if ref is None or ref.status == MERGED_STATUS or (ref.status == CLOSED and trigger != STATUS):
        return
    pending = _open_assessment(session, customer_id)
    if pending is not None and pending.assessed_by != SYSTEM and not review:
        return  # a staff member's assessment is being decided
    day = business_today()
    try:
        card = scorecard_for(ref.kind, day)
    except ScorecardError:
        log.warning("no scorecard in force to re-rate", extra={"customer_id": customer_id})
        return
    system = system_inputs(session.get(CustomerFigures, customer_id))
    entered = usable_entries(card, system, last_inputs(session, customer_id))
    _, result = score_inputs(card, system, entered)
    outcome = _new_outcome(result)
    automatic = pending if pending is not None and pending.assessed_by == SYSTEM else None
    if automatic is not None:
        if _outcome(automatic) == outcome:
            return  # the same proposal is already waiting
    elif not review and _outcome(confirmed) == outcome:
        return  # nothing moved: the grade in force stands
    ratings.assess(
        session,
        recorder_of(session),
        customer_id=customer_id,
        inputs=entered,
        actor=SYSTEM,
        trigger=trigger,
    )


def due_for_yearly(session: Session, day: date, after: str, limit: int) -> list[str]:
    """Customers (after ``after``, in id order) whose confirmed grades are all past their date on
    ``day``, with no assessment open and no yearly re-rating proposed since the grade was
    confirmed; closed customers are not re-rated."""
    grade = aliased(Assessment)
    valid = aliased(Assessment)
    pending = aliased(Assessment)
    yearly = aliased(Assessment)
    refs = customer_refs.c
    query = (
        select(grade.customer_id)
        .join(customer_refs, refs.customer_id == grade.customer_id)
        .where(
            grade.status == ratings.CONFIRMED,
            grade.valid_until < day,
            grade.customer_id > after,
            refs.status.not_in(NOT_RERATED),
            ~exists().where(
                valid.customer_id == grade.customer_id,
                valid.status == ratings.CONFIRMED,
                valid.valid_until >= day,
            ),
            ~exists().where(
                pending.customer_id == grade.customer_id, pending.status.in_(ratings.OPEN)
            ),
            ~exists().where(
                and_(
                    yearly.customer_id == grade.customer_id,
                    yearly.trigger == YEARLY,
                    yearly.assessed_at > grade.decided_at,
                )
            ),
        )
        .distinct()
        .order_by(grade.customer_id)
        .limit(limit)
    )
    return list(session.scalars(query).all())


def sweep_yearly(runtime: ServiceRuntime, chunk_size: int = SWEEP_CHUNK) -> int:
    """Propose the yearly re-rating of every customer whose confirmed grade is past its date.

    In chunks of ``chunk_size`` customers, one transaction each; a customer once proposed (an
    open assessment, then a yearly one since its grade) is not due again, so a second sweep —
    or one after a crash — proposes nothing twice. Returns the assessments proposed."""
    day = business_today()
    after = ""
    proposed = 0
    while True:
        with runtime.session_factory() as session:
            due = due_for_yearly(session, day, after, chunk_size)
            if not due:
                return proposed
            kinds = dict(
                session.execute(
                    select(customer_refs.c.customer_id, customer_refs.c.kind).where(
                        customer_refs.c.customer_id.in_(due)
                    )
                ).all()
            )
            for customer_id in due:
                try:
                    with session.begin_nested():
                        propose(
                            session, runtime.recorder, customer_id, kinds[customer_id], YEARLY, day
                        )
                    proposed += 1
                except (DomainError, ScorecardError):
                    log.warning("yearly re-rating not proposed", extra={"customer_id": customer_id})
            session.commit()
        after = due[-1]
