"""The teller identification register 柜员识别客户登记表 (附件6).

A teller — or any front-line staff member at the counter or in the lobby — flags a promising
walk-in customer with what was observed: the business handled and its amount, why (funds, a
product need, another bank's customer, a business owner), a preliminary value judgement and the
customer or wealth manager it is referred to, who later records the follow-up result. The entry
is published as ``lead.identified``, which the assignment service turns into a target-list
entry: that event carries no phone and only the masked identity number.

Personal data follows the customer service's rule: the identity number and the phone are
validated, stored encrypted (:class:`crmkit.crypto.FieldCipher`) with their masked forms beside
them, shown masked in every response and report, and revealed in clear only to the referred
manager, the heads of the outlet and administrators, with a reason, each reveal audited.

Readers: the staff member who recorded an entry, the manager it was referred to, the heads of
the outlet's subtree, auditors and administrators.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.clock import business_today
from crmkit.crypto import FieldCipher
from crmkit.csvout import BOM, csv_cell
from crmkit.db import count_rows, in_subtree, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.identity import mask_phone, mask_resident_id, normalize_mobile, validate_resident_id
from crmkit.outbox import recorder_of
from crmkit.schemas import CustomerKind
from crmkit.settings import VAR_DIR
from services.visits import events
from services.visits.access import FRONT_LINE, HEADS, ROLE_AUDITOR, may_manage, may_read_unit
from services.visits.models import customer_refs
from services.visits.models_marketing import TellerLead, TellerLeadReveal
from services.visits.schemas_marketing import (
    FlagReason,
    ReferredRole,
    RegisterSummary,
    ResultIn,
    RevealableField,
    TellerLeadIn,
    TellerLeadOut,
    TellerRegisterRow,
)
from services.visits.settings import VisitsSettings

LEADS_PATH = "/api/v1/leads"
_ID_CONTEXT = "teller_leads.national_id"
_PHONE_CONTEXT = "teller_leads.phone"
_RATE_PLACES = Decimal("0.0001")
_LINE_OF_KIND = {
    CustomerKind.individual.value: "personal",
    CustomerKind.farm_household.value: "agricultural",
    CustomerKind.individual_business.value: "corporate",
    CustomerKind.corporate.value: "corporate",
    CustomerKind.institution.value: "corporate",
}


# -- keys ---------------------------------------------------------------------------------------
def register_cipher(settings: VisitsSettings) -> FieldCipher:
    """The cipher of the register: the service's keys, else the development keys."""
    return _cipher(
        settings.field_encryption_keys,
        settings.field_active_key_id,
        settings.field_index_key,
        VAR_DIR,
    )


@lru_cache(maxsize=8)
def _cipher(encryption_keys: str, active_key_id: str, index_key: str, var_dir: Path) -> FieldCipher:
    if encryption_keys:
        return FieldCipher.from_config(encryption_keys, active_key_id, index_key)
    return FieldCipher.for_development(var_dir / "keys")


# -- access -------------------------------------------------------------------------------------
def may_identify(caller: Caller) -> bool:
    """Front-line staff (tellers, lobby managers, managers, heads) keep the register."""
    return caller.has_role(ROLE_ADMIN, *FRONT_LINE)


def may_reveal(caller: Caller, lead: TellerLead) -> bool:
    """The referred manager, heads of the outlet's subtree and administrators."""
    return lead.referred_to == caller.subject or may_manage(caller, lead.org_unit)


def may_record_result(caller: Caller, lead: TellerLead) -> bool:
    return lead.referred_to == caller.subject or may_manage(caller, lead.org_unit)


def _scope(caller: Caller) -> ColumnElement[bool] | None:
    """The entries the caller reads (None: all of them)."""
    if caller.has_role(ROLE_ADMIN, ROLE_AUDITOR):
        return None
    own = or_(TellerLead.teller_id == caller.subject, TellerLead.referred_to == caller.subject)
    if caller.has_role(*HEADS):
        return own | in_subtree(TellerLead.org_unit, caller.org_unit)
    return own


def _visible(caller: Caller, lead: TellerLead) -> bool:
    if caller.has_role(ROLE_ADMIN, ROLE_AUDITOR):
        return True
    return caller.subject in (lead.teller_id, lead.referred_to) or may_manage(caller, lead.org_unit)


