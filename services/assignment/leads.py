"""Target lists and lead distribution 名单制营销 (附件4).

Service areas 片区 are contracted 划片包干 to sub-branches, their streets and estates to managers.
A lead / target-list entry is collected in an area; its business line follows the area (urban →
corporate or personal by the kind of target, rural, farm, forest-farm and out-of-town →
agricultural). Distribution picks its marketer: a priority claim 优先领认 first, else the manager
contracted for its street or estate, else the nearest active customer managers of the line (the
area's unit, then up the org tree), preferring those who already hold entries of the same industry
行业归类, then the least loaded (open entries plus book). The entry then moves collected →
distributed → feedback → screened → target (with a plan) → won | lost. Key targets may be posted
for bidding; the head awards one bidder, and the posted reward is recorded when the entry is won.

A won entry names the customer it became: who markets, maintains 谁营销谁维护 — a customer without
an owner becomes the marketer's, in the transaction of the win. Each distribution, change of stage
and win is published (``lead.distributed``, ``lead.stage_changed``, ``lead.won``, keyed by the
entry) in the transaction that makes it. Areas and open entries are edited naming the version read.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.db import count_rows, in_subtree, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from crmkit.versioning import check_version
from services.assignment import access, events, service
from services.assignment.models import OrgUnit, Staff
from services.assignment.models_leads import Lead, LeadArea, LeadBid, LeadStageChange, LeadSubArea
from services.assignment.rules import ancestors
from services.assignment.schemas import AssignmentIn, AssignmentMode, OwnershipReason
from services.assignment.schemas_leads import (
    AreaIn,
    AreaKind,
    AreaPatch,
    AwardIn,
    BidOut,
    DistributeIn,
    FunnelLine,
    FunnelOut,
    InfoStatus,
    LeadDetail,
    LeadIn,
    LeadKind,
    LeadOut,
    LeadPatch,
    Line,
    NoteIn,
    PostIn,
    Stage,
    StageChangeOut,
    StageIn,
    SubAreaIn,
    SubAreaOut,
)

LEADS_PATH = "/api/v1/target-lists"
CUSTOMER_MANAGER = "customer_manager"

# The funnel, in order; ``lost`` ends an entry at any stage and reaches nothing further.
FUNNEL = (
    Stage.collected,
    Stage.distributed,
    Stage.feedback,
    Stage.screened,
    Stage.target,
    Stage.won,
)
RANK = {stage.value: n for n, stage in enumerate(FUNNEL)}
FINAL = frozenset({Stage.won.value, Stage.lost.value})
# Moves made with POST .../stage; ``distributed`` is reached by distributing or awarding only.
TRANSITIONS: dict[str, frozenset[str]] = {
    Stage.collected.value: frozenset({Stage.lost.value}),
    Stage.distributed.value: frozenset({Stage.feedback.value, Stage.lost.value}),
    Stage.feedback.value: frozenset({Stage.screened.value, Stage.lost.value}),
    Stage.screened.value: frozenset({Stage.target.value, Stage.lost.value}),
    Stage.target.value: frozenset({Stage.won.value, Stage.lost.value}),
}
LINE_DEPARTMENT = {
    Line.corporate.value: "公司",
    Line.personal.value: "个人",
    Line.agricultural.value: "三农",
}
_CORPORATE_KINDS = frozenset(
    {LeadKind.corporate.value, LeadKind.institution.value, LeadKind.individual_business.value}
)
_OPEN, _AWARDED, _CLOSED = "open", "awarded", "closed"
_PENDING, _WON_BID, _NOT_AWARDED = "pending", "awarded", "not_awarded"


def line_for(area_kind: str, lead_kind: str) -> str:
    """The business line of a lead: urban areas go to the corporate line (corporate,
    institution, individual business) or the personal line (individuals); farm households and
    every rural, farm, forest-farm and out-of-town area go to the agricultural line."""
    if area_kind != AreaKind.urban.value or lead_kind == LeadKind.farm_household.value:
        return Line.agricultural.value
    if lead_kind in _CORPORATE_KINDS:
        return Line.corporate.value
    return Line.personal.value


def _subtree(column: Any, unit: str) -> ColumnElement[bool]:
    return in_subtree(column, unit)


def _book_staff(session: Session, caller: Caller) -> Staff:
    """The caller's staff record: active, with a role that keeps a book."""
    staff = session.get(Staff, caller.subject)
    if staff is None or not access.BOOK_ROLES.intersection(staff.roles):
        raise Forbidden("only staff who hold a book of customers do this")
    if staff.status != "active":
        raise ValidationFailed(f"staff member {staff.id} is {staff.status}, not active")
    return staff


# -- areas --------------------------------------------------------------------------------------
def _check_unit(session: Session, org_unit: str, caller: Caller) -> None:
    if session.get(OrgUnit, org_unit) is None:
        raise ValidationFailed(
            f"no org unit {org_unit}",
            errors=[{"field": "org_unit", "reason": "unknown org unit"}],
        )
    if not access.may_manage(caller, org_unit):
        raise Forbidden(
            f"you may not contract areas to {org_unit}: administrators and the heads of its "
            "subtree do"
        )


