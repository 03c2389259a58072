"""Rating campaigns 集中评级授信: score and propose limits for a scope of customers in
batches, in the seed's three phases, resumable after a restart.

A campaign covers the customers of an org subtree whose kind it names (every kind but farm
households by default: they have their own programme) through three phases — information
collection 信息采集 (8/20 to 8/31), entry and rating 信息录入及信用等级评定 (9/1 to 9/15),
limits and approval 综合额度授信 (9/16 to 9/30) — and counts its coverage against the goal of
100%.

Who is in scope: stock customers 存量客户 (in a relationship: active or dormant) and target
customers 目标客户 willing to borrow. The copy of customers does not know who is willing: a
target customer counts once it has an assessment in the campaign — listed by staff
(:func:`add_targets`, which assesses it at once) or assessed by its manager with the campaign.

Started, the campaign's batch walks its stock customers in customer-id order and gives each an
automatic assessment (trigger ``campaign``, status ``assessed``, or ``incomplete`` while inputs
are missing): the bank's figures plus the inputs of the customer's latest assessment, scored by
the scorecard in force. For a complete one it also calculates the limit the formula gives — an
indicative figure 参考授信额度 summed per org unit and business line in the campaign's progress:
a limit is proposed only on a confirmed grade (staff confirm, then propose, in the third phase),
and the proposal calculates it again from the same formula. Each chunk's assessments, their
``rating.assessed`` events, the progress and the campaign's cursor commit in one transaction:
a crash loses the chunk in flight whole, and the next run resumes after the cursor — nobody is
rated twice, nobody is skipped.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.clock import BUSINESS_TZ, business_today
from crmkit.db import count_rows, in_subtree, one_of, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.heap import gc_paused
from crmkit.outbox import EventRecorder, insert_rows
from crmkit.runtime import ServiceRuntime
from crmkit.schemas import CustomerKind
from services.rating import access, ratings
from services.rating.events import RATING_ASSESSED
from services.rating.limits import (
    LimitFormula,
    LimitInputError,
    LimitPolicyError,
    LimitResult,
    formula_for,
)
from services.rating.models import (
    Assessment,
    Base,
    CreditLimit,
    CustomerFigures,
    customer_refs,
)
from services.rating.models_campaigns import RatingCampaign, RatingCampaignProgress
from services.rating.schemas_campaigns import (
    PHASE_NAMES,
    CampaignIn,
    CampaignSegment,
    CampaignStatus,
    Coverage,
    CoverageRow,
    Phase,
    PhaseDates,
    PhaseOut,
    PhasesIn,
    TargetOut,
    TargetsIn,
)
from services.rating.scoring import (
    Scorecard,
    ScorecardError,
    ScoreInputError,
    ScoreResult,
    scorecard_for,
)
from services.rating.scoring import system_inputs as figures_inputs

log = logging.getLogger(__name__)

CAMPAIGNS_PATH = "/api/v1/rating-campaigns"
SYSTEM = "system"
TRIGGER = "campaign"
DEFAULT_KINDS: tuple[str, ...] = tuple(
    k.value for k in CustomerKind if k is not CustomerKind.farm_household
)
# 存量客户: customers in a relationship with the bank. Lost and closed ones are not rated.
STOCK_STATUSES = ("active", "dormant")
TARGET_STATUS = "target"
# Roles that run campaigns for their subtree (with administrators).
CAMPAIGN_ROLES = (access.ROLE_BRANCH_PRESIDENT, access.ROLE_HEAD_OFFICE_LEADER)
# Limit statuses that mean the limit was approved (later expired or replaced by a newer one).
APPROVED_LIMITS = ("approved", "expired", "superseded")
# The limit formulas' existing-debt input: this bank's loan balance when nothing was entered.
EXISTING_DEBT = "existing_debt"

ASSESSMENTS = Base.metadata.tables[Assessment.__tablename__]
PROGRESS = Base.metadata.tables[RatingCampaignProgress.__tablename__]
FIGURES = Base.metadata.tables[CustomerFigures.__tablename__]
LIMITS = Base.metadata.tables[CreditLimit.__tablename__]
_HUNDRED = Decimal(100)
_PLACES = Decimal("0.01")
_ZERO = Decimal("0.00")
# The advisory lock creations of campaigns take turns on (a fixed 64-bit key).
_CREATION_LOCK = int.from_bytes(
    hashlib.sha256(b"rating:campaign-creation").digest()[:8], "big", signed=True
)


# -- phases -------------------------------------------------------------------------------------
def default_phases(year: int) -> PhasesIn:
    """The seed's dates: 8/20 to 8/31 collection, 9/1 to 9/15 entry and rating, 9/16 to 9/30
    limits and approval (the seed's "9/31" does not exist: September ends on the 30th)."""
    return PhasesIn(
        collection=PhaseDates(starts_on=date(year, 8, 20), ends_on=date(year, 8, 31)),
        entry=PhaseDates(starts_on=date(year, 9, 1), ends_on=date(year, 9, 15)),
        approval=PhaseDates(starts_on=date(year, 9, 16), ends_on=date(year, 9, 30)),
    )


def _dates(campaign: RatingCampaign) -> list[tuple[Phase, date, date]]:
    return [
        (Phase.collection, campaign.collection_from, campaign.collection_until),
        (Phase.entry, campaign.entry_from, campaign.entry_until),
        (Phase.approval, campaign.approval_from, campaign.approval_until),
    ]


def phases_of(campaign: RatingCampaign, day: date) -> list[PhaseOut]:
    """The three phases with their dates and where ``day`` stands in each."""
    out = []
    for phase, starts, ends in _dates(campaign):
        state = "upcoming" if day < starts else "ended" if day > ends else "current"
        out.append(
            PhaseOut(
                phase=phase, name=PHASE_NAMES[phase], starts_on=starts, ends_on=ends, state=state
            )
        )
    return out


def current_phase(campaign: RatingCampaign, day: date) -> Phase | None:
    """The phase ``day`` falls in; None before, between or after the phases."""
    for phase, starts, ends in _dates(campaign):
        if starts <= day <= ends:
            return phase
    return None


def window(campaign: RatingCampaign) -> tuple[datetime, datetime]:
    """The campaign's time span in UTC: from the first day of collection to the end of the last
    day of approval, business days (Asia/Shanghai)."""
    start = datetime.combine(campaign.collection_from, time(0), tzinfo=BUSINESS_TZ)
    end = datetime.combine(campaign.approval_until + timedelta(days=1), time(0), tzinfo=BUSINESS_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


# -- who may do what ----------------------------------------------------------------------------
def _within(path: str, scope: str) -> bool:
    scope = scope.rstrip("/")
    return not scope or path == scope or path.startswith(scope + "/")


def may_manage(caller: Caller, org_unit: str) -> bool:
    """Create and start campaigns of ``org_unit``: administrators, and branch presidents and
    head-office leaders of its subtree."""
    if caller.has_role(ROLE_ADMIN):
        return True
    return caller.has_role(*CAMPAIGN_ROLES) and caller.within(org_unit)


def may_read(caller: Caller, campaign: RatingCampaign) -> bool:
    """Read a campaign: administrators and auditors; staff above it (its unit lies in their
    subtree) and staff working in it (their unit lies in its subtree)."""
    if caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR):
        return True
    return caller.within(campaign.org_unit) or _within(caller.org_unit, campaign.org_unit)


def coverage_scope(caller: Caller, campaign: RatingCampaign) -> str:
    """The part of the campaign a caller's coverage covers: all of it for those above it, their
    own subtree for staff working in it."""
    if caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR) or caller.within(campaign.org_unit):
        return campaign.org_unit
    return caller.org_unit


