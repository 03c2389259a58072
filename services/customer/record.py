"""Applying a request's fields to a customer record: validation, identity and children."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.errors import (
    Conflict,
    ValidationFailed,
)
from services.customer import segments
from services.customer.context import CustomerContext
from services.customer.domain import CUSTOMERS_PATH, business_today, set_name
from services.customer.models import (
    Collateral,
    Contact,
    Customer,
    Guarantor,
)
from services.customer.personal import (
    BUSINESSES,
    PEOPLE,
    FieldErrors,
    encrypt_contact_phone,
    identity_index,
    operator_index,
    parse_credit_code,
    parse_mobile,
    parse_resident_id,
    store_operator_id,
    store_phone,
    store_resident_id,
)
from services.customer.schemas import (
    CustomerFields,
)


def given_fields(fields: CustomerFields) -> set[str]:
    return {k for k in fields.model_fields_set if k != "version"}


def check_target_basis(
    segment: str, data_source: str | None, lawful_basis: Any, errors: FieldErrors
) -> None:
    """A prospect's data must say where it came from and on what lawful basis (PIPL)."""
    if segment != "target":
        return
    if not data_source:
        errors.add("data_source", "a target customer records where its data came from")
    if lawful_basis is None:
        errors.add("lawful_basis", "a target customer's data needs a lawful basis")


def apply_fields(
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
        set_name(customer, customer.name)
    for name in ("business_line", "ownership_type", "importance", "lawful_basis"):
        if name in given:
            value = getattr(cmd, name)
            if value is None and name == "business_line":
                continue
            set_plain(name, value.value if value is not None else None)
    if customer.ownership_type is not None and kind != "corporate":
        errors.add("ownership_type", "only corporate customers carry an ownership type")
    industry_segment = _industry_segment(customer, cmd, errors)
    if "market_segment" in given or "business_line" in changed or industry_segment:
        segment = cmd.market_segment if "market_segment" in given else customer.market_segment
        segment = industry_segment or segment
        if segment is not None and not segments.is_valid_market_segment(
            customer.business_line, segment
        ):
            errors.add(
                "market_segment",
                f"{segment!r} is not a market segment of the {customer.business_line} line",
            )
        set_plain("market_segment", segment)
    apply_identity(ctx, customer, cmd, errors, today, changed, creating=creating)
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
        require(customer, errors)
    return changed


def _industry_segment(customer: Customer, cmd: CustomerFields, errors: FieldErrors) -> str | None:
    """The corporate industry group a GB/T 4754-2017 code maps to (core banking's imports carry
    the national code; the bank groups by its own 15 sub-markets)."""
    if not cmd.industry_code or (cmd.market_segment and "market_segment" in cmd.model_fields_set):
        return None
    if customer.business_line != "corporate":
        errors.add("industry_code", "industry groups segment the corporate market only")
        return None
    try:
        return segments.industry_group_for_gbt4754(cmd.industry_code)
    except segments.UnknownIndustryCode as exc:
        errors.add("industry_code", str(exc))
        return None


def require(customer: Customer, errors: FieldErrors) -> None:
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


def apply_identity(
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
            # The same number again is no change (its ciphertext would differ: fresh nonce).
            if rid is not None and operator_index(ctx.cipher, rid) != customer.operator_id_index:
                store_operator_id(customer, ctx.cipher, rid)
                changed.append("operator_id_number")


def ensure_identity_free(session: Session, customer: Customer) -> None:
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


def flush_unique(session: Session, customer: Customer) -> None:
    """Flush, turning a lost race into a 409: on a unique identity (the same answer as the
    check before it) or on the version (another writer changed the record since it was read)."""
    try:
        session.flush()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(f"customer {customer.id} was changed concurrently; read it again") from exc
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


def replace_children(
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
