"""Customers, owners, figures and rating events delivered to a consuming service under test as
production delivers them: as events applied by the service's own consumer (inbox, handlers).
Shared by the test packages of the services that consume them."""

from __future__ import annotations

import itertools
import json
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from crmkit.consumer import RawRecord
from crmkit.events import EventSpec, build_envelope
from crmkit.runtime import ServiceRuntime
from services.assignment.events import OWNERSHIP_ASSIGNED
from services.customer.events import (
    CUSTOMER_CREATED,
    CUSTOMER_FINANCIALS_UPDATED,
    CUSTOMER_STATUS_CHANGED,
)
from services.rating.events import CREDIT_LIMIT_APPROVED, RISK_FLAGGED
from tests.customer.conftest import Api


def runtime_of(api: Api) -> ServiceRuntime:
    runtime: ServiceRuntime = api.client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


_offsets = itertools.count()


def deliver(api: Api, spec: EventSpec, data: dict[str, Any], *, key: str, actor: str) -> None:
    """Apply one event through the service's own consumer path (inbox, handlers)."""
    envelope = build_envelope(spec, data, source=spec.stream, key=key, actor=actor)
    record = RawRecord(f"crm.{spec.stream}", 0, next(_offsets), envelope.to_bytes())
    runtime_of(api).applier.apply_batch([record])


def known_customer(
    api: Api,
    *,
    kind: str = "individual",
    org_unit: str = "/HQ/U01/B01",
    name: str = "Zhang San",
    business_line: str = "personal",
    owner: str | None = "manager.li",
    vip_level: str | None = None,
    value_tier: str | None = None,
    wealth_layer: str | None = None,
    status: str = "active",
) -> str:
    """A customer the service learns of from ``customer.created``, owned by ``owner`` (from
    ``ownership.assigned``)."""
    customer_id = str(uuid.uuid4())
    deliver(
        api,
        CUSTOMER_CREATED,
        {
            "customer_id": customer_id,
            "kind": kind,
            "name": name,
            "org_unit": org_unit,
            "business_line": business_line,
            "status": status,
            "segment": "target" if status == "target" else "stock",
            "vip_level": vip_level,
            "value_tier": value_tier,
            "wealth_layer": wealth_layer,
        },
        key=customer_id,
        actor="manager.li",
    )
    if owner is not None:
        owned_by(api, customer_id, owner, org_unit=org_unit)
    return customer_id


def owned_by(
    api: Api,
    customer_id: str,
    staff_id: str,
    *,
    org_unit: str = "/HQ/U01/B01",
    role: str = "owner",
) -> None:
    deliver(
        api,
        OWNERSHIP_ASSIGNED,
        {
            "customer_id": customer_id,
            "staff_id": staff_id,
            "role": role,
            "org_unit": org_unit,
            "effective_at": "2026-11-01T00:00:00Z",
        },
        key=customer_id,
        actor="head.sun",
    )


def financials(
    api: Api,
    customer_id: str,
    business_date: str,
    *,
    deposits: str = "0.00",
    loans: str = "0.00",
    aum: str | None = None,
    overdue_amount: str = "0.00",
    products: list[str] | None = None,
) -> None:
    """Core banking's figures of the customer on a day (``customer.financials_updated``)."""
    zero = "0.00"
    deliver(
        api,
        CUSTOMER_FINANCIALS_UPDATED,
        {
            "customer_id": customer_id,
            "business_date": business_date,
            "deposits": deposits,
            "loans": loans,
            "personal_loans": loans,
            "aum": aum if aum is not None else deposits,
            "card_annual_spend": zero,
            "custody_margin": zero,
            "overdue_amount": overdue_amount,
            "net_interest_contribution": zero,
            "fee_income": zero,
            "card_level": None,
            "products": products if products is not None else ["deposit"],
        },
        key=customer_id,
        actor="core-banking",
    )


def status_changed(api: Api, customer_id: str, old: str, new: str, reason: str = "test") -> None:
    deliver(
        api,
        CUSTOMER_STATUS_CHANGED,
        {"customer_id": customer_id, "old_status": old, "new_status": new, "reason": reason},
        key=customer_id,
        actor="manager.li",
    )


def risk_flagged(api: Api, customer_id: str, level: str = "warning") -> None:
    deliver(
        api,
        RISK_FLAGGED,
        {
            "customer_id": customer_id,
            "flag_id": str(uuid.uuid4()),
            "org_unit": "/HQ/U01/B01",
            "level": level,
            "source": "manual",
            "signal": "manual",
            "reason": "seen at the market",
            "flagged_by": "risk.he",
            "risk_status": level,
        },
        key=customer_id,
        actor="risk.he",
    )


def limit_approved(api: Api, customer_id: str, expiry_date: str = "2027-11-29") -> None:
    deliver(
        api,
        CREDIT_LIMIT_APPROVED,
        {
            "customer_id": customer_id,
            "credit_limit_id": str(uuid.uuid4()),
            "grade": "A",
            "total_amount": "300000.00",
            "credit_amount": "100000.00",
            "guaranteed_amount": "0.00",
            "secured_amount": "200000.00",
            "sub_limits": [],
            "revolving": True,
            "start_date": "2026-11-30",
            "expiry_date": expiry_date,
            "decided_by": "approver.qian",
            "by_committee": False,
        },
        key=customer_id,
        actor="approver.qian",
    )


def events_of(api: Api, event_type: str) -> list[dict[str, Any]]:
    """The payloads of the events of ``event_type`` the service recorded, oldest first."""
    runtime = runtime_of(api)
    outbox = runtime.tables.outbox
    with runtime.session_factory() as session:
        rows = session.execute(
            select(outbox.c.envelope)
            .where(outbox.c.event_type == event_type)
            .order_by(outbox.c.seq)
        ).scalars()
        return [json.loads(row)["data"] for row in rows]


def money(value: str) -> Decimal:
    return Decimal(value)