# -- creating, starting, reading -----------------------------------------------------------------
def _overlapping(session: Session, year: int, org_unit: str, kinds: Sequence[str]) -> str | None:
    """The id of a campaign of the same year whose subtree meets ``org_unit``'s and whose kinds
    meet ``kinds``: a customer is rated in one campaign a year."""
    query = select(RatingCampaign.id, RatingCampaign.kinds).where(
        RatingCampaign.year == year,
        or_(
            RatingCampaign.org_unit.in_(_ancestors(org_unit)),
            in_subtree(RatingCampaign.org_unit, org_unit),
        ),
    )
    for campaign_id, their_kinds in session.execute(query):
        if set(their_kinds) & set(kinds):
            return str(campaign_id)
    return None


def _ancestors(org_unit: str) -> list[str]:
    """The unit and every unit above it."""
    parts = [p for p in org_unit.split("/") if p]
    return ["/" + "/".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _serialise_creation(session: Session) -> None:
    """On PostgreSQL, creations of campaigns take turns (a transaction-scoped advisory lock), so
    two overlapping campaigns created at once cannot both find no overlap. SQLite writes one
    transaction at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATION_LOCK})


def create(session: Session, body: CampaignIn, caller: Caller) -> RatingCampaign:
    """Create a campaign (``draft``) for the caller's subtree or a unit in it."""
    org_unit = (body.org_unit or caller.org_unit).rstrip("/") or "/"
    if not may_manage(caller, org_unit):
        raise Forbidden(
            f"only branch presidents and head-office leaders of {org_unit}'s subtree (or an"
            f" administrator) may run a rating campaign there"
        )
    kinds = [k.value for k in body.kinds] if body.kinds else list(DEFAULT_KINDS)
    _serialise_creation(session)
    existing = _overlapping(session, body.year, org_unit, kinds)
    if existing is not None:
        raise Conflict(
            f"campaign {existing} of {body.year} already covers customers of {org_unit} of these"
            " kinds: a customer is rated in one campaign a year",
            existing=f"{CAMPAIGNS_PATH}/{existing}",
        )
    phases = body.phases or default_phases(body.year)
    now = utcnow()
    campaign = RatingCampaign(
        id=str(uuid.uuid4()),
        name=body.name.strip(),
        year=body.year,
        org_unit=org_unit,
        kinds=kinds,
        segment=body.segment.value,
        collection_from=phases.collection.starts_on,
        collection_until=phases.collection.ends_on,
        entry_from=phases.entry.starts_on,
        entry_until=phases.entry.ends_on,
        approval_from=phases.approval.starts_on,
        approval_until=phases.approval.ends_on,
        status=CampaignStatus.draft.value,
        cursor=None,
        walked=0,
        graded=0,
        incomplete=0,
        skipped=0,
        created_by=caller.subject,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    session.commit()
    return campaign


def load(session: Session, campaign_id: str, caller: Caller) -> RatingCampaign:
    """A campaign the caller may read (404 otherwise, so ids are not probed)."""
    campaign = session.get(RatingCampaign, campaign_id)
    if campaign is None or not may_read(caller, campaign):
        raise NotFound(f"no rating campaign {campaign_id}")
    return campaign


def require_running(session: Session, campaign_id: str) -> RatingCampaign:
    """The running campaign staff name on an assessment or a proposal (422 otherwise: the
    reference is the request's fault)."""
    campaign = session.get(RatingCampaign, campaign_id)
    if campaign is None or campaign.status != "running":
        raise ValidationFailed(
            "The campaign named is not a running rating campaign.",
            errors=[{"field": "campaign_id", "reason": "no running campaign with this id"}],
        )
    return campaign


def start(session: Session, campaign_id: str, caller: Caller) -> RatingCampaign:
    """Start a draft campaign: its batch runs in the service's workers from now on. Starting a
    running or finished campaign changes nothing."""
    campaign = load(session, campaign_id, caller)
    if not may_manage(caller, campaign.org_unit):
        raise Forbidden(
            f"only branch presidents and head-office leaders of {campaign.org_unit}'s subtree"
            " (or an administrator) may start this campaign"
        )
    if campaign.status != CampaignStatus.draft.value:
        return campaign
    now = utcnow()
    campaign.status = CampaignStatus.running.value
    campaign.started_by = caller.subject
    campaign.started_at = now
    campaign.updated_at = now
    try:
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(f"campaign {campaign_id} was changed meanwhile; read it again") from exc
    return campaign


def list_campaigns(
    session: Session,
    caller: Caller,
    year: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[RatingCampaign], int]:
    """Campaigns the caller may read, newest year first."""
    query = select(RatingCampaign)
    if not caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR):
        query = query.where(
            or_(
                in_subtree(RatingCampaign.org_unit, caller.org_unit),
                RatingCampaign.org_unit.in_(_ancestors(caller.org_unit) or ["/"]),
            )
        )
    if year is not None:
        query = query.where(RatingCampaign.year == year)
    if status is not None:
        query = query.where(RatingCampaign.status == status)
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(
            RatingCampaign.year.desc(), RatingCampaign.created_at.desc(), RatingCampaign.id
        )
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total)


