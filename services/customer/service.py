"""Customer use cases: one transaction each, the events written in it (outbox).

Every use case takes the session and the caller explicitly, checks what the caller may do
(``access``), applies the rules and records its events before it commits.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import Caller
from crmkit.crypto import FieldCipher
from crmkit.db import utcnow
from crmkit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PolicyViolation,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)
from crmkit.outbox import EventRecorder
from services.customer import access, events, segments
from services.customer.identity import age_on
from services.customer.models import (
    Change,
    Collateral,
    Contact,
    Customer,
    Guarantor,
    Owner,
    Relationship,
    Reveal,
)
from services.customer.personal import (
    BUSINESSES,
    PEOPLE,
    FieldErrors,
    encrypt_contact_phone,
    identity_index,
    parse_credit_code,
    parse_mobile,
    parse_resident_id,
    reveal_id_number,
    reveal_operator_id,
    reveal_phone,
    store_operator_id,
    store_phone,
    store_resident_id,
)
from services.customer.schemas import (
    CollateralOut,
    ContactOut,
    CustomerCreate,
    CustomerFields,
    CustomerOut,
    CustomerPatch,
    CustomerSummary,
    GuarantorOut,
    RelationshipIn,
    RelationshipOut,
    TiersOut,
)
from services.customer.tiers import TierPolicyBook

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
_EVENT_FIELDS = ("kind", "name", "org_unit", "business_line", "status", "segment")
_NAME_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


@dataclass(frozen=True)
class CustomerContext:
    """What the customer use cases need beyond the session: events, keys and policy."""

    recorder: EventRecorder
    cipher: FieldCipher
    policies: TierPolicyBook


def business_today() -> date:
    """Today's business date (Asia/Shanghai)."""
    return datetime.now(BUSINESS_TZ).date()


def name_key(name: str) -> str:
    """A name for matching: case, spaces and punctuation do not count."""
    return _NAME_NOISE.sub("", name).lower()


# -- reading ------------------------------------------------------------------------------------
def load_readable(session: Session, caller: Caller, customer_id: str) -> Customer:
    """The customer if the caller may read it; otherwise 404, so existence is not disclosed."""
    customer = session.execute(
        select(Customer).where(Customer.id == customer_id, access.readable(caller))
    ).scalar_one_or_none()
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


def load_writable(session: Session, caller: Caller, customer_id: str) -> Customer:
    customer = load_readable(session, caller, customer_id)
    allowed = session.execute(
        select(Customer.id).where(Customer.id == customer_id, access.writable(caller))
    ).scalar_one_or_none()
    if allowed is None:
        raise Forbidden(f"you may read customer {customer_id} but not change it")
    return customer


