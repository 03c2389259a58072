"""Who may see and change which customers, decided here from the caller's token and the local
ownership read model (never by asking the assignment service per request).

- Head office and administrators see everything; a branch president 行长 or outlet head 网点主任
  sees the org subtree of their unit; auditors and credit approvers read their subtree.
- A customer manager 客户经理 or wealth manager sees the customers they own or serve. A record
  that has never been assigned stays with the staff member who entered it (谁营销谁维护); once
  assigned, only ownership decides.
- A teller 综合柜员 looks customers up by identity number for service, nothing more.
- Personal data is masked in every response; only the roles below may reveal it, on a record they
  may read, and every reveal is audited.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true

from crmkit.auth import ROLE_ADMIN, ROLE_OPS, Caller
from crmkit.db import in_subtree as db_in_subtree
from services.customer.models import Customer, Owner

ROLE_BRANCH_PRESIDENT = "branch_president"
ROLE_OUTLET_HEAD = "outlet_head"
ROLE_CUSTOMER_MANAGER = "customer_manager"
ROLE_WEALTH_MANAGER = "wealth_manager"
ROLE_TELLER = "teller"
ROLE_AUDITOR = "auditor"
ROLE_CREDIT_APPROVER = "credit_approver"

SUBTREE_WRITERS = frozenset({ROLE_BRANCH_PRESIDENT, ROLE_OUTLET_HEAD})
SUBTREE_READERS = SUBTREE_WRITERS | {ROLE_AUDITOR, ROLE_CREDIT_APPROVER}
BOOK_HOLDERS = frozenset({ROLE_CUSTOMER_MANAGER, ROLE_WEALTH_MANAGER})
CREATORS = SUBTREE_WRITERS | BOOK_HOLDERS
REVEALERS = SUBTREE_WRITERS | BOOK_HOLDERS | {ROLE_AUDITOR, ROLE_CREDIT_APPROVER}
IMPORTERS = frozenset({ROLE_ADMIN, ROLE_BRANCH_PRESIDENT})
MERGERS = SUBTREE_WRITERS
ERASERS = frozenset({ROLE_ADMIN, ROLE_BRANCH_PRESIDENT})
LOOKUP_ROLES = frozenset({ROLE_TELLER}) | SUBTREE_READERS | BOOK_HOLDERS


def is_admin(caller: Caller) -> bool:
    return caller.has_role(ROLE_ADMIN)


def in_subtree(org_unit: str) -> ColumnElement[bool]:
    """Customers of ``org_unit`` and the units below it: a path prefix of whole segments (an
    org path may hold "_", a LIKE wildcard, so the prefix is escaped)."""
    return db_in_subtree(Customer.org_unit, org_unit)


def in_book_of(staff_id: str) -> ColumnElement[bool]:
    """Customers ``staff_id`` owns or serves as a team member (a manager's book)."""
    return Customer.id.in_(select(Owner.customer_id).where(Owner.staff_id == staff_id))


def _in_book(caller: Caller) -> ColumnElement[bool]:
    owned = exists().where(and_(Owner.customer_id == Customer.id, Owner.staff_id == caller.subject))
    # Until its first assignment a record stays with whoever entered it; never after, even when
    # its owner is released (it then waits in the branch's subtree for a new one).
    entered = and_(Customer.ever_assigned.is_(False), Customer.created_by == caller.subject)
    return or_(owned, entered)


def readable(caller: Caller) -> ColumnElement[bool]:
    """The customers the caller may list and read, as a SQL condition."""
    if is_admin(caller):
        return true()
    conditions: list[ColumnElement[bool]] = []
    if caller.has_role(*SUBTREE_READERS):
        conditions.append(in_subtree(caller.org_unit))
    if caller.has_role(*BOOK_HOLDERS):
        conditions.append(_in_book(caller))
    return or_(*conditions) if conditions else false()


def writable(caller: Caller) -> ColumnElement[bool]:
    """The customers the caller may change."""
    if is_admin(caller):
        return true()
    conditions: list[ColumnElement[bool]] = []
    if caller.has_role(*SUBTREE_WRITERS):
        conditions.append(in_subtree(caller.org_unit))
    if caller.has_role(*BOOK_HOLDERS):
        conditions.append(_in_book(caller))
    return or_(*conditions) if conditions else false()


def may_create_in(caller: Caller, org_unit: str) -> bool:
    return is_admin(caller) or (caller.has_role(*CREATORS) and caller.within(org_unit))


def may_reveal(caller: Caller) -> bool:
    return is_admin(caller) or caller.has_role(*REVEALERS)


def may_import(caller: Caller) -> bool:
    return caller.has_role(*IMPORTERS)


def may_merge(caller: Caller) -> bool:
    return is_admin(caller) or caller.has_role(*MERGERS)


def may_erase(caller: Caller) -> bool:
    return caller.has_role(*ERASERS)


def may_look_up(caller: Caller) -> bool:
    return is_admin(caller) or caller.has_role(*LOOKUP_ROLES)


def lookup_scope(caller: Caller) -> ColumnElement[bool]:
    """Identity lookups. Customers are served at any outlet, and whoever asks must already hold
    the full identity number, so a teller's lookup spans the bank; others stay in their scope.
    Every lookup is audited by the caller of this rule."""
    if is_admin(caller) or caller.has_role(ROLE_TELLER):
        return true()
    return readable(caller)


FINANCIALS_SCOPE = "customer.financials"


def may_record_financials(caller: Caller) -> bool:
    """Core banking's feed (a client token with the scope) or operations staff."""
    if caller.is_client:
        return FINANCIALS_SCOPE in caller.scopes
    return caller.has_role(ROLE_ADMIN, ROLE_OPS)