# -- the core: one customer ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rated:
    """One customer rated: the inputs scored, the result and, for a grade, the limit."""

    inputs: dict[str, object]
    result: ScoreResult
    limit: LimitResult | None


def entries_of(card: Scorecard, inputs: Mapping[str, Any] | None) -> dict[str, object]:
    """The inputs of a customer's latest assessment that ``card`` scores, as entries for the
    next one (for system factors the fresh figure wins, see ``Scorecard.inputs_from``)."""
    if not inputs:
        return {}
    codes = card.factor_codes
    return {code: inputs[code] for code in codes if inputs.get(code) not in (None, "")}


def last_inputs(session: Session, customer_id: str) -> dict[str, Any] | None:
    """The inputs of the customer's latest scored assessment (an imported grade has none)."""
    rows = session.execute(
        select(Assessment.scorecard_id, Assessment.inputs)
        .where(Assessment.customer_id == customer_id)
        .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
    )
    for scorecard_id, inputs in rows:
        if not scorecard_id.startswith(ratings.IMPORTED_PREFIX):
            return dict(inputs)
    return None


def usable_entries(
    card: Scorecard, system: Mapping[str, object], inputs: Mapping[str, Any] | None
) -> dict[str, object]:
    """The entries of an earlier assessment ``card`` can score (see :func:`score_inputs`)."""
    entered = entries_of(card, inputs)
    used, _ = score_inputs(card, system, entered)
    return {code: value for code, value in entered.items() if code in used}


