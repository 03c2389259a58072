"""Leads tellers identify 柜员识别客户 in the visits service: ``lead.identified`` (version 1).

Each becomes a target-list entry 名单制 (附件4) through the same use cases as an entry collected
by hand: collected in the service area contracted to the teller's outlet — of its areas, the
first by name whose kind routes the entry to the line the teller chose, else the first; without
one there, the nearest unit above with areas — and, when the teller referred the customer to an
active staff member who holds a book, distributed to them at once by name (their
``lead.distributed``). A referral to someone who cannot take it leaves the entry collected, for
the weekly distribution.

The entry names the visits register entry it came from (``source`` ``teller``, ``source_ref``
its id, unique) and its notes say why the teller flagged it; its contact details stay in the
visits service (no phone travels, the identity number only masked). An event whose entry
exists already changes nothing, beside the inbox that drops a redelivered one. An outlet without
a service area anywhere up its tree fails the event, which is retried and dead-lettered for a
replay once an area is contracted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.events import Envelope
from crmkit.outbox import recorder_of
from services.assignment import access, leads
from services.assignment.handlers import registry
from services.assignment.models import Staff
from services.assignment.models_leads import Lead, LeadArea
from services.assignment.rules import ancestors
from services.assignment.schemas_leads import DistributeIn, InfoStatus, LeadIn, LeadKind

VISITS_STREAM = "visits"


class NoAreaForLead(LookupError):
    """No service area is contracted to the teller's outlet or any unit above it."""


TELLER_SOURCE = "teller"


def source_tag(lead_id: str) -> str:
    """How an entry's notes name the register entry it came from."""
    return f"[teller lead {lead_id}]"


def entry_of(session: Session, lead_id: str) -> Lead | None:
    """The target-list entry made from the visits register entry ``lead_id``, if any."""
    return session.scalars(select(Lead).where(Lead.source_ref == lead_id)).first()


def area_for(session: Session, org_unit: str, kind: str, line: str) -> LeadArea | None:
    """The area an outlet's lead is collected in: the nearest unit with areas, and of its
    areas the first by name that routes ``kind`` to ``line``, else its first."""
    for unit in ancestors(org_unit):
        areas = list(
            session.scalars(
                select(LeadArea)
                .where(LeadArea.org_unit == unit)
                .order_by(LeadArea.name, LeadArea.id)
            )
        )
        if areas:
            return next((a for a in areas if leads.line_for(a.kind, kind) == line), areas[0])
    return None


def _takes_referrals(session: Session, staff_id: str | None) -> bool:
    """An active staff member who holds a book can be the entry's marketer."""
    if staff_id is None:
        return False
    member = session.get(Staff, staff_id)
    return (
        member is not None
        and member.status == "active"
        and bool(access.BOOK_ROLES.intersection(member.roles))
    )


def _notes(data: dict[str, Any], referral_taken: bool) -> str:
    parts = [
        f"{source_tag(data['lead_id'])} Identified at the counter 柜员识别 by {data['teller_id']} "
        f"at {data['org_unit']} on {data['identified_on']}: {', '.join(data['reasons'])}",
        f"preliminary value {data['preliminary_value']}"
        + (", potential VIP" if data["potential_vip"] else ""),
    ]
    referred = data.get("referred_to")
    if referred and referral_taken:
        parts.append(f"referred to {referred} ({data.get('referred_role') or 'manager'})")
    elif referred:
        parts.append(f"referred to {referred}, who is not active staff holding a book here")
    if data.get("customer_id"):
        parts.append(f"known customer {data['customer_id']}")
    if data.get("id_number_masked"):
        parts.append(f"identity {data['id_number_masked']}")
    parts.append("contact details in the visits service's teller register")
    return "; ".join(parts)[:1000]


@contextmanager
def _in_consumer_transaction(session: Session) -> Iterator[Session]:
    """A session on the consumer's connection whose commit only flushes.

    The target-list use cases commit their unit of work; here that unit is the consumed
    event's, so the entry, its events and the inbox entry commit together or not at all.
    """
    session.flush()
    with Session(
        bind=session.connection(), join_transaction_mode="rollback_only", expire_on_commit=False
    ) as joined:
        yield joined


@registry.on(VISITS_STREAM, "lead.identified", versions=(1,))
def lead_identified(session: Session, event: Envelope) -> None:
    """A target-list entry for the lead, distributed to the manager it was referred to."""
    data = event.data
    if entry_of(session, data["lead_id"]) is not None:
        return
    area = area_for(session, data["org_unit"], data["kind"], data["business_line"])
    if area is None:
        raise NoAreaForLead(
            f"no service area is contracted to {data['org_unit']} or a unit above it: contract "
            "one, then replay this event"
        )
    # The teller's referral, applied with the service's own authority: the visits service let
    # the teller flag the lead and name the manager.
    teller = Caller(
        subject=data["teller_id"],
        name=data["teller_id"],
        roles=frozenset({ROLE_ADMIN}),
        org_unit=data["org_unit"],
    )
    taken = _takes_referrals(session, data.get("referred_to"))
    body = LeadIn(
        name=data["name"][:200],
        kind=LeadKind(data["kind"]),
        area_id=area.id,
        current_bank=(data.get("current_bank") or None),
        info_status=InfoStatus.partial,
        notes=_notes(data, taken),
    )
    with _in_consumer_transaction(session) as joined:
        entry = leads.create_lead(
            joined, body, teller, source=TELLER_SOURCE, source_ref=data["lead_id"]
        )
        if taken:
            referral = DistributeIn(
                staff_id=data["referred_to"], note="referred at the counter 柜员识别"
            )
            leads.distribute(joined, recorder_of(session), entry.id, referral, teller)