def _check_sub_areas(
    session: Session,
    subs: Sequence[SubAreaIn],
    caller: Caller,
    kept: Mapping[str, str | None] | None = None,
) -> None:
    """Streets and estates named once each, contracted to staff the caller manages (``kept``:
    the contracts an area has already, by name, which stay as they are without a check)."""
    names = [s.name for s in subs]
    if len(set(names)) != len(names):
        raise ValidationFailed(
            "each street or estate is named once",
            errors=[{"field": "sub_areas", "reason": "duplicate name"}],
        )
    for n, sub in enumerate(subs):
        if sub.staff_id is None or (kept is not None and kept.get(sub.name) == sub.staff_id):
            continue
        member = session.get(Staff, sub.staff_id)
        if member is None or not access.may_manage(caller, member.org_unit):
            raise ValidationFailed(
                f"no staff member {sub.staff_id} you may contract a street or estate to",
                errors=[{"field": f"sub_areas.{n}.staff_id", "reason": "unknown staff"}],
            )


def create_area(session: Session, body: AreaIn, caller: Caller) -> LeadArea:
    """A service area contracted to ``body.org_unit``, by an administrator or a head of it."""
    _check_unit(session, body.org_unit, caller)
    _check_sub_areas(session, body.sub_areas, caller)
    area = LeadArea(
        id=str(uuid.uuid4()),
        name=body.name,
        kind=body.kind.value,
        org_unit=body.org_unit,
        created_at=utcnow(),
        created_by=caller.subject,
    )
    session.add(area)
    for sub in body.sub_areas:
        session.add(
            LeadSubArea(area_id=area.id, name=sub.name, kind=sub.kind.value, staff_id=sub.staff_id)
        )
    session.commit()
    return area


def update_area(
    session: Session, area_id: str, body: AreaPatch, caller: Caller, if_match: str | None
) -> LeadArea:
    """Rename an area, change its kind, contract it to another unit or replace its streets and
    estates (administrators, heads of its unit and of the new one), naming the version read.

    Entries collected before keep the area kind and line they were routed by. A street or estate
    an entry names is not removed (409 with ``in_use``).
    """
    area = session.scalars(
        select(LeadArea).where(LeadArea.id == area_id).with_for_update()
    ).one_or_none()
    if area is None:
        raise NotFound(f"no area {area_id}")
    if not access.may_manage(caller, area.org_unit):
        raise Forbidden(
            f"you may not change areas of {area.org_unit}: administrators and the heads of its "
            "subtree do"
        )
    check_version(f"area {area.id}", area.version, body.version, if_match)
    with session.no_autoflush:  # one UPDATE of the area: one new version
        if not _edit_area(session, area, body, caller):
            return area  # the same values again are no change: no new version
        area.updated_at, area.updated_by = utcnow(), caller.subject
    try:
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(f"area {area_id} was changed concurrently; read it again") from exc
    return area


def _edit_area(session: Session, area: LeadArea, body: AreaPatch, caller: Caller) -> bool:
    """Apply the fields given; True when anything changed."""
    given = body.model_fields_set - {"version"}
    changed = False
    if "org_unit" in given and body.org_unit is not None and body.org_unit != area.org_unit:
        _check_unit(session, body.org_unit, caller)
        area.org_unit, changed = body.org_unit, True
    if "name" in given and body.name is not None and body.name != area.name:
        area.name, changed = body.name, True
    if "kind" in given and body.kind is not None and body.kind.value != area.kind:
        area.kind, changed = body.kind.value, True
    if "sub_areas" in given and body.sub_areas is not None:
        changed = _replace_sub_areas(session, area, body.sub_areas, caller) or changed
    return changed


def _replace_sub_areas(
    session: Session, area: LeadArea, subs: Sequence[SubAreaIn], caller: Caller
) -> bool:
    """Make the area's streets and estates ``subs``; True when anything changed."""
    current = {s.name: s for s in _sub_areas(session, [area.id]).get(area.id, [])}
    _check_sub_areas(session, subs, caller, {name: s.staff_id for name, s in current.items()})
    wanted = {s.name: s for s in subs}
    removed = sorted(set(current) - set(wanted))
    if removed:
        in_use = session.scalars(
            select(Lead.sub_area)
            .where(Lead.area_id == area.id, Lead.sub_area.in_(removed))
            .distinct()
            .order_by(Lead.sub_area)
        ).all()
        if in_use:
            raise Conflict(
                "target-list entries name these streets or estates; they stay",
                in_use=list(in_use),
            )
    for name in removed:
        session.delete(current[name])
    changed = bool(removed)
    for name, sub in wanted.items():
        existing = current.get(name)
        if existing is None:
            session.add(
                LeadSubArea(area_id=area.id, name=name, kind=sub.kind.value, staff_id=sub.staff_id)
            )
            changed = True
        elif (existing.kind, existing.staff_id) != (sub.kind.value, sub.staff_id):
            existing.kind, existing.staff_id = sub.kind.value, sub.staff_id
            changed = True
    return changed