def load(session: Session, lead_id: str, caller: Caller, *, lock: bool = False) -> TellerLead:
    """The entry, if the caller reads it (404 otherwise, as if it did not exist)."""
    query = select(TellerLead).where(TellerLead.id == lead_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    lead = session.scalars(query).one_or_none()
    if lead is None or not _visible(caller, lead):
        raise NotFound(f"no register entry {lead_id}")
    return lead


# -- recording ----------------------------------------------------------------------------------
def _known_customer(session: Session, customer_id: str) -> tuple[str, str, str]:
    row = session.execute(
        select(customer_refs.c.name, customer_refs.c.kind, customer_refs.c.business_line).where(
            customer_refs.c.customer_id == customer_id
        )
    ).one_or_none()
    if row is None:
        raise ValidationFailed(
            f"no customer {customer_id} is known to the visits service",
            errors=[{"field": "customer_id", "reason": "unknown customer"}],
        )
    return str(row.name), str(row.kind), str(row.business_line)


def _checked(body: TellerLeadIn, today: date) -> tuple[str | None, str | None]:
    """The normalised identity number and phone; 422 with every problem found."""
    errors: list[dict[str, str]] = []
    number = phone = None
    if body.national_id:
        try:
            number = validate_resident_id(body.national_id, today).number
        except ValueError as exc:
            errors.append({"field": "national_id", "reason": str(exc)})
    if body.phone:
        try:
            phone = normalize_mobile(body.phone)
        except ValueError as exc:
            errors.append({"field": "phone", "reason": str(exc)})
    if body.identified_on is not None and body.identified_on > today:
        errors.append({"field": "identified_on", "reason": "a business date not after today"})
    if body.customer_id is None and not body.name:
        errors.append({"field": "name", "reason": "required when no customer_id is given"})
    if FlagReason.other in body.reasons and not body.observation:
        errors.append({"field": "observation", "reason": "say what was seen with reason other"})
    if body.referred_role is not None and body.referred_to is None:
        errors.append({"field": "referred_to", "reason": "required with referred_role"})
    if errors:
        raise ValidationFailed("The register entry is not valid.", errors=errors)
    return number, phone


def identify(
    session: Session,
    cipher: FieldCipher,
    body: TellerLeadIn,
    caller: Caller,
    today: date | None = None,
) -> TellerLead:
    """Record a flagged walk-in at the caller's outlet and publish ``lead.identified``."""
    if not may_identify(caller):
        raise Forbidden("only front-line staff (tellers, lobby and customer managers) flag leads")
    day = today or business_today()
    number, phone = _checked(body, day)
    if body.customer_id is not None:
        name, kind, line = _known_customer(session, body.customer_id)
    else:
        assert body.name is not None
        name = body.name
        kind = (body.kind or CustomerKind.individual).value
        line = _LINE_OF_KIND[kind]
    lead = TellerLead(
        id=str(uuid.uuid4()),
        identified_on=body.identified_on or day,
        org_unit=caller.org_unit.rstrip("/") or "/",
        teller_id=caller.subject,
        customer_id=body.customer_id,
        name=name,
        kind=kind,
        business_line=body.business_line.value if body.business_line else line,
        id_number_enc=cipher.encrypt(number, context=_ID_CONTEXT) if number else None,
        id_number_masked=mask_resident_id(number) if number else None,
        phone_enc=cipher.encrypt(phone, context=_PHONE_CONTEXT) if phone else None,
        phone_masked=mask_phone(phone) if phone else None,
        business=body.business,
        amount=body.amount,
        reasons=list(dict.fromkeys(r.value for r in body.reasons)),
        observation=body.observation,
        current_bank=body.current_bank,
        preliminary_value=body.preliminary_value.value,
        potential_vip=body.potential_vip,
        referred_to=body.referred_to,
        referred_role=(
            (body.referred_role or ReferredRole.customer_manager).value
            if body.referred_to
            else None
        ),
        created_at=utcnow(),
    )
    session.add(lead)
    _publish(session, lead, caller.subject)
    session.commit()
    return lead


def _publish(session: Session, lead: TellerLead, actor: str) -> None:
    """``lead.identified``: what the target list needs, no phone and the identity masked."""
    recorder_of(session).record(
        session,
        events.LEAD_IDENTIFIED,
        {
            "lead_id": lead.id,
            "org_unit": lead.org_unit,
            "identified_on": lead.identified_on.isoformat(),
            "identified_at": lead.created_at.isoformat(),
            "teller_id": lead.teller_id,
            "customer_id": lead.customer_id,
            "name": lead.name,
            "id_number_masked": lead.id_number_masked,
            "kind": lead.kind,
            "business_line": lead.business_line,
            "reasons": lead.reasons,
            "preliminary_value": lead.preliminary_value,
            "potential_vip": lead.potential_vip,
            "current_bank": lead.current_bank,
            "referred_to": lead.referred_to,
            "referred_role": lead.referred_role,
        },
        key=lead.id,
        actor=actor,
    )


def record_result(session: Session, lead_id: str, body: ResultIn, caller: Caller) -> TellerLead:
    """The follow-up result 跟进结果, by the referred manager or a head of the outlet (again
    later as the follow-up goes on: the latest result stands)."""
    lead = load(session, lead_id, caller, lock=True)
    if not may_record_result(caller, lead):
        raise Forbidden(
            "the follow-up result is recorded by the manager the entry was referred to "
            f"({lead.referred_to or 'nobody yet'}) or a head of {lead.org_unit}"
        )
    lead.result = body.result.value
    lead.result_note = body.note
    lead.result_at = utcnow()
    lead.result_by = caller.subject
    try:
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(f"register entry {lead_id} was changed concurrently; read it again") from exc
    return lead


def reveal(
    session: Session,
    cipher: FieldCipher,
    lead_id: str,
    field: RevealableField,
    reason: str,
    caller: Caller,
) -> tuple[str | None, int]:
    """The identity number or phone in clear, for the referred manager, heads of the outlet and
    administrators; audited (who, when, with which roles, why) in the same transaction."""
    lead = load(session, lead_id, caller)
    if not may_reveal(caller, lead):
        raise Forbidden(
            "personal data of a register entry is revealed to the manager it was referred to, "
            f"the heads of {lead.org_unit} and administrators"
        )
    if field is RevealableField.national_id:
        token, context = lead.id_number_enc, _ID_CONTEXT
    else:
        token, context = lead.phone_enc, _PHONE_CONTEXT
    value = cipher.decrypt(token, context=context) if token else None
    audit = TellerLeadReveal(
        lead_id=lead.id,
        field=field.value,
        actor=caller.subject,
        roles=sorted(caller.roles),
        reason=reason,
        at=utcnow(),
    )
    session.add(audit)
    session.flush()
    audit_id = audit.id
    session.commit()
    return value, audit_id


def erase_customer(session: Session, customer_id: str) -> None:
    """A data subject's erasure (``customer.erased``): the entries naming the customer lose the
    name, identity number and phone; what was flagged and its result stay, anonymous."""
    session.execute(
        update(TellerLead)
        .where(TellerLead.customer_id == customer_id)
        .values(
            name="(erased)",
            id_number_enc=None,
            id_number_masked=None,
            phone_enc=None,
            phone_masked=None,
            observation=None,
        )
        .execution_options(synchronize_session=False)
    )


# -- reading ------------------------------------------------------------------------------------
def out(lead: TellerLead, caller: Caller) -> TellerLeadOut:
    return TellerLeadOut(
        id=lead.id,
        identified_on=lead.identified_on,
        org_unit=lead.org_unit,
        teller_id=lead.teller_id,
        customer_id=lead.customer_id,
        name=lead.name,
        kind=lead.kind,
        business_line=lead.business_line,
        national_id=lead.id_number_masked,
        phone=lead.phone_masked,
        business=lead.business,
        amount=lead.amount,
        reasons=lead.reasons,
        observation=lead.observation,
        current_bank=lead.current_bank,
        preliminary_value=lead.preliminary_value,
        potential_vip=lead.potential_vip,
        referred_to=lead.referred_to,
        referred_role=lead.referred_role,
        result=lead.result,
        result_note=lead.result_note,
        result_at=lead.result_at,
        result_by=lead.result_by,
        version=lead.version,
        created_at=lead.created_at,
        may_reveal=may_reveal(caller, lead),
    )


def _period(query_from: date | None, query_to: date | None, today: date) -> tuple[date, date]:
    """The period asked for: by default from the first of the month of ``to`` (today)."""
    date_to = query_to or today
    date_from = query_from or date_to.replace(day=1)
    if date_from > date_to:
        raise ValidationFailed(
            "the period ends before it starts",
            errors=[{"field": "from", "reason": "after to"}],
        )
    return date_from, date_to


def list_leads(
    session: Session,
    caller: Caller,
    *,
    org_unit: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> tuple[list[TellerLead], int]:
    """The entries the caller reads, newest first, within ``org_unit`` and the dates given."""
    query = select(TellerLead)
    scope = _scope(caller)
    if scope is not None:
        query = query.where(scope)
    if org_unit:
        query = query.where(in_subtree(TellerLead.org_unit, org_unit))
    if date_from is not None:
        query = query.where(TellerLead.identified_on >= date_from)
    if date_to is not None:
        query = query.where(TellerLead.identified_on <= date_to)
    total = count_rows(session, query)
    query = query.order_by(
        TellerLead.identified_on.desc(), TellerLead.created_at.desc(), TellerLead.id
    ).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query)), int(total)


