"""Who may see and change the org tree, the staff and the owners of customers.

- Administrators manage everything; the org tree is kept by administrators alone.
- A branch president 行长 or outlet head 网点主任 manages the staff of their org subtree and
  assigns, transfers and releases the customers of their subtree to staff of their subtree.
- Auditors and credit approvers read their subtree (owners, histories, books).
- Every staff member reads their own record, their own book and the owner of a customer they own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.db import in_subtree

ROLE_BRANCH_PRESIDENT = "branch_president"
ROLE_OUTLET_HEAD = "outlet_head"
ROLE_AUDITOR = "auditor"
ROLE_CREDIT_APPROVER = "credit_approver"

MANAGERS = frozenset({ROLE_BRANCH_PRESIDENT, ROLE_OUTLET_HEAD})
READERS = MANAGERS | {ROLE_AUDITOR, ROLE_CREDIT_APPROVER}

# Roles that may hold a book of customers (the rules of issue 6 choose among them).
BOOK_ROLES = frozenset(
    {
        "customer_manager",
        "wealth_manager",
        "teller",
        "lobby_manager",
        "outlet_head",
        "branch_president",
        "head_office_leader",
    }
)


def may_manage(caller: Caller, org_unit: str) -> bool:
    """Manage staff of ``org_unit`` and assign its customers."""
    if caller.has_role(ROLE_ADMIN):
        return True
    return caller.has_role(*MANAGERS) and caller.within(org_unit)


def may_read(caller: Caller, org_unit: str) -> bool:
    """Read the staff, owners and books of ``org_unit``."""
    if caller.has_role(ROLE_ADMIN):
        return True
    return caller.has_role(*READERS) and caller.within(org_unit)


def readable_rows(
    caller: Caller, unit: Any, own: ColumnElement[bool]
) -> ColumnElement[bool] | None:
    """The rows of a list the caller may read: all for administrators (None: no condition),
    those whose ``unit`` lies in their subtree for readers, else their ``own``."""
    if caller.has_role(ROLE_ADMIN):
        return None
    if caller.has_role(*READERS):
        return in_subtree(unit, caller.org_unit)
    return own
