"""Pure rules of the customer master: business dates, name matching, status changes."""

from __future__ import annotations

import re
from typing import Protocol

from crmkit.clock import BUSINESS_TZ as BUSINESS_TZ  # re-exported: the service's modules use them
from crmkit.clock import business_today as business_today

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
# Words that do not tell two organisations apart: legal forms and their abbreviations, and the
# bracketed place names firms add, in ASCII or full-width brackets.
_BRACKETED = re.compile("[(\uff08][^)\uff09]*[)\uff09]")
_ORG_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "分公司",
    "公司",
    "合作社",
    "个体工商户",
    "coltd",
    "company",
    "limited",
    "ltd",
    "inc",
    "co",
)


class _Named(Protocol):
    name: str
    name_key: str
    name_stem: str


def name_key(name: str) -> str:
    """A name for matching: case, spaces and punctuation do not count."""
    return _NAME_NOISE.sub("", name).lower()


def name_stem(name: str) -> str:
    """The part of a name that identifies: similar names (a legal form more or less, a bracketed
    place name) share a stem, which is how probable duplicates are found."""
    key = name_key(_BRACKETED.sub("", name))
    changed = True
    while changed:
        changed = False
        for suffix in _ORG_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)]
                changed = True
    return key


def set_name(customer: _Named, name: str) -> None:
    """Set a customer's name with its search key and stem."""
    customer.name = name
    customer.name_key = name_key(name)
    customer.name_stem = name_stem(name)
