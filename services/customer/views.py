"""Customer records as callers see them: the response schemas, personal data masked."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.identity import age_on
from services.customer.domain import business_today
from services.customer.models import (
    Collateral,
    Contact,
    Customer,
    Guarantor,
    Owner,
)
from services.customer.schemas import (
    CollateralOut,
    ContactOut,
    CustomerOut,
    CustomerSummary,
    GuarantorOut,
    TiersOut,
)


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
            .order_by(Owner.customer_id, Owner.role != "owner", Owner.staff_id)  # owner first
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