def score_inputs(
    card: Scorecard, system: Mapping[str, object], entered: Mapping[str, object]
) -> tuple[dict[str, object], ScoreResult]:
    """Score the figures and entries; an entry the card in force cannot read (a choice it no
    longer offers) is left out and listed as missing, never guessed."""
    used = card.inputs_from(system, entered)
    while True:
        try:
            return used, card.score(used)
        except ScoreInputError as exc:
            del used[exc.code]


def rate(
    card: Scorecard,
    formula: LimitFormula | None,
    system: Mapping[str, object],
    entered: Mapping[str, object],
    loans: Decimal | None,
) -> Rated:
    """Score one customer and, when the grade is complete, calculate its indicative limit (the
    formula's existing debt: this bank's loan balance ``loans`` when nothing was entered). No
    formula in force, or an input it cannot use, gives no limit; the grade stands."""
    used, result = score_inputs(card, system, entered)
    if result.grade is None or formula is None:
        return Rated(used, result, None)
    limit_inputs: dict[str, object] = used
    if EXISTING_DEBT not in used and loans is not None:
        limit_inputs = {**used, EXISTING_DEBT: loans}
    try:
        return Rated(used, result, formula.calculate(result.grade, limit_inputs))
    except LimitInputError:
        return Rated(used, result, None)


def tools_for(kind: str, day: date) -> tuple[Scorecard, LimitFormula | None] | None:
    """The scorecard and limit formula in force for ``kind`` on ``day``: None without a
    scorecard (the batch skips its customers and counts them), no formula without one."""
    try:
        card = scorecard_for(kind, day)
    except ScorecardError:
        log.warning("no scorecard in force for a kind in scope", extra={"kind": kind})
        return None
    try:
        return card, formula_for(kind, day)
    except LimitPolicyError:
        return card, None


def _stored(value: object) -> object:
    """An input as kept in JSON: numbers as exact decimal strings (as ``ratings.assess``)."""
    if isinstance(value, Decimal | float) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        return str(value)
    return value


# -- the batch ----------------------------------------------------------------------------------
@dataclass(slots=True)
class _History:
    """What a chunk needs of a customer's earlier assessments."""

    inputs: dict[str, Any] | None = None  # of the latest scored one (not an imported grade)
    open_ids: list[str] | None = None
    in_campaign: bool = False


def _scope(campaign: RatingCampaign) -> ColumnElement[bool]:
    """The customers the batch walks: the campaign's stock customers (targets come by list)."""
    refs = customer_refs.c
    if campaign.segment == CampaignSegment.target.value:
        return false()
    return and_(
        in_subtree(refs.org_unit, campaign.org_unit),
        refs.kind.in_(list(campaign.kinds)),
        refs.status.in_(STOCK_STATUSES),
    )


def _customers(session: Session, campaign: RatingCampaign, size: int) -> list[Any]:
    refs = customer_refs.c
    query = (
        select(refs.customer_id, refs.kind, refs.org_unit, refs.business_line, CustomerFigures)
        .outerjoin(CustomerFigures, CustomerFigures.customer_id == refs.customer_id)
        .where(_scope(campaign))
        .order_by(refs.customer_id)
        .limit(size)
    )
    if campaign.cursor is not None:
        query = query.where(refs.customer_id > campaign.cursor)
    return list(session.execute(query).all())


