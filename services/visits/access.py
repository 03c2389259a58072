"""Who may do what in the visits service, decided here from the caller's token and this
service's own copy of who owns and serves each customer (``owner_refs``).

- Staff who own or serve a customer record and read its visits, plans and enquiries.
- Heads (outlet head, branch president) and line departments read and manage their org subtree:
  agendas and activity of their team, complaints, surveys, reports.
- Tellers keep the identification register 柜员识别客户登记 of their outlet.
- Auditors read everything; administrators do everything.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.replicas import owns_or_serves
from services.visits.models import owner_refs

ROLE_CUSTOMER_MANAGER = "customer_manager"
ROLE_WEALTH_MANAGER = "wealth_manager"
ROLE_TELLER = "teller"
ROLE_LOBBY_MANAGER = "lobby_manager"
ROLE_OUTLET_HEAD = "outlet_head"
ROLE_BRANCH_PRESIDENT = "branch_president"
ROLE_HEAD_OFFICE_LEADER = "head_office_leader"
ROLE_LINE_DEPARTMENT = "line_department"
ROLE_AUDITOR = "auditor"

HEADS = frozenset(
    {ROLE_OUTLET_HEAD, ROLE_BRANCH_PRESIDENT, ROLE_HEAD_OFFICE_LEADER, ROLE_LINE_DEPARTMENT}
)
FRONT_LINE = frozenset(
    {
        ROLE_CUSTOMER_MANAGER,
        ROLE_WEALTH_MANAGER,
        ROLE_TELLER,
        ROLE_LOBBY_MANAGER,
        ROLE_OUTLET_HEAD,
        ROLE_BRANCH_PRESIDENT,
        ROLE_HEAD_OFFICE_LEADER,
    }
)


def serves(session: Session, caller: Caller, customer_id: str) -> bool:
    """The caller owns or serves the customer (kept from the assignment service's events)."""
    return owns_or_serves(session, owner_refs, customer_id, caller.subject)


def may_read_customer(session: Session, caller: Caller, customer_id: str, org_unit: str) -> bool:
    """Read a customer's visits, plans, enquiries and complaints."""
    if caller.has_role(ROLE_ADMIN, ROLE_AUDITOR):
        return True
    if caller.has_role(*HEADS) and caller.within(org_unit):
        return True
    return serves(session, caller, customer_id)


def may_record(session: Session, caller: Caller, customer_id: str, org_unit: str) -> bool:
    """Record a visit, plan, enquiry or appointment for a customer: its owner or serving team,
    or a head of its subtree."""
    if caller.has_role(ROLE_ADMIN):
        return True
    if caller.has_role(*HEADS) and caller.within(org_unit):
        return True
    return caller.has_role(*FRONT_LINE) and serves(session, caller, customer_id)


def may_manage(caller: Caller, org_unit: str) -> bool:
    """Read and manage the team, complaints, surveys and reports of ``org_unit``."""
    if caller.has_role(ROLE_ADMIN):
        return True
    return caller.has_role(*HEADS) and caller.within(org_unit)


def may_read_unit(caller: Caller, org_unit: str) -> bool:
    """Read the reports and lists of ``org_unit``."""
    return caller.has_role(ROLE_AUDITOR) or may_manage(caller, org_unit)