def report_scope(
    caller: Caller,
    org_unit: str | None,
    date_from: date | None,
    date_to: date | None,
    today: date | None = None,
) -> tuple[str, date, date]:
    """The unit (the caller's by default) and period of the report; 403 outside the caller's
    reach: heads of the unit, auditors and administrators read it."""
    unit = (org_unit or caller.org_unit).rstrip("/") or "/"
    if not may_read_unit(caller, unit):
        raise Forbidden(
            f"the teller register of {unit} is read by heads of its subtree, auditors and "
            "administrators"
        )
    start, end = _period(date_from, date_to, today or business_today())
    return unit, start, end


def register_rows(leads: list[TellerLead]) -> list[TellerRegisterRow]:
    return [
        TellerRegisterRow(
            id=x.id,
            identified_on=x.identified_on,
            org_unit=x.org_unit,
            teller_id=x.teller_id,
            customer_id=x.customer_id,
            name=x.name,
            national_id=x.id_number_masked,
            phone=x.phone_masked,
            business=x.business,
            amount=x.amount,
            reasons=x.reasons,
            preliminary_value=x.preliminary_value,
            potential_vip=x.potential_vip,
            referred_to=x.referred_to,
            referred_role=x.referred_role,
            result=x.result,
            result_note=x.result_note,
        )
        for x in leads
    ]