def _histories(session: Session, campaign_id: str, ids: list[str]) -> dict[str, _History]:
    a = ASSESSMENTS.c
    rows = session.execute(
        select(a.id, a.customer_id, a.status, a.campaign_id, a.scorecard_id, a.inputs)
        .where(one_of(session, a.customer_id, ids))
        .order_by(a.customer_id, a.assessed_at, a.id)
    ).all()
    out: dict[str, _History] = {}
    for assessment_id, customer_id, status, in_campaign, scorecard_id, inputs in rows:
        history = out.get(customer_id)
        if history is None:
            history = out[customer_id] = _History()
        if not scorecard_id.startswith(ratings.IMPORTED_PREFIX):
            history.inputs = inputs
        if status in ratings.OPEN:
            history.open_ids = [*(history.open_ids or []), assessment_id]
        if in_campaign == campaign_id:
            history.in_campaign = True
    return out


@dataclass(slots=True)
class _Tally:
    graded: int = 0
    incomplete: int = 0
    indicated: int = 0
    total: Decimal = _ZERO


def _upsert_progress(
    session: Session, campaign_id: str, tallies: Mapping[tuple[str, str], _Tally]
) -> None:
    if not tallies:
        return
    dialect = session.get_bind().dialect.name
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_(PROGRESS)
    statement = statement.on_conflict_do_update(
        index_elements=[PROGRESS.c.campaign_id, PROGRESS.c.org_unit, PROGRESS.c.business_line],
        set_={
            name: PROGRESS.c[name] + statement.excluded[name]
            for name in ("graded", "incomplete", "limits_indicated", "indicative_limit_total")
        },
    )
    session.execute(
        statement,
        [
            {
                "campaign_id": campaign_id,
                "org_unit": unit,
                "business_line": line,
                "graded": t.graded,
                "incomplete": t.incomplete,
                "limits_indicated": t.indicated,
                "indicative_limit_total": t.total,
            }
            for (unit, line), t in tallies.items()
        ],
    )


@dataclass(slots=True)
class ChunkResult:
    walked: int
    graded: int
    incomplete: int
    skipped: int


def write_chunk(
    session: Session,
    recorder: EventRecorder,
    campaign: RatingCampaign,
    customers: Sequence[Any],
    day: date,
) -> ChunkResult:
    """Rate a chunk of customers and write their assessments, events and the progress in the
    session's transaction (the caller moves the cursor and commits)."""
    ids = [row[0] for row in customers]
    histories = _histories(session, campaign.id, ids)
    tools: dict[str, tuple[Scorecard, LimitFormula | None] | None] = {}
    rows: list[dict[str, Any]] = []
    superseded: list[str] = []
    tallies: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    skipped = 0
    now = utcnow()
    for customer_id, kind, org_unit, line, figures in customers:
        history = histories.get(customer_id)
        if history is not None and history.in_campaign:
            skipped += 1  # listed or assessed in the campaign already
            continue
        if kind not in tools:
            tools[kind] = tools_for(kind, day)
        found = tools[kind]
        if found is None:
            skipped += 1  # no scorecard in force for its kind
            continue
        card, formula = found
        entered = entries_of(card, history.inputs if history is not None else None)
        loans = figures.loans if figures is not None else None
        rated = rate(card, formula, figures_inputs(figures), entered, loans)
        result = rated.result
        status = ratings.INCOMPLETE if result.missing else ratings.ASSESSED
        assessment_id = str(uuid.uuid4())
        missing = list(result.missing)
        rows.append(
            {
                "id": assessment_id,
                "customer_id": customer_id,
                "kind": kind,
                "org_unit": org_unit,
                "business_line": line,
                "scorecard_id": result.scorecard_id,
                "scorecard_version": result.version,
                "inputs": {code: _stored(value) for code, value in rated.inputs.items()},
                "lines": [entry.as_dict() for entry in result.lines],
                "missing": missing,
                "score": result.score,
                "computed_grade": result.grade,
                "proposed_grade": None,
                "adjustment_reason": None,
                "final_grade": None,
                "status": status,
                "trigger": TRIGGER,
                "campaign_id": campaign.id,
                "assessed_by": SYSTEM,
                "assessed_at": now,
                "decided_by": None,
                "decided_at": None,
                "decision_note": None,
                "valid_until": None,
                "version": 1,
            }
        )
        recorder.write(
            session,
            recorder.prepare(
                RATING_ASSESSED,
                {
                    "customer_id": customer_id,
                    "assessment_id": assessment_id,
                    "kind": kind,
                    "org_unit": org_unit,
                    "scorecard_id": result.scorecard_id,
                    "scorecard_version": result.version,
                    "score": f"{result.score:.2f}",
                    "computed_grade": result.grade,
                    "proposed_grade": None,
                    "status": status,
                    "missing": missing,
                    "trigger": TRIGGER,
                    "campaign_id": campaign.id,
                },
                key=customer_id,
                actor=SYSTEM,
            ),
        )
        if history is not None and history.open_ids:
            superseded += history.open_ids
        tally = tallies[(org_unit, line)]
        if result.grade is None:
            tally.incomplete += 1
            continue
        tally.graded += 1
        if rated.limit is not None and not rated.limit.missing:
            tally.indicated += 1
            tally.total += rated.limit.total_amount
    if superseded:
        # As ``ratings.assess`` does: the customer's undecided assessment is replaced.
        session.execute(
            update(ASSESSMENTS)
            .where(one_of(session, ASSESSMENTS.c.id, superseded))
            .values(status=ratings.SUPERSEDED, version=ASSESSMENTS.c.version + 1)
        )
    insert_rows(session, ASSESSMENTS, rows)
    _upsert_progress(session, campaign.id, tallies)
    graded = sum(t.graded for t in tallies.values())
    return ChunkResult(len(customers), graded, len(rows) - graded, skipped)