def to_out(session: Session, customer: Customer) -> CustomerOut:
    """The customer as callers see it (masked personal data, children loaded explicitly)."""
    contacts = session.scalars(
        select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)
    ).all()
    collaterals = session.scalars(
        select(Collateral).where(Collateral.customer_id == customer.id).order_by(Collateral.id)
    ).all()
    guarantors = session.scalars(
        select(Guarantor).where(Guarantor.customer_id == customer.id).order_by(Guarantor.id)
    ).all()
    return CustomerOut(
        id=customer.id,
        kind=customer.kind,
        segment=customer.segment,
        status=customer.status,
        name=customer.name,
        business_line=customer.business_line,
        org_unit=customer.org_unit,
        market_segment=customer.market_segment,
        ownership_type=customer.ownership_type,
        id_number=customer.id_number_masked,
        credit_code=customer.credit_code,
        operator_id_number=customer.operator_id_masked,
        age=age_on(customer.birth_date, business_today()) if customer.birth_date else None,
        sex=customer.sex,
        phone=customer.phone_masked,
        lost_contact=customer.lost_contact,
        addresses=list(customer.addresses or []),
        core_customer_no=customer.core_customer_no,
        archive_number=customer.archive_number,
        relationship_evaluation=customer.relationship_evaluation,
        cooperation_direction=customer.cooperation_direction,
        importance=customer.importance,
        importance_review_date=customer.importance_review_date,
        profile=dict(customer.profile or {}),
        contacts=[
            ContactOut(
                id=c.id,
                role=c.role,
                name=c.name,
                title=c.title,
                phone=c.phone_masked,
                notes=c.notes,
            )
            for c in contacts
        ],
        collaterals=[CollateralOut.model_validate(c) for c in collaterals],
        guarantors=[GuarantorOut.model_validate(g) for g in guarantors],
        data_source=customer.data_source,
        lawful_basis=customer.lawful_basis,
        tiers=tiers_out(customer),
        merged_into=customer.merged_into,
        erased=customer.erased_at is not None,
        version=customer.version,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def tiers_out(customer: Customer) -> TiersOut:
    return TiersOut(
        value_tier=customer.value_tier,
        wealth_layer=customer.wealth_layer,
        vip_level=customer.vip_level,
        potential_vip=customer.potential_vip,
        product_use_types=list(customer.product_use_types or []),
        invalid=customer.invalid,
        policy_version=customer.tier_policy_version,
        as_of=customer.tiers_as_of,
    )


def summaries(session: Session, customers: Sequence[Customer]) -> list[CustomerSummary]:
    owners: dict[str, list[str]] = {}
    if customers:
        rows = session.execute(
            select(Owner.customer_id, Owner.staff_id)
            .where(Owner.customer_id.in_([c.id for c in customers]))
            .order_by(Owner.customer_id, Owner.role.desc(), Owner.staff_id)
        ).all()
        for customer_id, staff_id in rows:
            owners.setdefault(customer_id, []).append(staff_id)
    return [
        CustomerSummary(
            id=c.id,
            kind=c.kind,
            segment=c.segment,
            status=c.status,
            name=c.name,
            org_unit=c.org_unit,
            business_line=c.business_line,
            market_segment=c.market_segment,
            phone=c.phone_masked,
            lost_contact=c.lost_contact,
            value_tier=c.value_tier,
            wealth_layer=c.wealth_layer,
            vip_level=c.vip_level,
            owners=owners.get(c.id, []),
            version=c.version,
            created_at=c.created_at,
        )
        for c in customers
    ]


# -- creating -----------------------------------------------------------------------------------
def create_customer(
    session: Session, ctx: CustomerContext, cmd: CustomerCreate, caller: Caller
) -> Customer:
    """Enter a customer 客户信息采集: validate identity, store personal data encrypted."""
    if not access.may_create_in(caller, cmd.org_unit):
        raise Forbidden(f"you may not enter customers in {cmd.org_unit}")
    customer = new_customer(ctx, cmd, caller.subject)
    errors = FieldErrors()
    _check_target_basis(cmd.segment.value, cmd.data_source, cmd.lawful_basis, errors)
    _apply_fields(session, ctx, customer, cmd, errors, creating=True)
    if errors:
        raise ValidationFailed("The customer is not valid.", errors=errors.items)
    _ensure_identity_free(session, customer)
    session.add(customer)
    _replace_children(session, ctx, customer, cmd)
    _flush_unique(session, customer)
    log_change(session, customer, "created", caller.subject, {"fields": sorted(_given(cmd))})
    ctx.recorder.record(
        session,
        events.CUSTOMER_CREATED,
        event_payload(customer),
        key=customer.id,
        actor=caller.subject,
    )
    session.commit()
    return customer


def new_customer(ctx: CustomerContext, cmd: CustomerCreate, actor: str) -> Customer:
    now = utcnow()
    return Customer(
        id=str(uuid.uuid4()),
        kind=cmd.kind.value,
        segment=cmd.segment.value,
        status="target" if cmd.segment.value == "target" else "active",
        name=cmd.name,
        name_key=name_key(cmd.name),
        business_line=cmd.business_line.value,
        org_unit=cmd.org_unit,
        lost_contact=True,
        addresses=[],
        profile={},
        product_use_types=[],
        invalid=False,
        created_at=now,
        updated_at=now,
        created_by=actor,
        updated_by=actor,
    )


def _given(fields: CustomerFields) -> set[str]:
    return {k for k in fields.model_fields_set if k != "version"}


def _check_target_basis(
    segment: str, data_source: str | None, lawful_basis: Any, errors: FieldErrors
) -> None:
    """A prospect's data must say where it came from and on what lawful basis (PIPL)."""
    if segment != "target":
        return
    if not data_source:
        errors.add("data_source", "a target customer records where its data came from")
    if lawful_basis is None:
        errors.add("lawful_basis", "a target customer's data needs a lawful basis")


def _apply_fields(
    session: Session,
    ctx: CustomerContext,
    customer: Customer,
    cmd: CustomerFields,
    errors: FieldErrors,
    *,
    creating: bool,
) -> list[str]:
    """Validate and set the given fields; returns the names of those that changed."""
    given = cmd.model_fields_set
    changed: list[str] = []
    today = business_today()
    kind = customer.kind

    def set_plain(name: str, value: Any) -> None:
        if getattr(customer, name) != value:
            setattr(customer, name, value)
            changed.append(name)

    for name in (
        "name",
        "org_unit",
        "archive_number",
        "relationship_evaluation",
        "cooperation_direction",
        "importance_review_date",
        "data_source",
        "core_customer_no",
    ):
        if name in given and (getattr(cmd, name) is not None or name not in {"name", "org_unit"}):
            set_plain(name, getattr(cmd, name))
    if "name" in changed:
        customer.name_key = name_key(customer.name)
    for name in ("business_line", "ownership_type", "importance", "lawful_basis"):
        if name in given:
            value = getattr(cmd, name)
            if value is None and name == "business_line":
                continue
            set_plain(name, value.value if value is not None else None)
    if customer.ownership_type is not None and kind != "corporate":
        errors.add("ownership_type", "only corporate customers carry an ownership type")
    if "market_segment" in given or "business_line" in changed:
        segment = cmd.market_segment if "market_segment" in given else customer.market_segment
        if segment is not None and not segments.is_valid_market_segment(
            customer.business_line, segment
        ):
            errors.add(
                "market_segment",
                f"{segment!r} is not a market segment of the {customer.business_line} line",
            )
        set_plain("market_segment", segment)
    _apply_identity(ctx, customer, cmd, errors, today, changed, creating=creating)
    if "phone" in given:
        phone = parse_mobile(cmd.phone, "phone", errors) if cmd.phone else None
        if phone is not None or not cmd.phone:
            before = customer.phone_index
            store_phone(customer, ctx.cipher, phone)
            if customer.phone_index != before:
                changed.append("phone")
    if "addresses" in given:
        addresses = [a.model_dump() for a in cmd.addresses or []]
        if addresses != (customer.addresses or []):
            customer.addresses = addresses
            changed.append("addresses")
    if "profile" in given:
        profile = cmd.profile.model_dump(exclude_none=True) if cmd.profile else {}
        if profile != (customer.profile or {}):
            customer.profile = profile
            changed.append("profile")
    if creating and kind in PEOPLE | {"individual_business"} and customer.segment == "stock":
        _require(customer, errors)
    return changed


def _require(customer: Customer, errors: FieldErrors) -> None:
    """Identity a stock customer must have (a field already reported as invalid is not repeated)."""
    missing: list[tuple[str, str]] = []
    if customer.kind in PEOPLE and customer.identity_index is None:
        missing.append(("id_number", "a stock customer who is a person needs a resident id number"))
    if customer.kind == "individual_business":
        if customer.identity_index is None:
            missing.append(("credit_code", "an individual business needs its credit code"))
        if customer.operator_id_index is None:
            missing.append(("operator_id_number", "an individual business needs its operator's id"))
    for field_name, reason in missing:
        if not errors.has(field_name):
            errors.add(field_name, reason)


def _apply_identity(
    ctx: CustomerContext,
    customer: Customer,
    cmd: CustomerFields,
    errors: FieldErrors,
    today: date,
    changed: list[str],
    *,
    creating: bool,
) -> None:
    given = cmd.model_fields_set
    kind = customer.kind
    if "id_number" in given and cmd.id_number:
        if kind not in PEOPLE:
            errors.add("id_number", f"a {kind} customer is identified by its credit code")
        else:
            rid = parse_resident_id(cmd.id_number, "id_number", errors, today)
            if rid is not None:
                index = identity_index(ctx.cipher, kind, rid.number, None)
                if index != customer.identity_index:
                    store_resident_id(customer, ctx.cipher, rid)
                    customer.identity_index = index
                    changed.append("id_number")
    if "credit_code" in given and cmd.credit_code:
        if kind not in BUSINESSES:
            errors.add("credit_code", f"a {kind} customer is identified by a resident id number")
        else:
            code = parse_credit_code(cmd.credit_code, "credit_code", errors)
            if code is not None and code != customer.credit_code:
                customer.credit_code = code
                customer.identity_index = identity_index(ctx.cipher, kind, None, code)
                changed.append("credit_code")
    if "operator_id_number" in given and cmd.operator_id_number:
        if kind != "individual_business":
            errors.add("operator_id_number", "only an individual business has an operator")
        else:
            rid = parse_resident_id(cmd.operator_id_number, "operator_id_number", errors, today)
            if rid is not None:
                store_operator_id(customer, ctx.cipher, rid)
                changed.append("operator_id_number")


def _ensure_identity_free(session: Session, customer: Customer) -> None:
    """One identity is one customer: name the existing record instead of making a second."""
    if customer.identity_index is None:
        return
    existing = session.execute(
        select(Customer.id).where(
            Customer.identity_index == customer.identity_index, Customer.id != customer.id
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            "A customer with this identity already exists.",
            existing_customer_id=existing,
            existing_customer=f"{CUSTOMERS_PATH}/{existing}",
        )


def _flush_unique(session: Session, customer: Customer) -> None:
    """Flush, turning a lost race on a unique identity into the same 409 as the check."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        text = str(exc.orig).lower()
        if "core_customer_no" in text:
            raise Conflict(
                "Another customer has this core banking customer number.",
                errors=[{"field": "core_customer_no", "reason": "already used"}],
            ) from exc
        if "identity_index" in text or "unique" in text:
            raise Conflict("A customer with this identity already exists.") from exc
        raise


def _replace_children(
    session: Session, ctx: CustomerContext, customer: Customer, cmd: CustomerFields
) -> list[str]:
    """Contacts, collaterals and guarantors given in a request replace the stored ones."""
    given = cmd.model_fields_set
    changed: list[str] = []
    errors = FieldErrors()
    if "contacts" in given:
        session.execute(delete(Contact).where(Contact.customer_id == customer.id))
        for i, contact in enumerate(cmd.contacts or []):
            enc = masked = None
            if contact.phone:
                phone = parse_mobile(contact.phone, f"contacts.{i}.phone", errors)
                if phone is not None:
                    enc, masked = encrypt_contact_phone(ctx.cipher, phone)
            session.add(
                Contact(
                    customer_id=customer.id,
                    role=contact.role.value,
                    name=contact.name,
                    title=contact.title,
                    phone_enc=enc,
                    phone_masked=masked,
                    notes=contact.notes,
                )
            )
        changed.append("contacts")
    if "collaterals" in given:
        session.execute(delete(Collateral).where(Collateral.customer_id == customer.id))
        for item in cmd.collaterals or []:
            session.add(Collateral(customer_id=customer.id, **item.model_dump(mode="python")))
        changed.append("collaterals")
    if "guarantors" in given:
        session.execute(delete(Guarantor).where(Guarantor.customer_id == customer.id))
        for i, g in enumerate(cmd.guarantors or []):
            if g.guarantor_customer_id and session.get(Customer, g.guarantor_customer_id) is None:
                errors.add(f"guarantors.{i}.guarantor_customer_id", "no such customer")
            session.add(Guarantor(customer_id=customer.id, **g.model_dump(mode="python")))
        changed.append("guarantors")
    if errors:
        session.rollback()
        raise ValidationFailed("The customer is not valid.", errors=errors.items)
    return changed


# -- changing -----------------------------------------------------------------------------------
def update_customer(
    session: Session,
    ctx: CustomerContext,
    customer_id: str,
    patch: CustomerPatch,
    caller: Caller,
    if_match: str | None,
) -> Customer:
    """Change master data, naming the version read: a stale version is refused, not lost."""
    customer = load_writable(session, caller, customer_id)
    _check_version(customer, patch.version, if_match)
    moving_to = patch.org_unit if "org_unit" in patch.model_fields_set else None
    if moving_to is not None and not access.may_create_in(caller, moving_to):
        raise Forbidden(f"you may not move customers to {moving_to}")
    errors = FieldErrors()
    old_status = customer.status
    status_change = _status_change(customer, patch, errors)
    changed = _apply_fields(session, ctx, customer, patch, errors, creating=False)
    if errors:
        session.rollback()
        raise ValidationFailed("The change is not valid.", errors=errors.items)
    if "id_number" in changed or "credit_code" in changed:
        _ensure_identity_free(session, customer)
    changed += _replace_children(session, ctx, customer, patch)
    if status_change is not None:
        customer.status = status_change
        if status_change == "active" and customer.segment == "target":
            customer.segment = "stock"
            changed.append("segment")
        changed.append("status")
    if not changed:
        return customer
    customer.updated_at = utcnow()
    customer.updated_by = caller.subject
    _flush_unique(session, customer)
    log_change(session, customer, "updated", caller.subject, _describe(customer, changed))
    ctx.recorder.record(
        session,
        events.CUSTOMER_UPDATED,
        event_payload(customer, changed=sorted(set(changed))),
        key=customer.id,
        actor=caller.subject,
    )
    if status_change is not None:
        ctx.recorder.record(
            session,
            events.CUSTOMER_STATUS_CHANGED,
            {
                "customer_id": customer.id,
                "old_status": old_status,
                "new_status": status_change,
                "reason": patch.status_reason,
            },
            key=customer.id,
            actor=caller.subject,
        )
    commit_versioned(session, customer_id)
    return customer


def _check_version(customer: Customer, body_version: int | None, if_match: str | None) -> None:
    if if_match is not None:
        expected = if_match.strip().removeprefix("W/").strip('"')
        if expected != str(customer.version):
            raise PreconditionFailed(
                f"customer {customer.id} is at version {customer.version}, not {expected}",
                current_version=customer.version,
            )
        return
    if body_version is None:
        raise PreconditionRequired(
            "Name the version you read: an If-Match header or a version field.",
            errors=[{"field": "version", "reason": "required for an update"}],
        )
    if body_version != customer.version:
        raise Conflict(
            f"customer {customer.id} changed since version {body_version}; read it again",
            current_version=customer.version,
        )


def commit_versioned(session: Session, customer_id: str) -> None:
    """Commit; a concurrent writer that got in first makes this a 409, not a lost update."""
    try:
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(f"customer {customer_id} was changed concurrently; read it again") from exc


def _status_change(customer: Customer, patch: CustomerPatch, errors: FieldErrors) -> str | None:
    if patch.status is None or patch.status.value == customer.status:
        return None
    new = patch.status.value
    if new not in TRANSITIONS[customer.status]:
        allowed = ", ".join(sorted(TRANSITIONS[customer.status])) or "none"
        errors.add("status", f"{customer.status} cannot become {new} (allowed: {allowed})")
        return None
    return new


def _describe(customer: Customer, changed: list[str]) -> dict[str, Any]:
    """The change log entry: new values of plain fields, only the names of personal ones."""
    out: dict[str, Any] = {}
    for name in sorted(set(changed)):
        if name in PERSONAL_FIELDS or name == "profile":
            out[name] = "changed"
        elif name in {"collaterals", "guarantors"}:
            out[name] = "replaced"
        else:
            value = getattr(customer, name, None)
            out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def log_change(
    session: Session, customer: Customer, action: str, actor: str, changes: dict[str, Any]
) -> None:
    session.add(
        Change(
            customer_id=customer.id,
            version=(customer.version or 0) + (0 if action == "created" else 1),
            action=action,
            actor=actor,
            at=utcnow(),
            changes=changes,
        )
    )


def event_payload(customer: Customer, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"customer_id": customer.id}
    data.update({f: getattr(customer, f) for f in _EVENT_FIELDS})
    data.update(
        market_segment=customer.market_segment,
        value_tier=customer.value_tier,
        wealth_layer=customer.wealth_layer,
        vip_level=customer.vip_level,
        core_customer_no=customer.core_customer_no,
    )
    data.update(extra)
    return data


def list_changes(session: Session, caller: Caller, customer_id: str) -> list[Change]:
    load_readable(session, caller, customer_id)
    return list(
        session.scalars(
            select(Change).where(Change.customer_id == customer_id).order_by(Change.id)
        ).all()
    )


# -- personal data ------------------------------------------------------------------------------
def reveal(
    session: Session,
    ctx: CustomerContext,
    customer_id: str,
    fields: list[str],
    reason: str,
    caller: Caller,
) -> tuple[dict[str, Any], int]:
    """Personal data in clear for a role that may see it, on a record it may read; audited."""
    if not access.may_reveal(caller):
        raise Forbidden("your role may not reveal personal data")
    customer = load_readable(session, caller, customer_id)
    values: dict[str, Any] = {}
    for name in fields:
        if name == "id_number":
            values[name] = reveal_id_number(customer, ctx.cipher)
        elif name == "operator_id_number":
            values[name] = reveal_operator_id(customer, ctx.cipher)
        elif name == "phone":
            values[name] = reveal_phone(customer, ctx.cipher)
        elif name == "contact_phones":
            contacts = session.scalars(
                select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)
            ).all()
            values[name] = [
                {"contact_id": c.id, "name": c.name, "phone": _decrypt_contact(ctx, c)}
                for c in contacts
            ]
    audit = _audit(session, customer.id, sorted(values), reason, caller)
    session.commit()
    return values, audit.id


def _decrypt_contact(ctx: CustomerContext, contact: Contact) -> str | None:
    from services.customer.personal import CONTACT_PHONE_CONTEXT

    if contact.phone_enc is None:
        return None
    return ctx.cipher.decrypt(contact.phone_enc, context=CONTACT_PHONE_CONTEXT)


def _audit(
    session: Session, customer_id: str, fields: list[str], reason: str, caller: Caller
) -> Reveal:
    entry = Reveal(
        customer_id=customer_id,
        fields=fields,
        actor=caller.subject,
        roles=sorted(caller.roles),
        reason=reason,
        at=utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry


def look_up(
    session: Session,
    ctx: CustomerContext,
    caller: Caller,
    id_number: str | None,
    credit_code: str | None,
) -> Customer:
    """Find a customer by identity number (a teller serving someone at the counter); audited."""
    if not access.may_look_up(caller):
        raise Forbidden("your role may not look customers up by identity")
    errors = FieldErrors()
    index: str | None = None
    if id_number:
        rid = parse_resident_id(id_number, "id_number", errors, business_today())
        if rid is not None:
            index = identity_index(ctx.cipher, "individual", rid.number, None)
    elif credit_code:
        code = parse_credit_code(credit_code, "credit_code", errors)
        if code is not None:
            index = identity_index(ctx.cipher, "corporate", None, code)
    else:
        errors.add("id_number", "give an id_number or a credit_code")
    if errors or index is None:
        raise ValidationFailed("The identity is not valid.", errors=errors.items)
    customer = session.execute(
        select(Customer).where(Customer.identity_index == index, access.lookup_scope(caller))
    ).scalar_one_or_none()
    if customer is None:
        raise NotFound("no customer with this identity")
    _audit(session, customer.id, [], "lookup by identity", caller)
    session.commit()
    return customer


# -- lists --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerFilter:
    kind: str | None = None
    segment: str | None = None
    status: str | None = None
    value_tier: str | None = None
    wealth_layer: str | None = None
    vip_level: str | None = None
    org_unit: str | None = None
    market_segment: str | None = None
    owner: str | None = None
    lost_contact: bool | None = None
    potential_vip: str | None = None
    q: str | None = None
    include_merged: bool = False


def list_customers(
    session: Session, caller: Caller, flt: CustomerFilter, limit: int, cursor: str | None
) -> tuple[list[Customer], str | None]:
    """Customers in the caller's scope, filtered, in a stable order, one cursor page."""
    query = select(Customer).where(access.readable(caller))
    if not flt.include_merged:
        query = query.where(Customer.merged_into.is_(None))
    for name in (
        "kind",
        "segment",
        "status",
        "value_tier",
        "wealth_layer",
        "vip_level",
        "potential_vip",
        "market_segment",
        "lost_contact",
    ):
        value = getattr(flt, name)
        if value is not None:
            query = query.where(getattr(Customer, name) == value)
    if flt.org_unit:
        scope = flt.org_unit.rstrip("/")
        query = query.where(
            or_(Customer.org_unit == scope, Customer.org_unit.startswith(scope + "/"))
        )
    if flt.owner:
        query = query.where(
            Customer.id.in_(select(Owner.customer_id).where(Owner.staff_id == flt.owner))
        )
    if flt.q:
        key = name_key(flt.q)
        if key:
            query = query.where(Customer.name_key.contains(key, autoescape=True))
    if cursor:
        after_at, after_id = decode_cursor(cursor)
        query = query.where(
            or_(
                Customer.created_at > after_at,
                and_(Customer.created_at == after_at, Customer.id > after_id),
            )
        )
    rows = list(
        session.scalars(query.order_by(Customer.created_at, Customer.id).limit(limit + 1)).all()
    )
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def encode_cursor(customer: Customer) -> str:
    raw = f"{customer.created_at.isoformat()}|{customer.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, customer_id = raw.split("|", 1)
        return datetime.fromisoformat(at), customer_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "The cursor is not valid.", errors=[{"field": "cursor", "reason": "not a cursor"}]
        ) from exc


# -- relationships ------------------------------------------------------------------------------
def add_relationship(
    session: Session, customer_id: str, cmd: RelationshipIn, caller: Caller
) -> Relationship:
    customer = load_writable(session, caller, customer_id)
    if cmd.to_customer_id == customer.id:
        raise ValidationFailed(
            "A customer cannot be related to itself.",
            errors=[{"field": "to_customer_id", "reason": "same customer"}],
        )
    other = load_readable(session, caller, cmd.to_customer_id)
    link = Relationship(
        from_customer_id=customer.id,
        to_customer_id=other.id,
        type=cmd.type.value,
        note=cmd.note,
        created_at=utcnow(),
    )
    session.add(link)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("This relationship is already recorded.") from exc
    log_change(
        session,
        customer,
        "relationship_added",
        caller.subject,
        {"type": cmd.type.value, "to_customer_id": other.id},
    )
    session.commit()
    return link


def list_relationships(session: Session, customer_id: str, caller: Caller) -> list[RelationshipOut]:
    """Both directions; the other side's name only when the caller may read it."""
    load_readable(session, caller, customer_id)
    links = session.scalars(
        select(Relationship)
        .where(
            or_(
                Relationship.from_customer_id == customer_id,
                Relationship.to_customer_id == customer_id,
            )
        )
        .order_by(Relationship.id)
    ).all()
    others = {
        link.to_customer_id if link.from_customer_id == customer_id else link.from_customer_id
        for link in links
    }
    visible = dict(
        session.execute(
            select(Customer.id, Customer.name).where(
                Customer.id.in_(others), access.readable(caller)
            )
        )
        .tuples()
        .all()
    )
    out = []
    for link in links:
        outgoing = link.from_customer_id == customer_id
        other = link.to_customer_id if outgoing else link.from_customer_id
        out.append(
            RelationshipOut(
                id=link.id,
                type=link.type,
                direction="outgoing" if outgoing else "incoming",
                customer_id=customer_id,
                other_customer_id=other,
                other_name=visible.get(other, "(outside your scope)"),
                note=link.note,
                created_at=link.created_at,
            )
        )
    return out


def ensure_policy_allows_erasure(customer: Customer) -> None:
    if customer.kind not in PEOPLE | {"individual_business"}:
        raise PolicyViolation("only natural persons' records are erased on a data subject request")
    if customer.status not in {"target", "closed"}:
        raise PolicyViolation(
            "a customer with an open relationship keeps its records (retention duty); "
            "close the relationship first"
        )
