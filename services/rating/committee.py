"""The credit committee 贷审会 and its rules of procedure 审批议事规则.

A limit the policy sends to the committee (above its line, or of a grade it names) waits in
status ``committee`` after its review. An approver of the customer's subtree (or an
administrator) opens the meeting, naming the members and the chair; the proposer may not sit.
Tokens say nothing of other people's roles, so the ids named are recorded as given; a member
proves the role ``credit_committee`` with their own token when they vote or sign. Each named
member votes once (for, against, abstain, with an opinion). The chair signs the minutes off: the
quorum is checked (at least the policy's minimum of votes cast, and at least its share of the
named members voting), and the limit is approved when at least the policy's share of the votes
cast is "for" — two thirds or more 三分之二以上, the bound included — else rejected, both with
``by_committee`` true.
"""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.clock import business_today
from crmkit.db import utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, PolicyViolation, ValidationFailed
from crmkit.outbox import EventRecorder
from services.rating import access, approvals, events
from services.rating.approvals import COMMITTEE, CommitteeRules
from services.rating.models import CreditLimit
from services.rating.models_committee import CommitteeMeeting, CommitteeVote

OPEN, DECIDED = "open", "decided"


def meeting_of(session: Session, limit_id: str, *, lock: bool = False) -> CommitteeMeeting | None:
    """The committee's meeting on a limit, if one was opened (``lock``: for update)."""
    query = select(CommitteeMeeting).where(CommitteeMeeting.credit_limit_id == limit_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def votes_of(session: Session, meeting_id: str) -> list[CommitteeVote]:
    """The votes cast at a meeting, in the order they were cast."""
    return list(
        session.scalars(
            select(CommitteeVote)
            .where(CommitteeVote.meeting_id == meeting_id)
            .order_by(CommitteeVote.at, CommitteeVote.id)
        ).all()
    )


def _open_meeting_of(session: Session, limit: CreditLimit) -> CommitteeMeeting:
    meeting = meeting_of(session, limit.id, lock=True)
    if meeting is None:
        raise NotFound(f"no committee meeting was opened on credit limit {limit.id}")
    return meeting


def open_meeting(
    session: Session,
    recorder: EventRecorder,
    limit_id: str,
    members: list[str],
    chair: str,
    caller: Caller,
) -> CommitteeMeeting:
    """Open the committee's meeting on a limit referred to it."""
    limit = approvals.load_limit(session, limit_id)
    approvals.require_decider(session, caller, limit, "convene the credit committee on")
    if caller.subject == limit.proposed_by:
        raise Forbidden("you proposed this limit: a proposer does not convene its committee")
    if limit.status != COMMITTEE:
        raise Conflict(
            f"credit limit {limit_id} is {limit.status}; only a limit referred to the credit "
            "committee goes before it"
        )
    if meeting_of(session, limit_id) is not None:
        raise Conflict(f"the committee's meeting on credit limit {limit_id} is open already")
    named = list(dict.fromkeys(members))
    rules = approvals.policy_on(business_today()).committee
    if len(named) < rules.min_members:
        raise ValidationFailed(
            f"name at least {rules.min_members} members of the credit committee",
            errors=[{"field": "members", "reason": f"at least {rules.min_members} members"}],
        )
    if chair not in named:
        raise ValidationFailed(
            "the chair must be one of the members named",
            errors=[{"field": "chair", "reason": "not among the members"}],
        )
    if limit.proposed_by in named:
        raise PolicyViolation(
            f"the proposer {limit.proposed_by} may not sit on the committee deciding the proposal"
        )
    now = utcnow()
    meeting = CommitteeMeeting(
        id=str(uuid.uuid4()),
        credit_limit_id=limit.id,
        customer_id=limit.customer_id,
        chair=chair,
        members=named,
        status=OPEN,
        opened_by=caller.subject,
        opened_at=now,
        votes_for=0,
        votes_against=0,
        votes_abstain=0,
    )
    session.add(meeting)
    approvals.add_step(
        session,
        limit,
        "committee_open",
        caller.subject,
        now,
        note=f"chair {chair}; members {', '.join(named)}",
    )
    try:
        session.commit()
    except IntegrityError as exc:  # opened by someone else at the same moment
        session.rollback()
        raise Conflict(
            f"the committee's meeting on credit limit {limit_id} is open already"
        ) from exc
    return meeting


def _require_member(caller: Caller, meeting: CommitteeMeeting, action: str) -> None:
    if caller.subject not in meeting.members:
        raise Forbidden(
            f"you are not a member named to the committee on this limit; you may not {action}"
        )
    if not caller.has_role(access.ROLE_COMMITTEE):
        raise Forbidden(f"to {action} you need the role {access.ROLE_COMMITTEE}")


def vote(
    session: Session,
    recorder: EventRecorder,
    limit_id: str,
    choice: str,
    opinion: str,
    caller: Caller,
) -> CommitteeMeeting:
    """A named member's vote, once each (``credit_limit.voted``)."""
    limit = approvals.load_limit(session, limit_id)
    meeting = _open_meeting_of(session, limit)
    _require_member(caller, meeting, "vote")
    if meeting.status != OPEN:
        raise Conflict("the meeting is over: its minutes were signed off")
    earlier = session.scalars(
        select(CommitteeVote).where(
            CommitteeVote.meeting_id == meeting.id, CommitteeVote.member == caller.subject
        )
    ).one_or_none()
    if earlier is not None:
        raise Conflict(f"you voted already ({earlier.vote}); a member votes once")
    now = utcnow()
    session.add(
        CommitteeVote(
            meeting_id=meeting.id, member=caller.subject, vote=choice, opinion=opinion, at=now
        )
    )
    approvals.add_step(session, limit, "vote", caller.subject, now, note=f"{choice}: {opinion}")
    recorder.record(
        session,
        events.CREDIT_LIMIT_VOTED,
        {
            "customer_id": limit.customer_id,
            "credit_limit_id": limit.id,
            "member": caller.subject,
            "vote": choice,
        },
        key=limit.customer_id,
        actor=caller.subject,
    )
    try:
        session.commit()
    except IntegrityError as exc:  # the same member's second vote, cast at the same moment
        session.rollback()
        raise Conflict("you voted already; a member votes once") from exc
    return meeting


def quorum_problem(rules: CommitteeRules, members: int, cast: int) -> str | None:
    """Why ``cast`` votes of ``members`` named are no quorum, or None when they are."""
    if cast < rules.quorum_min_votes:
        return f"{cast} votes were cast; the quorum needs at least {rules.quorum_min_votes}"
    if not rules.quorum_share.reached_by(cast, members):
        return (
            f"{cast} of the {members} members named voted; the quorum needs at least "
            f"{rules.quorum_share} of them"
        )
    return None


def tally_text(tally: Counter[str]) -> str:
    return f"{tally['for']} for, {tally['against']} against, {tally['abstain']} abstaining"


def sign_off(
    session: Session, recorder: EventRecorder, limit_id: str, minutes: str, caller: Caller
) -> CreditLimit:
    """The chair signs the minutes off: with a quorum, the votes decide the limit (approved
    with at least the policy's share "for", else rejected); without one, 409 and the meeting
    stays open."""
    limit = approvals.load_limit(session, limit_id)
    meeting = _open_meeting_of(session, limit)
    if caller.subject != meeting.chair:
        raise Forbidden(f"only the chair ({meeting.chair}) signs the committee's minutes off")
    _require_member(caller, meeting, "sign the minutes off")
    if meeting.status != OPEN:
        raise Conflict("the minutes were signed off already")
    rules = approvals.policy_on(business_today()).committee
    tally = Counter(v.vote for v in votes_of(session, meeting.id))
    cast = sum(tally.values())
    problem = quorum_problem(rules, len(meeting.members), cast)
    if problem is not None:
        raise Conflict(f"the committee has no quorum: {problem}", votes_cast=cast)
    passed = rules.pass_share.reached_by(tally["for"], cast)
    now = utcnow()
    meeting.status, meeting.minutes = DECIDED, minutes
    meeting.decision = approvals.APPROVED if passed else approvals.REJECTED
    meeting.votes_for, meeting.votes_against = tally["for"], tally["against"]
    meeting.votes_abstain = tally["abstain"]
    meeting.signed_by, meeting.signed_at = caller.subject, now
    approvals.add_step(session, limit, "sign_off", caller.subject, now, note=minutes)
    outcome = f"credit committee: {tally_text(tally)} of {len(meeting.members)} members"
    if passed:
        return approvals.approve_limit(
            session, recorder, limit, decided_by=caller.subject, note=outcome, by_committee=True
        )
    reason = (
        f"the credit committee did not approve ({tally_text(tally)}; approval needs at least "
        f"{rules.pass_share} of the votes cast for)"
    )
    return approvals.reject_limit(
        session, recorder, limit, decided_by=caller.subject, reason=reason, by_committee=True
    )