def run_chunk(
    session: Session, recorder: EventRecorder, campaign_id: str, chunk_size: int
) -> int | None:
    """Rate the next chunk of a running campaign after its cursor and commit it with the moved
    cursor; returns the customers walked, or None when there is no work (not running, or the
    batch has just finished). A runner that lost the chunk to another one rolls back."""
    campaign = session.scalars(
        select(RatingCampaign).where(RatingCampaign.id == campaign_id).with_for_update()
    ).first()
    if campaign is None or campaign.status != CampaignStatus.running.value:
        session.rollback()
        return None
    customers = _customers(session, campaign, chunk_size)
    now = utcnow()
    if not customers:
        campaign.status = CampaignStatus.done.value
        campaign.finished_at = now
        campaign.updated_at = now
        campaign.last_error = None
        _commit(session)
        return None
    done = write_chunk(session, recorder, campaign, customers, business_today())
    campaign.cursor = customers[-1][0]
    campaign.walked += done.walked
    campaign.graded += done.graded
    campaign.incomplete += done.incomplete
    campaign.skipped += done.skipped
    campaign.updated_at = now
    campaign.last_error = None
    if len(customers) < chunk_size:
        campaign.status = CampaignStatus.done.value
        campaign.finished_at = now
    if not _commit(session):
        return None
    return done.walked


def _commit(session: Session) -> bool:
    """Commit; False when another runner moved the campaign meanwhile (its work stands)."""
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        log.info("a campaign chunk lost to a concurrent runner; it is left to that one")
        return False
    return True


def run_batch(
    session_factory: sessionmaker[Session],
    recorder: EventRecorder,
    campaign: RatingCampaign,
    chunk_size: int,
) -> int:
    """Run a campaign's batch chunk by chunk until it is done; returns the customers walked.
    An error stops it: the chunks committed stand, and the next run resumes after them."""
    walked = 0
    while True:
        with gc_paused(), session_factory() as session:
            done = run_chunk(session, recorder, campaign.id, chunk_size)
        if done is None:
            return walked
        walked += done


def run_pending(runtime: ServiceRuntime) -> None:
    """Run (or resume) the batch of every campaign that has work left."""
    chunk_size = int(getattr(runtime.settings, "campaign_chunk_size", 5000))
    with runtime.session_factory() as session:
        running = session.scalars(
            select(RatingCampaign)
            .where(RatingCampaign.status == CampaignStatus.running.value)
            .order_by(RatingCampaign.started_at, RatingCampaign.id)
        ).all()
    for campaign in running:
        try:
            run_batch(runtime.session_factory, runtime.recorder, campaign, chunk_size)
        except Exception as exc:
            log.exception("rating campaign batch failed", extra={"campaign_id": campaign.id})
            _note_error(runtime.session_factory, campaign.id, repr(exc))


def _note_error(session_factory: sessionmaker[Session], campaign_id: str, error: str) -> None:
    """Keep the batch's last error on the campaign (it is retried at the next tick)."""
    with session_factory() as session:
        campaign = session.get(RatingCampaign, campaign_id)
        if campaign is not None:
            campaign.last_error = error[:2000]
            _commit(session)