def summary(session: Session, unit: str, date_from: date, date_to: date) -> RegisterSummary:
    """Entries of the period in ``unit``: flagged, referred, followed up, converted."""
    where = (
        in_subtree(TellerLead.org_unit, unit),
        TellerLead.identified_on >= date_from,
        TellerLead.identified_on <= date_to,
    )
    identified, referred, followed, converted = session.execute(
        select(
            func.count(),
            func.count(TellerLead.referred_to),
            func.count(TellerLead.result),
            func.count().filter(TellerLead.result == "converted"),
        ).where(*where)
    ).one()
    rate = (Decimal(converted) / Decimal(referred)).quantize(_RATE_PLACES) if referred else None
    return RegisterSummary(
        identified=int(identified),
        referred=int(referred),
        followed_up=int(followed),
        converted=int(converted),
        conversion_rate=rate,
    )


CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("identified_on", "日期"),
    ("org_unit", "网点"),
    ("teller_id", "柜员"),
    ("name", "客户名称"),
    ("national_id", "身份证号"),
    ("phone", "联系电话"),
    ("customer_id", "客户号"),
    ("business", "办理业务"),
    ("amount", "金额"),
    ("reasons", "识别原因"),
    ("preliminary_value", "初步价值判断"),
    ("potential_vip", "潜在贵宾客户"),
    ("referred_to", "推荐给"),
    ("referred_role", "推荐岗位"),
    ("result", "跟进结果"),
    ("result_note", "跟进说明"),
    ("id", "编号"),
)


def to_csv(rows: list[TellerRegisterRow]) -> str:
    """附件6 as CSV for Excel: a byte-order mark, English headers with the Chinese term, the
    identity number and phone masked."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([f"{name} ({term})" for name, term in CSV_COLUMNS])
    for row in rows:
        values = row.model_dump()
        values["potential_vip"] = "yes" if row.potential_vip else "no"
        writer.writerow([csv_cell(values[name]) for name, _ in CSV_COLUMNS])
    return buffer.getvalue()
