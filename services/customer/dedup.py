"""Duplicates: one real-world party is one customer (客户信息治理).

Identity numbers are unique, so exact duplicates cannot be entered. Probable duplicates — the same
name with the same phone or address, or names that differ only in legal form — are listed for
review, and a reviewer merges two records into a survivor. The merged record is kept (closed,
pointing at the survivor) so history stays readable, and ``customer.merged`` tells every other
service to re-point its references.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.db import count_rows, utcnow
from crmkit.errors import Conflict, Forbidden, ValidationFailed
from services.customer import access, events
from services.customer.context import CustomerContext
from services.customer.domain import name_key
from services.customer.models import (
    Collateral,
    Contact,
    Customer,
    FinancialSnapshot,
    Guarantor,
    Relationship,
)
from services.customer.repo import load_writable
from services.customer.service import (
    commit_versioned,
    event_payload,
    group_snapshot,
    log_change,
    record_group_changes,
)

SAME_PHONE = "same_name_and_phone"
SAME_ADDRESS = "same_name_and_address"
SIMILAR_NAME = "similar_name"
# Fields a survivor takes from the merged record when it has none of its own.
_FILLABLE = (
    "market_segment",
    "archive_number",
    "relationship_evaluation",
    "cooperation_direction",
    "importance",
    "importance_review_date",
    "data_source",
    "lawful_basis",
)
_PHONE_FIELDS = ("phone_enc", "phone_masked", "phone_index")


def _address_key(customer: Customer) -> str | None:
    texts = sorted(name_key(a.get("text", "")) for a in customer.addresses or [] if a.get("text"))
    return "|".join(texts) or None


def probable_duplicates(
    session: Session, caller: Caller, org_unit: str | None, limit: int, offset: int
) -> tuple[list[tuple[str, list[Customer]]], int]:
    """Groups of records in the caller's scope that probably are one party, with the reason.

    Candidates share a name stem (found by one grouped query on an indexed column); within such a
    set, records with the same phone or the same address are grouped under that reason, and the
    rest under "similar name".
    """
    scope = [access.readable(caller), Customer.merged_into.is_(None), Customer.name_stem != ""]
    if org_unit:
        scope.append(access.in_subtree(org_unit))
    stems = (
        select(Customer.name_stem)
        .where(*scope)
        .group_by(Customer.name_stem)
        .having(func.count() > 1)
        .order_by(Customer.name_stem)
    )
    total = count_rows(session, stems)
    page = list(session.scalars(stems.limit(limit).offset(offset)).all())
    if not page:
        return [], total
    rows = session.scalars(
        select(Customer)
        .where(*scope, Customer.name_stem.in_(page))
        .order_by(Customer.name_stem, Customer.created_at, Customer.id)
    ).all()
    by_stem: dict[str, list[Customer]] = defaultdict(list)
    for customer in rows:
        by_stem[customer.name_stem].append(customer)
    groups: list[tuple[str, list[Customer]]] = []
    for stem in page:
        groups.extend(_classify(by_stem[stem]))
    return groups, total


def _classify(candidates: list[Customer]) -> Iterable[tuple[str, list[Customer]]]:
    placed: set[str] = set()
    for reason, key in ((SAME_PHONE, _phone_key), (SAME_ADDRESS, _address_key)):
        buckets: dict[str, list[Customer]] = defaultdict(list)
        for customer in candidates:
            value = key(customer)
            if value is not None and customer.id not in placed:
                buckets[f"{customer.name_key}|{value}"].append(customer)
        for bucket in buckets.values():
            if len(bucket) > 1:
                placed.update(c.id for c in bucket)
                yield reason, bucket
    rest = [c for c in candidates if c.id not in placed]
    if len(rest) > 1:
        yield SIMILAR_NAME, rest


def _phone_key(customer: Customer) -> str | None:
    return customer.phone_index


# -- merging ------------------------------------------------------------------------------------
def merge(
    session: Session,
    ctx: CustomerContext,
    survivor_id: str,
    duplicate_id: str,
    version: int,
    caller: Caller,
) -> Customer:
    """Merge ``duplicate_id`` into ``survivor_id``: history moves over, the duplicate is closed."""
    if not access.may_merge(caller):
        raise Forbidden("merging customer records needs a branch head or an administrator")
    if survivor_id == duplicate_id:
        raise ValidationFailed(
            "A record cannot be merged into itself.",
            errors=[{"field": "duplicate_id", "reason": "same as the survivor"}],
        )
    survivor = load_writable(session, caller, survivor_id)
    duplicate = load_writable(session, caller, duplicate_id)
    _check_mergeable(survivor, duplicate, version)
    filled = _take_over_fields(survivor, duplicate)
    groups = group_snapshot(session, [survivor.id, duplicate.id])
    moved = _move_history(session, survivor.id, duplicate.id)
    record_group_changes(session, ctx.recorder, groups, caller.subject)
    now = utcnow()
    duplicate.status = "closed"
    duplicate.merged_into = survivor.id
    duplicate.updated_at = now
    duplicate.updated_by = caller.subject
    session.flush()  # the duplicate lets go of its unique identity before the survivor takes it
    for name, value in filled.items():
        setattr(survivor, name, value)
    survivor.updated_at = now  # one version step for the survivor, taken at commit
    survivor.updated_by = caller.subject
    log_change(session, duplicate, "merged_into", caller.subject, {"survivor_id": survivor.id})
    log_change(
        session,
        survivor,
        "merged",
        caller.subject,
        {"merged_id": duplicate.id, "filled": sorted(filled), "moved": moved},
    )
    ctx.recorder.record(
        session,
        events.CUSTOMER_MERGED,
        {"merged_id": duplicate.id, "survivor_id": survivor.id},
        key=duplicate.id,
        actor=caller.subject,
    )
    changed = sorted({_public_name(n) for n in filled})
    if changed:
        ctx.recorder.record(
            session,
            events.CUSTOMER_UPDATED,
            event_payload(survivor, changed=changed),
            key=survivor.id,
            actor=caller.subject,
        )
    commit_versioned(session, survivor.id)
    return survivor


def _check_mergeable(survivor: Customer, duplicate: Customer, version: int) -> None:
    if survivor.version != version:
        raise Conflict(
            f"customer {survivor.id} changed since version {version}; read it again",
            current_version=survivor.version,
        )
    if survivor.merged_into is not None or duplicate.merged_into is not None:
        raise Conflict("one of the records has already been merged")
    problems: list[dict[str, Any]] = []
    if survivor.kind != duplicate.kind:
        problems.append(
            {"field": "duplicate_id", "reason": f"a {duplicate.kind} is not a {survivor.kind}"}
        )
    if (
        survivor.identity_index is not None
        and duplicate.identity_index is not None
        and survivor.identity_index != duplicate.identity_index
    ):
        problems.append(
            {"field": "duplicate_id", "reason": "the two records carry different identities"}
        )
    if problems:
        raise ValidationFailed("These records are not one party.", errors=problems)


def _take_over_fields(survivor: Customer, duplicate: Customer) -> dict[str, Any]:
    """What the survivor lacks and the duplicate has; the duplicate gives up unique values."""
    filled: dict[str, Any] = {}
    for name in _FILLABLE:
        if getattr(survivor, name) is None and getattr(duplicate, name) is not None:
            filled[name] = getattr(duplicate, name)
    if survivor.phone_enc is None and duplicate.phone_enc is not None:
        filled.update({n: getattr(duplicate, n) for n in _PHONE_FIELDS})
        filled["lost_contact"] = False
    if not survivor.addresses and duplicate.addresses:
        filled["addresses"] = list(duplicate.addresses)
    if not survivor.profile and duplicate.profile:
        filled["profile"] = dict(duplicate.profile)
    if survivor.identity_index is None and duplicate.identity_index is not None:
        for name in (
            "identity_index",
            "id_number_enc",
            "id_number_masked",
            "credit_code",
            "birth_date",
            "sex",
            "operator_id_enc",
            "operator_id_masked",
            "operator_id_index",
        ):
            filled[name] = getattr(duplicate, name)
    if survivor.core_customer_no is None and duplicate.core_customer_no is not None:
        filled["core_customer_no"] = duplicate.core_customer_no
    duplicate.identity_index = None
    duplicate.core_customer_no = None
    return filled


def _public_name(column: str) -> str:
    """The API field a column belongs to (events name fields, never stored forms)."""
    for prefix, public in (
        ("phone_", "phone"),
        ("id_number_", "id_number"),
        ("operator_id_", "operator_id_number"),
        ("identity_index", "id_number"),
    ):
        if column.startswith(prefix):
            return public
    return {"birth_date": "id_number", "sex": "id_number", "lost_contact": "phone"}.get(
        column, column
    )


def _move_history(session: Session, survivor_id: str, duplicate_id: str) -> dict[str, int]:
    """Re-point what hangs off the duplicate; on the same business date the survivor's snapshot
    wins, and links that would become duplicate or self links are dropped."""
    moved: dict[str, int] = {}
    own_dates = select(FinancialSnapshot.business_date).where(
        FinancialSnapshot.customer_id == survivor_id
    )
    result = session.execute(
        update(FinancialSnapshot)
        .where(
            FinancialSnapshot.customer_id == duplicate_id,
            FinancialSnapshot.business_date.not_in(own_dates.scalar_subquery()),
        )
        .values(customer_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    moved["snapshots"] = _count(result)
    for model in (Contact, Collateral, Guarantor):
        result = session.execute(
            update(model)
            .where(model.customer_id == duplicate_id)
            .values(customer_id=survivor_id)
            .execution_options(synchronize_session=False)
        )
        moved[model.__tablename__] = _count(result)
    session.execute(
        update(Guarantor)
        .where(Guarantor.guarantor_customer_id == duplicate_id)
        .values(guarantor_customer_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    moved["relationships"] = _move_links(session, survivor_id, duplicate_id)
    return moved


def _count(result: Result[Any]) -> int:
    """Rows an UPDATE touched (a DML statement's result is a cursor result)."""
    return cast(CursorResult[Any], result).rowcount or 0


def _move_links(session: Session, survivor_id: str, duplicate_id: str) -> int:
    links = session.scalars(
        select(Relationship).where(
            or_(
                Relationship.from_customer_id.in_([survivor_id, duplicate_id]),
                Relationship.to_customer_id.in_([survivor_id, duplicate_id]),
            )
        )
    ).all()
    seen: set[tuple[str, str, str]] = set()
    repoint: list[tuple[Relationship, str, str]] = []
    doomed: list[Relationship] = []
    for link in sorted(links, key=lambda r: (r.from_customer_id == duplicate_id, r.id)):
        source = survivor_id if link.from_customer_id == duplicate_id else link.from_customer_id
        target = survivor_id if link.to_customer_id == duplicate_id else link.to_customer_id
        key = (source, target, link.type)
        if source == target or key in seen:
            doomed.append(link)
            continue
        seen.add(key)
        if (source, target) != (link.from_customer_id, link.to_customer_id):
            repoint.append((link, source, target))
    # Deletes first: a re-pointed link may take the place of one that goes.
    for link in doomed:
        session.delete(link)
    session.flush()
    for link, source, target in repoint:
        link.from_customer_id, link.to_customer_id = source, target
    session.flush()
    return len(repoint)