# -- target customers ---------------------------------------------------------------------------
def add_targets(
    session: Session,
    recorder: EventRecorder,
    campaign_id: str,
    body: TargetsIn,
    caller: Caller,
) -> list[TargetOut]:
    """Assess target customers willing to borrow in the campaign now (one transaction for the
    list): each must be a target customer of the campaign's scope that the caller serves or
    runs the campaign for. A customer already assessed in the campaign is left as it was."""
    campaign = load(session, campaign_id, caller)
    if campaign.status == CampaignStatus.draft.value:
        raise Conflict(f"campaign {campaign_id} has not started; start it first")
    if campaign.segment == CampaignSegment.stock.value:
        raise Conflict(f"campaign {campaign_id} covers stock customers only")
    ids = list(dict.fromkeys(body.customer_ids))
    refs = {
        row.customer_id: row
        for row in session.execute(
            select(customer_refs).where(customer_refs.c.customer_id.in_(ids))
        )
    }
    errors: list[dict[str, str]] = []
    for position, customer_id in enumerate(ids):
        field = f"customer_ids.{position}"
        ref = refs.get(customer_id)
        if ref is None:
            errors.append({"field": field, "reason": f"no customer {customer_id} known here"})
        elif ref.status != TARGET_STATUS:
            errors.append(
                {
                    "field": field,
                    "reason": f"customer {customer_id} is {ref.status}, not a target customer:"
                    " stock customers are rated by the campaign's batch",
                }
            )
        elif not _within(ref.org_unit, campaign.org_unit) or ref.kind not in campaign.kinds:
            errors.append(
                {"field": field, "reason": f"customer {customer_id} is outside the scope"}
            )
    if errors:
        raise ValidationFailed("Some customers cannot be listed in the campaign.", errors=errors)
    for customer_id in ids:
        ref = refs[customer_id]
        if not (
            may_manage(caller, ref.org_unit) or access.may_propose(session, caller, customer_id)
        ):
            raise Forbidden(
                f"only customer {customer_id}'s manager or those running the campaign for"
                f" {ref.org_unit} may list it as willing to borrow"
            )
    out = []
    for customer_id in ids:
        existing = session.scalars(
            select(Assessment)
            .where(Assessment.customer_id == customer_id, Assessment.campaign_id == campaign.id)
            .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
            .limit(1)
        ).first()
        if existing is None:
            kind = refs[customer_id].kind
            assessment = _assess_target(session, recorder, campaign, customer_id, kind, caller)
            out.append(_target_out(assessment, already=False))
        else:
            out.append(_target_out(existing, already=True))
    session.commit()
    return out


def _assess_target(
    session: Session,
    recorder: EventRecorder,
    campaign: RatingCampaign,
    customer_id: str,
    kind: str,
    caller: Caller,
) -> Assessment:
    """Assess a listed target customer in the campaign, by the caller, with the inputs of its
    latest assessment (if any) and the bank's figures."""
    card = scorecard_for(kind, business_today())
    system = figures_inputs(session.get(CustomerFigures, customer_id))
    entered = usable_entries(card, system, last_inputs(session, customer_id))
    return ratings.assess(
        session,
        recorder,
        customer_id=customer_id,
        inputs=entered,
        actor=caller.subject,
        trigger=TRIGGER,
        campaign_id=campaign.id,
    )


def _target_out(assessment: Assessment, *, already: bool) -> TargetOut:
    return TargetOut(
        customer_id=assessment.customer_id,
        assessment_id=assessment.id,
        status=assessment.status,
        computed_grade=assessment.computed_grade,
        already=already,
    )


# -- coverage -----------------------------------------------------------------------------------
def _percent(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part) * _HUNDRED / Decimal(whole)).quantize(_PLACES)


