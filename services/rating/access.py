"""Who may do what in the rating service, decided here from the caller's token and this
service's own copy of who owns each customer (``owner_refs``).

- A customer manager 客户经理 (or a head who owns the customer) assesses and proposes limits for
  customers they own or serve; they investigate and propose, and never decide the same case
  (内部控制).
- Approvers (credit approver, outlet head, branch president, head-office leader) review,
  confirm grades and decide limits for customers of their org subtree, within the authority
  matrix; never on their own proposal.
- Members of the credit committee 贷审会 vote on the limits referred to it.
- Risk and internal-control staff flag customers of their subtree by hand.
- Auditors 稽核 read everything; administrators do everything.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.replicas import owns_or_serves
from services.rating.models import owner_refs

ROLE_CUSTOMER_MANAGER = "customer_manager"
ROLE_CREDIT_APPROVER = "credit_approver"
ROLE_OUTLET_HEAD = "outlet_head"
ROLE_BRANCH_PRESIDENT = "branch_president"
ROLE_HEAD_OFFICE_LEADER = "head_office_leader"
ROLE_COMMITTEE = "credit_committee"
ROLE_RISK_OFFICER = "risk_officer"
ROLE_INTERNAL_CONTROL = "internal_control"
ROLE_AUDITOR = "auditor"

APPROVERS = frozenset(
    {ROLE_CREDIT_APPROVER, ROLE_OUTLET_HEAD, ROLE_BRANCH_PRESIDENT, ROLE_HEAD_OFFICE_LEADER}
)
RISK_STAFF = frozenset({ROLE_RISK_OFFICER, ROLE_INTERNAL_CONTROL})
# Roles that read the ratings, limits and risk of their org subtree.
SUBTREE_READERS = APPROVERS | RISK_STAFF | {ROLE_COMMITTEE}
# Roles that investigate and propose for the customers they own or serve: customer managers,
# and the heads and leaders who own high-tier customers under the assignment rules.
PROPOSERS = frozenset(
    {ROLE_CUSTOMER_MANAGER, ROLE_OUTLET_HEAD, ROLE_BRANCH_PRESIDENT, ROLE_HEAD_OFFICE_LEADER}
)


def org_level(org_unit: str) -> str:
    """The level of an org unit by its path: ``/HQ`` head office, ``/HQ/U01`` branch (county
    union or sub-branch 支行), deeper an outlet 网点 or credit cooperative 信用社."""
    depth = len([part for part in org_unit.split("/") if part])
    if depth <= 1:
        return "head_office"
    return "branch" if depth == 2 else "outlet"


def serves(session: Session, caller: Caller, customer_id: str) -> bool:
    """The caller owns or serves the customer (kept from the assignment service's events)."""
    return owns_or_serves(session, owner_refs, customer_id, caller.subject)


def may_read(session: Session, caller: Caller, customer_id: str, org_unit: str) -> bool:
    """Read a customer's ratings, limits and risk status."""
    if caller.has_role(ROLE_ADMIN, ROLE_AUDITOR):
        return True
    if caller.has_role(*SUBTREE_READERS) and caller.within(org_unit):
        return True
    return serves(session, caller, customer_id)


def may_propose(session: Session, caller: Caller, customer_id: str) -> bool:
    """Assess a customer or propose its limit: its owner or a member of its serving team who
    holds a proposing role (a teller's general deposit customers are not rated by the teller).
    Whoever proposes never decides the same case: the four-eyes checks are the use cases'."""
    if caller.has_role(ROLE_ADMIN):
        return True
    return caller.has_role(*PROPOSERS) and serves(session, caller, customer_id)


def may_decide(caller: Caller, org_unit: str) -> bool:
    """Review, confirm or decide for customers of ``org_unit`` (the amount is the matrix's)."""
    if caller.has_role(ROLE_ADMIN):
        return True
    return caller.has_role(*APPROVERS) and caller.within(org_unit)


def may_flag(session: Session, caller: Caller, customer_id: str, org_unit: str) -> bool:
    """Flag a customer as a risk by hand, or clear a flag."""
    if caller.has_role(ROLE_ADMIN):
        return True
    if caller.has_role(*RISK_STAFF, *APPROVERS) and caller.within(org_unit):
        return True
    return caller.has_role(ROLE_CUSTOMER_MANAGER) and serves(session, caller, customer_id)