def _sub_areas(session: Session, area_ids: Iterable[str]) -> dict[str, list[LeadSubArea]]:
    out: dict[str, list[LeadSubArea]] = {}
    ids = list(set(area_ids))
    if ids:
        query = select(LeadSubArea).where(LeadSubArea.area_id.in_(ids)).order_by(LeadSubArea.id)
        for sub in session.scalars(query):
            out.setdefault(sub.area_id, []).append(sub)
    return out


def area_out(area: LeadArea, subs: Sequence[LeadSubArea]) -> dict[str, Any]:
    return {
        "id": area.id,
        "name": area.name,
        "kind": area.kind,
        "org_unit": area.org_unit,
        "sub_areas": [SubAreaOut.model_validate(s) for s in subs],
        "version": area.version,
        "created_at": area.created_at,
        "created_by": area.created_by,
        "updated_at": area.updated_at,
        "updated_by": area.updated_by,
    }


def load_area(session: Session, area_id: str) -> dict[str, Any]:
    area = session.get(LeadArea, area_id)
    if area is None:
        raise NotFound(f"no area {area_id}")
    return area_out(area, _sub_areas(session, [area.id]).get(area.id, []))


def list_areas(
    session: Session, under: str | None, kind: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Areas (every staff member reads them, as the org tree), by contracted unit and name."""
    query = select(LeadArea)
    if under:
        query = query.where(_subtree(LeadArea.org_unit, under))
    if kind:
        query = query.where(LeadArea.kind == kind)
    total = count_rows(session, query)
    rows = list(
        session.scalars(
            query.order_by(LeadArea.org_unit, LeadArea.name, LeadArea.id)
            .limit(limit)
            .offset(offset)
        )
    )
    subs = _sub_areas(session, [a.id for a in rows])
    return [area_out(a, subs.get(a.id, [])) for a in rows], int(total)


# -- entries ------------------------------------------------------------------------------------
def create_lead(
    session: Session,
    body: LeadIn,
    caller: Caller,
    *,
    source: str | None = None,
    source_ref: str | None = None,
) -> Lead:
    """A collected entry, by staff who hold a book, heads or administrators; ``source`` and
    ``source_ref`` name where an entry another service identified came from."""
    if not caller.has_role(ROLE_ADMIN, *access.MANAGERS):
        _book_staff(session, caller)
    area = session.get(LeadArea, body.area_id)
    if area is None:
        raise ValidationFailed(
            f"no area {body.area_id}", errors=[{"field": "area_id", "reason": "unknown area"}]
        )
    if body.sub_area is not None:
        names = {s.name for s in _sub_areas(session, [area.id]).get(area.id, [])}
        if body.sub_area not in names:
            raise ValidationFailed(
                f"area {area.name} has no street or estate {body.sub_area}",
                errors=[{"field": "sub_area", "reason": "not a street or estate of the area"}],
            )
    now = utcnow()
    lead = Lead(
        id=str(uuid.uuid4()),
        name=body.name,
        kind=body.kind.value,
        sub_market=body.sub_market,
        industry=body.industry,
        area_id=area.id,
        sub_area=body.sub_area,
        org_unit=area.org_unit,
        area_kind=area.kind,
        business_line=line_for(area.kind, body.kind.value),
        current_bank=body.current_bank,
        contact=body.contact,
        info_status=body.info_status.value,
        willing_to_borrow=body.willing_to_borrow,
        notes=body.notes,
        source=source,
        source_ref=source_ref,
        stage=Stage.collected.value,
        furthest=Stage.collected.value,
        created_at=now,
        created_by=caller.subject,
        updated_at=now,
    )
    session.add(lead)
    session.add(_change(lead, None, Stage.collected.value, None, caller.subject))
    session.commit()
    return lead


def _change(lead: Lead, old: str | None, new: str, note: str | None, actor: str) -> LeadStageChange:
    return LeadStageChange(
        lead_id=lead.id,
        from_stage=old,
        to_stage=new,
        note=note,
        changed_at=utcnow(),
        changed_by=actor,
    )


def _move(
    session: Session,
    recorder: EventRecorder,
    lead: Lead,
    new: str,
    note: str | None,
    actor: str,
) -> None:
    """Move the entry to ``new``, kept in its history and announced as ``lead.stage_changed``."""
    old = lead.stage
    session.add(_change(lead, old, new, note, actor))
    lead.stage = new
    if new in RANK and RANK[new] > RANK[lead.furthest]:
        lead.furthest = new
    lead.updated_at = utcnow()
    recorder.record(
        session,
        events.LEAD_STAGE_CHANGED,
        {
            "lead_id": lead.id,
            "from_stage": old,
            "to_stage": new,
            "furthest": lead.furthest,
            "marketer_id": lead.marketer_id,
            "business_line": lead.business_line,
            "org_unit": lead.org_unit,
            "changed_at": lead.updated_at.isoformat(),
            "changed_by": actor,
        },
        key=lead.id,
        actor=actor,
    )


def _announce_distribution(
    session: Session, recorder: EventRecorder, lead: Lead, previous: str | None, actor: str
) -> None:
    """``lead.distributed``: the entry's marketer now, and why."""
    assert lead.marketer_id is not None and lead.distributed_at is not None
    recorder.record(
        session,
        events.LEAD_DISTRIBUTED,
        {
            "lead_id": lead.id,
            "name": lead.name,
            "kind": lead.kind,
            "business_line": lead.business_line,
            "org_unit": lead.org_unit,
            "area_id": lead.area_id,
            "marketer_id": lead.marketer_id,
            "previous_marketer_id": previous,
            "basis": lead.distribution_basis,
            "distributed_at": lead.distributed_at.isoformat(),
            "distributed_by": actor,
        },
        key=lead.id,
        actor=actor,
    )


def _own(lead: Lead, caller: Caller) -> bool:
    return caller.subject in (lead.marketer_id, lead.created_by, lead.claimed_by)


def _may_bid_on(lead: Lead, caller: Caller) -> bool:
    return lead.bidding == _OPEN and lead.bid_scope is not None and caller.within(lead.bid_scope)


def _visible(lead: Lead, caller: Caller) -> bool:
    return access.may_read(caller, lead.org_unit) or _own(lead, caller) or _may_bid_on(lead, caller)


def _lead(session: Session, lead_id: str, caller: Caller, *, lock: bool = False) -> Lead:
    query = select(Lead).where(Lead.id == lead_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    lead = session.scalars(query).one_or_none()
    if lead is None or not _visible(lead, caller):
        raise NotFound(f"no target-list entry {lead_id}")
    return lead


def _check_manager(lead: Lead, caller: Caller, what: str) -> None:
    if not access.may_manage(caller, lead.org_unit):
        raise Forbidden(f"you may not {what} entries of {lead.org_unit}")


def _check_open(lead: Lead) -> None:
    if lead.stage in FINAL:
        raise Conflict(f"the entry is {lead.stage}; it is closed", stage=lead.stage)


def claim(session: Session, lead_id: str, body: NoteIn, caller: Caller) -> Lead:
    """A priority claim 优先领认 on a collected entry, by active book-holding staff of the
    contracting unit's neighbourhood (the subtree of its parent unit)."""
    staff = _book_staff(session, caller)
    lead = session.scalars(select(Lead).where(Lead.id == lead_id).with_for_update()).one_or_none()
    if lead is None:
        raise NotFound(f"no target-list entry {lead_id}")
    units = ancestors(lead.org_unit)
    neighbourhood = units[1] if len(units) > 1 else units[0]
    if not (staff.org_unit == neighbourhood or staff.org_unit.startswith(neighbourhood + "/")):
        if not _visible(lead, caller):
            raise NotFound(f"no target-list entry {lead_id}")
        raise Forbidden(f"only staff of {neighbourhood} claim entries of {lead.org_unit}")
    if lead.stage != Stage.collected.value:
        raise Conflict(f"the entry is {lead.stage}; only collected entries are claimed")
    if lead.claimed_by is not None:
        raise Conflict(
            f"the entry is claimed by {lead.claimed_by} already", claimed_by=lead.claimed_by
        )
    lead.claimed_by = staff.id
    lead.updated_at = utcnow()
    session.add(_change(lead, lead.stage, lead.stage, body.note or "claimed", staff.id))
    session.commit()
    return lead


@dataclass(frozen=True, slots=True)
class Choice:
    staff_id: str
    basis: str  # claim, sub_area, named, industry, load
    detail: str


def _active(session: Session, staff_id: str | None) -> Staff | None:
    if staff_id is None:
        return None
    member = session.get(Staff, staff_id)
    if member is None or member.status != "active":
        return None
    return member


def open_entries(session: Session, staff_ids: list[str]) -> dict[str, int]:
    if not staff_ids:
        return {}
    rows = session.execute(
        select(Lead.marketer_id, func.count())
        .where(Lead.marketer_id.in_(staff_ids), Lead.stage.not_in(FINAL))
        .group_by(Lead.marketer_id)
    ).all()
    return {str(staff_id): int(count) for staff_id, count in rows}


def _same_industry(session: Session, staff_ids: list[str], lead: Lead) -> dict[str, int]:
    if not staff_ids or not lead.industry:
        return {}
    rows = session.execute(
        select(Lead.marketer_id, func.count())
        .where(
            Lead.marketer_id.in_(staff_ids),
            Lead.industry == lead.industry,
            Lead.stage != Stage.lost.value,
            Lead.id != lead.id,
        )
        .group_by(Lead.marketer_id)
    ).all()
    return {str(staff_id): int(count) for staff_id, count in rows}


def choose(session: Session, lead: Lead) -> Choice:
    """The marketer the rules give ``lead`` (see the module's docstring); 409 when nobody."""
    claimant = _active(session, lead.claimed_by)
    if claimant is not None:
        return Choice(claimant.id, "claim", f"priority claim by {claimant.id}")
    if lead.sub_area is not None:
        sub = session.scalars(
            select(LeadSubArea).where(
                LeadSubArea.area_id == lead.area_id, LeadSubArea.name == lead.sub_area
            )
        ).one_or_none()
        contracted = _active(session, sub.staff_id if sub is not None else None)
        if contracted is not None:
            return Choice(contracted.id, "sub_area", f"{lead.sub_area} is contracted to them")
    top = ancestors(lead.org_unit)[-1]
    members = [
        s
        for s in session.scalars(
            select(Staff).where(
                Staff.status == "active",
                Staff.business_line == lead.business_line,
                _subtree(Staff.org_unit, top),
            )
        )
        if CUSTOMER_MANAGER in s.roles
    ]
    ids = [s.id for s in members]
    held, books = open_entries(session, ids), service.book_sizes(session, ids)
    industry = _same_industry(session, ids, lead)
    for unit in ancestors(lead.org_unit):  # nearest first: the unit, then its parent's subtree
        near = [s for s in members if s.org_unit == unit or s.org_unit.startswith(unit + "/")]
        if not near:
            continue
        best = min(
            near,
            key=lambda s: (
                0 if industry.get(s.id) else 1,
                held.get(s.id, 0) + books.get(s.id, 0),
                s.id,
            ),
        )
        load = held.get(best.id, 0) + books.get(best.id, 0)
        if industry.get(best.id):
            return Choice(best.id, "industry", f"nearest in {unit}, holds {lead.industry} entries")
        return Choice(best.id, "load", f"nearest in {unit}, least loaded ({load})")
    raise Conflict(
        f"no active customer manager of the {lead.business_line} line in {lead.org_unit} or above"
    )


def distribute(
    session: Session, recorder: EventRecorder, lead_id: str, body: DistributeIn, caller: Caller
) -> Lead:
    """Give a collected entry its marketer (administrators, heads of the area's unit)."""
    lead = _lead(session, lead_id, caller, lock=True)
    _check_manager(lead, caller, "distribute")
    if lead.stage != Stage.collected.value:
        raise Conflict(f"the entry is {lead.stage}; only collected entries are distributed")
    if body.staff_id is not None:
        member = _active(session, body.staff_id)
        if (
            member is None
            or not access.BOOK_ROLES.intersection(member.roles)
            or not access.may_manage(caller, member.org_unit)
        ):
            raise ValidationFailed(
                f"no active staff member {body.staff_id} of your subtree who holds a book",
                errors=[{"field": "staff_id", "reason": "not an eligible marketer"}],
            )
        choice = Choice(member.id, "named", f"named by {caller.subject}")
    else:
        choice = choose(session, lead)
    lead.marketer_id, lead.distribution_basis = choice.staff_id, choice.basis
    lead.distributed_at, lead.distributed_by = utcnow(), caller.subject
    note = f"{choice.detail}; {body.note}" if body.note else choice.detail
    _move(session, recorder, lead, Stage.distributed.value, note[:500], caller.subject)
    _announce_distribution(session, recorder, lead, None, caller.subject)
    session.commit()
    return lead


def move(
    session: Session, recorder: EventRecorder, lead_id: str, body: StageIn, caller: Caller
) -> Lead:
    """Move an entry along the funnel (its marketer, administrators, heads of its unit). A win
    names the customer the entry became: see :func:`_win`."""
    lead = _lead(session, lead_id, caller, lock=True)
    if lead.marketer_id != caller.subject:
        _check_manager(lead, caller, "move")
    new = body.stage.value
    if new == Stage.distributed.value and lead.stage == Stage.collected.value:
        raise Conflict(f"distribute the entry with POST {LEADS_PATH}/{lead.id}/distribute")
    allowed = TRANSITIONS.get(lead.stage, frozenset())
    if new not in allowed:
        raise Conflict(
            f"an entry {lead.stage} cannot become {new}",
            stage=lead.stage,
            allowed=sorted(allowed),
        )
    if new == Stage.target.value and not (body.plan or lead.plan):
        raise ValidationFailed(
            "a target needs its marketing plan",
            errors=[{"field": "plan", "reason": "required for target"}],
        )
    won = new == Stage.won.value
    if won:
        _check_customer(session, body.customer_id)
    elif body.customer_id is not None:
        raise ValidationFailed(
            "a customer is named only when the entry is won",
            errors=[{"field": "customer_id", "reason": "only with stage won"}],
        )
    if body.plan is not None:
        lead.plan = body.plan
    if new in FINAL:
        lead.result_note = body.note
        if lead.bidding == _AWARDED and won:
            lead.reward = lead.bid_reward
        elif lead.bidding == _OPEN:
            lead.bidding = _CLOSED
            for bid in _bids(session, lead.id):
                bid.status = _NOT_AWARDED
    _move(session, recorder, lead, new, body.note, caller.subject)
    if won:
        assert body.customer_id is not None
        _win(session, recorder, lead, body.customer_id, caller.subject)  # commits
    else:
        session.commit()
    return lead


def _check_customer(session: Session, customer_id: str | None) -> None:
    """A won entry names the customer it became, one this service knows (422 otherwise)."""
    if customer_id is None:
        raise ValidationFailed(
            "a won entry names the customer it became",
            errors=[{"field": "customer_id", "reason": "required for won"}],
        )
    if service.customer_unit(session, customer_id) is None:
        raise ValidationFailed(
            f"no customer {customer_id} is known to the assignment service (yet)",
            errors=[{"field": "customer_id", "reason": "unknown customer"}],
        )


def _win(
    session: Session, recorder: EventRecorder, lead: Lead, customer_id: str, actor: str
) -> None:
    """Link the won entry to its customer and commit. Who markets, maintains 谁营销谁维护: a
    customer without an owner becomes the marketer's (``ownership.assigned``, reason
    ``marketed``; the owner rules apply: 422 when the marketer cannot take it); a customer with
    an owner keeps it, and the entry records who it is."""
    marketer = lead.marketer_id
    assert marketer is not None  # a target was distributed
    owner = service.current_owner(session, customer_id, lock=True)
    lead.customer_id = customer_id
    lead.owner_assigned = owner is None
    lead.customer_owner_id = owner.staff_id if owner is not None else marketer
    recorder.record(
        session,
        events.LEAD_WON,
        {
            "lead_id": lead.id,
            "customer_id": customer_id,
            "marketer_id": marketer,
            "owner_id": lead.customer_owner_id,
            "owner_assigned": lead.owner_assigned,
            "business_line": lead.business_line,
            "org_unit": lead.org_unit,
            "reward": f"{lead.reward:.2f}" if lead.reward is not None else None,
            "won_at": lead.updated_at.isoformat(),
            "decided_by": actor,
        },
        key=lead.id,
        actor=actor,
    )
    if owner is not None:
        session.commit()
        return
    assignment = AssignmentIn(
        customer_id=customer_id,
        mode=AssignmentMode.assign,
        staff_id=marketer,
        reason=OwnershipReason.marketed,
        note=f"won target-list entry {lead.id}",
    )
    try:
        service.change_owner(session, recorder, assignment, actor)  # commits the entry with it
    except ValidationFailed as exc:
        raise ValidationFailed(
            f"the marketer {marketer} cannot become the owner of customer {customer_id}: "
            f"{exc.detail}",
            errors=[{"field": "customer_id", "reason": exc.detail}],
        ) from exc


# -- editing ------------------------------------------------------------------------------------
_EDITABLE = (
    "name",
    "sub_market",
    "industry",
    "current_bank",
    "contact",
    "info_status",
    "willing_to_borrow",
    "notes",
)
_REQUIRED = frozenset({"name", "info_status", "kind", "area_id"})


def update_lead(
    session: Session, lead_id: str, body: LeadPatch, caller: Caller, if_match: str | None
) -> Lead:
    """Change an open entry (its collector or marketer, administrators, heads of its unit),
    naming the version read. The kind and the area decide the line, so they change only while
    the entry is collected (409 later); the line, area kind and unit follow them."""
    lead = _lead(session, lead_id, caller, lock=True)
    if caller.subject not in (lead.created_by, lead.marketer_id):
        _check_manager(lead, caller, "change")
    _check_open(lead)
    check_version(f"target-list entry {lead.id}", lead.version, body.version, if_match)
    given = {
        name
        for name in body.model_fields_set - {"version"}
        if getattr(body, name) is not None or name not in _REQUIRED
    }
    if {"kind", "area_id"} & given and lead.stage != Stage.collected.value:
        raise Conflict(
            f"the entry is {lead.stage}; its kind and area change only while it is collected",
            stage=lead.stage,
        )
    before = {c.key: getattr(lead, c.key) for c in Lead.__table__.columns}
    with session.no_autoflush:  # one UPDATE of the entry: one new version
        _edit_lead(session, lead, body, given)
    if all(getattr(lead, key) == value for key, value in before.items()):
        return lead  # the same values again are no change: no new version
    lead.updated_at = utcnow()
    try:
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(
            f"target-list entry {lead_id} was changed concurrently; read it again"
        ) from exc
    return lead


def _edit_lead(session: Session, lead: Lead, body: LeadPatch, given: set[str]) -> None:
    """Apply the fields ``given``: the routing (kind, area) first, then the rest."""
    area = session.get(LeadArea, body.area_id if "area_id" in given else lead.area_id)
    if area is None:
        raise ValidationFailed(
            f"no area {body.area_id}", errors=[{"field": "area_id", "reason": "unknown area"}]
        )
    routing = bool({"kind", "area_id"} & given)
    if routing:
        kind = body.kind.value if body.kind is not None else lead.kind
        lead.kind, lead.area_id, lead.area_kind = kind, area.id, area.kind
        lead.org_unit, lead.business_line = area.org_unit, line_for(area.kind, kind)
    for name in _EDITABLE:
        if name in given:
            value = getattr(body, name)
            setattr(lead, name, value.value if isinstance(value, InfoStatus) else value)
    if "sub_area" in given:
        lead.sub_area = body.sub_area
    if lead.sub_area is not None and (routing or "sub_area" in given):
        names = {s.name for s in _sub_areas(session, [area.id]).get(area.id, [])}
        if lead.sub_area not in names:
            raise ValidationFailed(
                f"area {area.name} has no street or estate {lead.sub_area}",
                errors=[{"field": "sub_area", "reason": "not a street or estate of the area"}],
            )


# -- bidding ------------------------------------------------------------------------------------
def _bids(session: Session, lead_id: str) -> list[LeadBid]:
    query = select(LeadBid).where(LeadBid.lead_id == lead_id).order_by(LeadBid.id)
    return list(session.scalars(query))


def post(session: Session, lead_id: str, body: PostIn, caller: Caller) -> Lead:
    """Post a key target for bidding by staff of the poster's subtree, with its reward."""
    lead = _lead(session, lead_id, caller, lock=True)
    _check_manager(lead, caller, "post")
    _check_open(lead)
    if lead.bidding is not None:
        raise Conflict(f"the entry was posted for bidding already ({lead.bidding})")
    lead.bidding, lead.bid_reward = _OPEN, body.reward
    lead.bid_scope = caller.org_unit.rstrip("/") or "/"
    lead.updated_at = utcnow()
    session.add(
        _change(lead, lead.stage, lead.stage, body.note or "posted for bidding", caller.subject)
    )
    session.commit()
    return lead


def bid(session: Session, lead_id: str, body: NoteIn, caller: Caller) -> LeadBid:
    """Bid for a posted key target (active staff who hold a book, in the posting's scope)."""
    staff = _book_staff(session, caller)
    lead = _lead(session, lead_id, caller)
    if lead.bidding != _OPEN:
        raise Conflict("the entry is not open for bidding", bidding=lead.bidding)
    if lead.bid_scope is None or not caller.within(lead.bid_scope):
        raise Forbidden(f"bidding on this entry is open to staff of {lead.bid_scope}")
    entry = LeadBid(
        lead_id=lead.id, staff_id=staff.id, note=body.note, status=_PENDING, created_at=utcnow()
    )
    session.add(entry)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("you bid on this entry already") from exc
    return entry


def award(
    session: Session, recorder: EventRecorder, lead_id: str, body: AwardIn, caller: Caller
) -> Lead:
    """Award a posted entry to one bidder, who becomes its marketer."""
    lead = _lead(session, lead_id, caller, lock=True)
    _check_manager(lead, caller, "award")
    _check_open(lead)
    if lead.bidding != _OPEN:
        raise Conflict("the entry is not open for bidding", bidding=lead.bidding)
    bids = _bids(session, lead.id)
    winner = next((b for b in bids if b.staff_id == body.staff_id), None)
    if winner is None or _active(session, body.staff_id) is None:
        raise ValidationFailed(
            f"{body.staff_id} has not bid on this entry or is not active",
            errors=[{"field": "staff_id", "reason": "not an active bidder"}],
        )
    for entry in bids:
        entry.status = _WON_BID if entry is winner else _NOT_AWARDED
    previous = lead.marketer_id
    lead.bidding, lead.marketer_id, lead.distribution_basis = _AWARDED, winner.staff_id, "bid"
    lead.distributed_at, lead.distributed_by = utcnow(), caller.subject
    note = body.note or f"awarded to {winner.staff_id}"
    if lead.stage == Stage.collected.value:
        _move(session, recorder, lead, Stage.distributed.value, note, caller.subject)
    else:
        session.add(_change(lead, lead.stage, lead.stage, note, caller.subject))
        lead.updated_at = utcnow()
    _announce_distribution(session, recorder, lead, previous, caller.subject)
    session.commit()
    return lead


# -- reading ------------------------------------------------------------------------------------
def _scope(caller: Caller) -> ColumnElement[bool] | None:
    """The entries the caller reads: all (administrators), their subtree's (heads, auditors,
    credit approvers), their own (marketer, collector, claimant) and those open to their bids."""
    if caller.has_role(ROLE_ADMIN):
        return None
    me = caller.subject
    bid_scopes = [*ancestors(caller.org_unit), "/"] if caller.org_unit.strip("/") else ["/"]
    scope = or_(
        Lead.marketer_id == me,
        Lead.created_by == me,
        Lead.claimed_by == me,
        (Lead.bidding == _OPEN) & Lead.bid_scope.in_(bid_scopes),
    )
    if caller.has_role(*access.READERS):
        scope = scope | _subtree(Lead.org_unit, caller.org_unit)
    return scope


def list_leads(
    session: Session,
    caller: Caller,
    *,
    stage: str | None = None,
    line: str | None = None,
    area_id: str | None = None,
    marketer_id: str | None = None,
    bidding: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> tuple[list[Lead], int]:
    query = select(Lead)
    scope = _scope(caller)
    if scope is not None:
        query = query.where(scope)
    for column, value in (
        (Lead.stage, stage),
        (Lead.business_line, line),
        (Lead.area_id, area_id),
        (Lead.marketer_id, marketer_id),
        (Lead.bidding, bidding),
    ):
        if value is not None:
            query = query.where(column == value)
    total = count_rows(session, query)
    query = query.order_by(Lead.created_at, Lead.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query)), int(total)


def rows_out(session: Session, leads: Sequence[Lead]) -> list[LeadOut]:
    """The entries with their area's name and the marketer's line (附件4 columns)."""
    area_ids = {x.area_id for x in leads}
    marketers = {x.marketer_id for x in leads if x.marketer_id}
    names = dict(
        session.execute(select(LeadArea.id, LeadArea.name).where(LeadArea.id.in_(area_ids))).all()
        if area_ids
        else []
    )
    lines = dict(
        session.execute(select(Staff.id, Staff.business_line).where(Staff.id.in_(marketers))).all()
        if marketers
        else []
    )
    return [
        LeadOut.model_validate(
            {
                **{c.key: getattr(x, c.key) for c in Lead.__table__.columns},
                "area_name": names.get(x.area_id, ""),
                "line_department": LINE_DEPARTMENT.get(x.business_line, x.business_line),
                "other_bank": bool(x.current_bank),
                "marketer_line": lines.get(x.marketer_id) if x.marketer_id else None,
            }
        )
        for x in leads
    ]


def detail(session: Session, lead_id: str, caller: Caller) -> LeadDetail:
    lead = _lead(session, lead_id, caller)
    history = session.scalars(
        select(LeadStageChange)
        .where(LeadStageChange.lead_id == lead.id)
        .order_by(LeadStageChange.id)
    )
    return LeadDetail(
        **rows_out(session, [lead])[0].model_dump(),
        bids=[BidOut.model_validate(b) for b in _bids(session, lead.id)],
        history=[StageChangeOut.model_validate(h) for h in history],
    )


CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "编号"),
    ("line_department", "责任条线部门"),
    ("area", "片区"),
    ("area_kind", "片区类型"),
    ("contracting_unit", "包干单位"),
    ("sub_area", "街段/小区"),
    ("name", "目标客户名称"),
    ("kind", "客户类型"),
    ("sub_market", "细分市场"),
    ("industry", "行业"),
    ("current_bank", "现开户行"),
    ("other_bank", "他行客户"),
    ("marketer", "营销责任人"),
    ("marketer_line", "所属条线"),
    ("info_status", "信息采集情况"),
    ("willing_to_borrow", "贷款意向"),
    ("stage", "营销进度"),
    ("plan", "营销措施"),
    ("result", "营销结果"),
    ("reward", "奖励"),
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def to_csv(rows: Sequence[LeadOut]) -> str:
    """The rows as CSV for Excel: a byte-order mark, English headers with the Chinese term."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f"{name} ({term})" for name, term in CSV_COLUMNS])
    for r in rows:
        values = {
            "id": r.id,
            "line_department": r.line_department,
            "area": r.area_name,
            "area_kind": r.area_kind,
            "contracting_unit": r.org_unit,
            "sub_area": r.sub_area,
            "name": r.name,
            "kind": r.kind,
            "sub_market": r.sub_market,
            "industry": r.industry,
            "current_bank": r.current_bank,
            "other_bank": r.other_bank,
            "marketer": r.marketer_id,
            "marketer_line": r.marketer_line,
            "info_status": r.info_status,
            "willing_to_borrow": r.willing_to_borrow,
            "stage": r.stage,
            "plan": r.plan,
            "result": r.result_note,
            "reward": r.reward,
        }
        writer.writerow([_cell(values[name]) for name, _ in CSV_COLUMNS])
    return out.getvalue()


# -- the funnel ---------------------------------------------------------------------------------
def _funnel_line(line: str, counts: dict[tuple[str, str], int]) -> FunnelLine:
    at_stage = {s.value: 0 for s in Stage}
    reached = {s.value: 0 for s in FUNNEL}
    for (stage, furthest), n in counts.items():
        at_stage[stage] = at_stage.get(stage, 0) + n
        for s in FUNNEL:
            if RANK.get(furthest, 0) >= RANK[s.value]:
                reached[s.value] += n
    return FunnelLine(
        business_line=line, total=sum(counts.values()), at_stage=at_stage, reached=reached
    )


def funnel(session: Session, caller: Caller, org_unit: str | None) -> FunnelOut:
    """Entries per stage and reached-at-least per business line, in ``org_unit`` (the caller's
    unit by default) and within what the caller reads."""
    unit = (org_unit or ("/" if caller.has_role(ROLE_ADMIN) else caller.org_unit)).rstrip("/")
    if unit and not caller.has_role(ROLE_ADMIN) and not caller.within(unit):
        raise Forbidden(f"{unit} is outside your org subtree")
    query = select(Lead.business_line, Lead.stage, Lead.furthest, func.count())
    if not caller.has_role(ROLE_ADMIN):
        query = query.where(_scope_owned(caller))
    if unit:
        query = query.where(_subtree(Lead.org_unit, unit))
    rows = session.execute(query.group_by(Lead.business_line, Lead.stage, Lead.furthest)).all()
    per_line: dict[str, dict[tuple[str, str], int]] = {line.value: {} for line in Line}
    overall: dict[tuple[str, str], int] = {}
    for line, stage, furthest, n in rows:
        per_line.setdefault(line, {})[(stage, furthest)] = int(n)
        overall[(stage, furthest)] = overall.get((stage, furthest), 0) + int(n)
    return FunnelOut(
        org_unit=unit or "/",
        lines=[_funnel_line(line, counts) for line, counts in sorted(per_line.items())],
        overall=_funnel_line("all", overall),
    )


def _scope_owned(caller: Caller) -> ColumnElement[bool]:
    """The funnel counts the entries of the caller's subtree (readers) or their own."""
    me = caller.subject
    scope = or_(Lead.marketer_id == me, Lead.created_by == me, Lead.claimed_by == me)
    if caller.has_role(*access.READERS):
        scope = scope | _subtree(Lead.org_unit, caller.org_unit)
    return scope
