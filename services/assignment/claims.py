"""Claims 认领: who markets, maintains. A staff member who holds a book claims a customer they
know; the first valid claim on a customer with no owner and no claim pending wins at once, every
other claim is ``contested`` and waits for an administrator or a head of the customer's subtree.

A claim granted at once is stored in the transaction that makes the claimant the owner. Of two
first claims at once the database's one-owner index lets one commit; the other is rolled back and
stored as contested.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.db import count_rows, in_subtree, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from services.assignment import access, service
from services.assignment.models import Staff
from services.assignment.models_claims import Claim
from services.assignment.schemas import AssignmentIn, AssignmentMode, OwnershipReason
from services.assignment.schemas_claims import ClaimIn, ClaimStatus, Decision, DecisionIn

CLAIMS_PATH = "/api/v1/claims"
PENDING = ClaimStatus.contested.value
FIRST_CLAIM = "the customer had no owner and no pending claim: the first valid claim wins"
ANOTHER_GRANTED = "another claim was granted"


def create_claim(session: Session, recorder: EventRecorder, body: ClaimIn, caller: Caller) -> Claim:
    """Claim ``body.customer_id`` for the caller: granted (they own it now) or contested."""
    claimant = caller.subject
    staff = session.get(Staff, claimant)
    if staff is None or not access.BOOK_ROLES.intersection(staff.roles):
        raise Forbidden("only staff who hold a book of customers claim customers")
    unit = service.customer_unit(session, body.customer_id)
    if unit is None:
        raise NotFound(f"no customer {body.customer_id} (not known here yet)")
    owner = service.current_owner(session, body.customer_id)
    if owner is not None and owner.staff_id == claimant:
        raise Conflict(f"you own customer {body.customer_id} already", current_owner=claimant)
    pending = _pending(session, body.customer_id)
    for other in pending:
        if other.claimant_id == claimant:
            raise Conflict(
                f"you have a pending claim on customer {body.customer_id}",
                existing=f"{CLAIMS_PATH}/{other.id}",
            )
    service.eligible_staff(session, claimant, None)  # active, with room, book not frozen: 422
    claim_id = str(uuid.uuid4())
    if owner is None and not pending:
        claim = _new(session, claim_id, body, claimant, unit, ClaimStatus.granted)
        claim.decided_at, claim.decision_reason = claim.created_at, FIRST_CLAIM
        session.add(claim)  # committed by change_owner, with the ownership and its event
        assignment = AssignmentIn(
            customer_id=body.customer_id,
            mode=AssignmentMode.assign,
            staff_id=claimant,
            reason=OwnershipReason.claimed,
            note=body.note,
        )
        try:
            service.change_owner(session, recorder, assignment, claimant)
            return claim
        except Conflict:  # another claim or assignment won the race
            session.rollback()
    claim = _new(session, claim_id, body, claimant, unit, ClaimStatus.contested)
    session.add(claim)
    try:
        session.commit()
    except IntegrityError as exc:  # the same claimant's pending claim, made concurrently
        session.rollback()
        raise Conflict(f"you have a pending claim on customer {body.customer_id}") from exc
    return claim


def _new(
    session: Session, claim_id: str, body: ClaimIn, claimant: str, unit: str, status: ClaimStatus
) -> Claim:
    owner = service.current_owner(session, body.customer_id)
    return Claim(
        id=claim_id,
        customer_id=body.customer_id,
        claimant_id=claimant,
        org_unit=unit,
        owner_at_claim=owner.staff_id if owner is not None else None,
        note=body.note,
        status=status.value,
        created_at=utcnow(),
    )


def _pending(session: Session, customer_id: str, *, lock: bool = False) -> list[Claim]:
    query = select(Claim).where(Claim.customer_id == customer_id, Claim.status == PENDING)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return list(session.scalars(query.order_by(Claim.id)).all())


def _visible(claim: Claim, caller: Caller) -> bool:
    return claim.claimant_id == caller.subject or access.may_manage(caller, claim.org_unit)


def load_claim(session: Session, claim_id: str, caller: Caller) -> Claim:
    """A claim the caller may read: their own, or one on a customer of a subtree they head."""
    claim = session.get(Claim, claim_id)
    if claim is None or not _visible(claim, caller):
        raise NotFound(f"no claim {claim_id}")
    return claim


def decide(
    session: Session, recorder: EventRecorder, claim_id: str, body: DecisionIn, caller: Caller
) -> Claim:
    """Grant (the claimant becomes the owner, the other pending claims are refused) or refuse a
    contested claim, as an administrator or a head of the customer's subtree."""
    claim = load_claim(session, claim_id, caller)
    unit = service.customer_unit(session, claim.customer_id) or claim.org_unit
    if not access.may_manage(caller, unit):
        raise Forbidden(f"you may not decide claims on customers of {unit}")
    if claim.status != PENDING:
        raise Conflict(f"claim {claim_id} is {claim.status}; it is not waiting for a decision")
    # The customer's pending claims, locked in one order: of two decisions at once, the second
    # waits, then finds its claim decided.
    pending = _pending(session, claim.customer_id, lock=True)
    if claim not in pending:
        raise Conflict(f"claim {claim_id} was decided concurrently; read it again")
    if body.decision is Decision.refuse and not body.reason:
        raise ValidationFailed(
            "say why the claim is refused",
            errors=[{"field": "reason", "reason": "required to refuse"}],
        )
    now = utcnow()
    claim.decided_at, claim.decided_by, claim.decision_reason = now, caller.subject, body.reason
    if body.decision is Decision.refuse:
        claim.status = ClaimStatus.refused.value
        session.commit()
        return claim
    claim.status = ClaimStatus.granted.value
    for other in pending:
        if other is not claim:
            other.status = ClaimStatus.refused.value
            other.decided_at, other.decided_by = now, caller.subject
            other.decision_reason = ANOTHER_GRANTED
    owner = service.current_owner(session, claim.customer_id)
    if owner is not None and owner.staff_id == claim.claimant_id:
        session.commit()  # assigned to the claimant meanwhile: nothing to move
        return claim
    assignment = AssignmentIn(
        customer_id=claim.customer_id,
        mode=AssignmentMode.transfer if owner is not None else AssignmentMode.assign,
        staff_id=claim.claimant_id,
        from_staff_id=owner.staff_id if owner is not None else None,
        reason=OwnershipReason.claimed,
        note=body.reason,
    )
    service.change_owner(session, recorder, assignment, caller.subject)  # commits the decision
    return claim


def list_claims(
    session: Session,
    caller: Caller,
    status: str | None,
    customer_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Claim], int]:
    """The caller's own claims, and those on customers of a subtree they head (all for
    administrators), oldest first."""
    query = select(Claim)
    if not caller.has_role(ROLE_ADMIN):
        scope = Claim.claimant_id == caller.subject
        if caller.has_role(*access.MANAGERS):
            scope = scope | in_subtree(Claim.org_unit, caller.org_unit)
        query = query.where(scope)
    if status:
        query = query.where(Claim.status == status)
    if customer_id:
        query = query.where(Claim.customer_id == customer_id)
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Claim.created_at, Claim.id).limit(limit).offset(offset))
    return list(rows.all()), int(total)