def coverage(session: Session, campaign: RatingCampaign, scope: str) -> Coverage:
    """Progress per org unit and business line against the 100% goal (see ``CoverageRow``)."""
    refs = customer_refs.c
    a, f, lim = ASSESSMENTS.c, FIGURES.c, LIMITS.c
    starts, ends = window(campaign)
    of_customer = a.customer_id == refs.customer_id
    in_campaign = or_(
        a.campaign_id == campaign.id, and_(a.assessed_at >= starts, a.assessed_at < ends)
    )
    decided_in = or_(
        a.campaign_id == campaign.id, and_(a.decided_at >= starts, a.decided_at < ends)
    )
    willing = exists().where(of_customer, in_campaign)
    stock = refs.status.in_(STOCK_STATUSES)
    target = and_(refs.status == TARGET_STATUS, willing)
    segment = campaign.segment
    members: list[ColumnElement[bool]] = []
    if segment != CampaignSegment.target.value:
        members.append(stock)
    if segment != CampaignSegment.stock.value:
        members.append(target)
    collected = or_(
        exists().where(f.customer_id == refs.customer_id, f.business_date.is_not(None)),
        exists().where(of_customer, a.assessed_by != SYSTEM),
    )
    rated = exists().where(of_customer, in_campaign, a.computed_grade.is_not(None))
    confirmed = exists().where(of_customer, decided_in, a.status == ratings.CONFIRMED)
    approved = exists().where(
        lim.customer_id == refs.customer_id,
        lim.status.in_(APPROVED_LIMITS),
        lim.decided_at.is_not(None),
        or_(lim.campaign_id == campaign.id, and_(lim.decided_at >= starts, lim.decided_at < ends)),
    )

    def count(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    query = (
        select(
            refs.org_unit,
            refs.business_line,
            count(stock),
            func.count(),
            count(collected),
            count(rated),
            count(confirmed),
            count(approved),
        )
        .where(
            in_subtree(refs.org_unit, scope),
            refs.kind.in_(list(campaign.kinds)),
            or_(*members),
        )
        .group_by(refs.org_unit, refs.business_line)
    )
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for unit, line, stock_n, in_scope, collected_n, rated_n, confirmed_n, approved_n in (
        session.execute(query) if members else []
    ):
        cells[(unit, line)] = _cell(
            stock=int(stock_n or 0),
            target=int(in_scope) - int(stock_n or 0),
            in_scope=int(in_scope),
            collected=int(collected_n or 0),
            rated=int(rated_n or 0),
            confirmed=int(confirmed_n or 0),
            limit_approved=int(approved_n or 0),
        )
    p = PROGRESS.c
    for unit, line, graded, incomplete, indicated, total in session.execute(
        select(
            p.org_unit,
            p.business_line,
            p.graded,
            p.incomplete,
            p.limits_indicated,
            p.indicative_limit_total,
        ).where(p.campaign_id == campaign.id, in_subtree(p.org_unit, scope))
    ):
        cell = cells.setdefault((unit, line), _cell())
        cell["batch_graded"] += graded
        cell["batch_incomplete"] += incomplete
        cell["limits_indicated"] += indicated
        cell["indicative_limit_total"] += total
    by_unit: dict[str, dict[str, Any]] = {}
    by_line: dict[str, dict[str, Any]] = {}
    whole = _cell()
    for (unit, line), cell in cells.items():
        _add(by_unit.setdefault(unit, _cell()), cell)
        _add(by_line.setdefault(line, _cell()), cell)
        _add(whole, cell)
    return Coverage(
        goal_pct=Decimal("100.00"),
        scope=scope,
        total=_row(whole),
        by_org_unit=[_row(by_unit[u], org_unit=u) for u in sorted(by_unit)],
        by_business_line=[_row(by_line[n], business_line=n) for n in sorted(by_line)],
    )


_COUNTS = (
    "stock",
    "target",
    "in_scope",
    "collected",
    "rated",
    "confirmed",
    "limit_approved",
    "batch_graded",
    "batch_incomplete",
    "limits_indicated",
)


def _cell(**counts: int) -> dict[str, Any]:
    cell: dict[str, Any] = dict.fromkeys(_COUNTS, 0)
    cell.update(counts)
    cell["indicative_limit_total"] = _ZERO
    return cell


def _add(into: dict[str, Any], cell: Mapping[str, Any]) -> None:
    for name in (*_COUNTS, "indicative_limit_total"):
        into[name] += cell[name]


def _row(
    cell: Mapping[str, Any], *, org_unit: str | None = None, business_line: str | None = None
) -> CoverageRow:
    whole = int(cell["in_scope"])
    return CoverageRow(
        org_unit=org_unit,
        business_line=business_line,
        stock=cell["stock"],
        target=cell["target"],
        in_scope=whole,
        collected=cell["collected"],
        rated=cell["rated"],
        confirmed=cell["confirmed"],
        limit_approved=cell["limit_approved"],
        collected_pct=_percent(cell["collected"], whole),
        rated_pct=_percent(cell["rated"], whole),
        confirmed_pct=_percent(cell["confirmed"], whole),
        limit_approved_pct=_percent(cell["limit_approved"], whole),
        batch_graded=cell["batch_graded"],
        batch_incomplete=cell["batch_incomplete"],
        limits_indicated=cell["limits_indicated"],
        indicative_limit_total=cell["indicative_limit_total"],
    )
