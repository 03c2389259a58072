"""Pure rules of the customer master: business dates, name matching, status changes."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
CUSTOMERS_PATH = "/api/v1/customers"

# Allowed status changes 客户状态. A target becomes active when it opens a relationship; a closed
# record stays closed (a returning customer is a new relationship, found by its identity).
TRANSITIONS: dict[str, frozenset[str]] = {
    "target": frozenset({"active", "closed"}),
    "active": frozenset({"dormant", "lost", "closed"}),
    "dormant": frozenset({"active", "lost", "closed"}),
    "lost": frozenset({"active", "closed"}),
    "closed": frozenset(),
}
# Fields whose values never go to the change log or events, only the fact that they changed.
PERSONAL_FIELDS = frozenset({"id_number", "operator_id_number", "phone", "contacts", "addresses"})
EVENT_FIELDS = ("kind", "name", "org_unit", "business_line", "status", "segment")
_NAME_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def business_today() -> date:
    """Today's business date (Asia/Shanghai)."""
    return datetime.now(BUSINESS_TZ).date()


def name_key(name: str) -> str:
    """A name for matching: case, spaces and punctuation do not count."""
    return _NAME_NOISE.sub("", name).lower()
