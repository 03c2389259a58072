"""Wire contract of the customer service: requests and responses, snake_case, money as strings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from crmkit.schemas import CustomerKind, Importance

T = TypeVar("T")

# CNY with two places; on the wire an exact decimal string, never a float.
Money = Annotated[
    Decimal,
    Field(max_digits=18, decimal_places=2),
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
NonNegativeMoney = Annotated[Money, Field(ge=0)]
OrgUnit = Annotated[
    str,
    Field(
        pattern=r"^/[A-Za-z0-9_/-]*$",
        max_length=200,
        description="Org-unit path of the branch the relationship belongs to, e.g. /HQ/U01/B01",
    ),
]


class BusinessLine(StrEnum):
    agricultural = "agricultural"
    corporate = "corporate"
    personal = "personal"


class Segment(StrEnum):
    stock = "stock"
    target = "target"


class Status(StrEnum):
    target = "target"
    active = "active"
    dormant = "dormant"
    lost = "lost"
    closed = "closed"


class OwnershipType(StrEnum):
    """Ownership of a corporate customer (所有制)."""

    state = "state"
    collective = "collective"
    private = "private"
    foreign = "foreign"
    mixed = "mixed"


class LawfulBasis(StrEnum):
    """Lawful bases of PIPL art. 13 a prospect's personal data may rest on."""

    consent = "consent"
    contract = "contract"
    legal_obligation = "legal_obligation"
    public_information = "public_information"


class ContactRole(StrEnum):
    decision_maker = "decision_maker"
    lead_source = "lead_source"
    operator = "operator"
    other = "other"


class CollateralType(StrEnum):
    real_estate = "real_estate"
    land_use_right = "land_use_right"
    vehicle = "vehicle"
    equipment = "equipment"
    deposit_receipt = "deposit_receipt"
    inventory = "inventory"
    receivables = "receivables"
    other = "other"


class RelationshipType(StrEnum):
    """How two customers are linked."""

    group_member = "group_member"  # from: member, to: group parent 集团客户
    related_party = "related_party"
    upstream = "upstream"  # from: supplier, to: the customer it supplies
    guarantor_of = "guarantor_of"  # from: guarantor, to: the guaranteed customer
    payroll_employer = "payroll_employer"  # from: employee, to: employer 代发工资


class CardLevel(StrEnum):
    standard = "standard"
    gold = "gold"
    platinum = "platinum"
    diamond = "diamond"


class ProductCategory(StrEnum):
    deposit = "deposit"
    loan = "loan"
    fee_business = "fee_business"
    wealth = "wealth"
    card = "card"
    e_banking = "e_banking"
    payroll_agency = "payroll_agency"
    basic_account = "basic_account"


class RevealField(StrEnum):
    id_number = "id_number"
    operator_id_number = "operator_id_number"
    phone = "phone"
    contact_phones = "contact_phones"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Address(_In):
    type: str = Field(default="home", max_length=20, description="home, business, registered…")
    text: str = Field(min_length=1, max_length=300)


class Profile(_In):
    """Non-financial information 非财务信息."""

    family: str | None = Field(default=None, max_length=2000)
    business: str | None = Field(default=None, max_length=2000)
    hobbies: str | None = Field(default=None, max_length=1000)
    notes: str | None = Field(default=None, max_length=4000)


class ContactIn(_In):
    role: ContactRole
    name: str = Field(min_length=1, max_length=100)
    title: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=30)
    notes: str | None = Field(default=None, max_length=1000)


class CollateralIn(_In):
    collateral_type: CollateralType
    description: str = Field(min_length=1, max_length=500)
    appraised_value: NonNegativeMoney
    appraised_on: date | None = None


class GuarantorIn(_In):
    name: str = Field(min_length=1, max_length=200)
    guarantor_customer_id: str | None = Field(default=None, max_length=36)
    guaranteed_amount: NonNegativeMoney | None = None


class CustomerFields(_In):
    """What create and update share; identity and personal data are validated by the service."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    org_unit: OrgUnit | None = None
    business_line: BusinessLine | None = None
    market_segment: str | None = Field(default=None, max_length=80)
    industry_code: str | None = Field(
        default=None,
        max_length=10,
        description="GB/T 4754-2017 code (A-T, 01-97 or longer); sets the corporate market "
        "segment when market_segment is not given",
    )
    ownership_type: OwnershipType | None = None
    id_number: str | None = Field(default=None, max_length=30, description="Resident id 身份证号")
    credit_code: str | None = Field(
        default=None, max_length=30, description="Unified social credit code 统一社会信用代码"
    )
    operator_id_number: str | None = Field(
        default=None, max_length=30, description="Operator's resident id (individual business)"
    )
    phone: str | None = Field(default=None, max_length=30, description="Mainland mobile number")
    addresses: list[Address] | None = None
    core_customer_no: str | None = Field(default=None, max_length=40)
    archive_number: str | None = Field(default=None, max_length=60)
    relationship_evaluation: str | None = Field(default=None, max_length=200)
    cooperation_direction: str | None = Field(default=None, max_length=200)
    importance: Importance | None = None
    importance_review_date: date | None = None
    profile: Profile | None = None
    contacts: list[ContactIn] | None = None
    collaterals: list[CollateralIn] | None = None
    guarantors: list[GuarantorIn] | None = None
    data_source: str | None = Field(default=None, max_length=200)
    lawful_basis: LawfulBasis | None = None


class CustomerCreate(CustomerFields):
    kind: CustomerKind
    segment: Segment = Segment.stock
    name: str = Field(min_length=1, max_length=200)
    org_unit: OrgUnit
    business_line: BusinessLine


class CustomerPatch(CustomerFields):
    """A partial update. Name the version read (``version`` or an ``If-Match`` header)."""

    status: Status | None = None
    status_reason: str | None = Field(default=None, max_length=500)
    version: int | None = Field(default=None, ge=1)


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    role: ContactRole
    name: str
    title: str | None
    phone: str | None = Field(description="Masked")
    notes: str | None


class CollateralOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    collateral_type: CollateralType
    description: str
    appraised_value: Money
    appraised_on: date | None


class GuarantorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    guarantor_customer_id: str | None
    guaranteed_amount: Money | None


class TiersOut(BaseModel):
    value_tier: str | None
    wealth_layer: str | None
    vip_level: str | None
    potential_vip: str | None = Field(description="The VIP level the customer is near, if any")
    product_use_types: list[str]
    invalid: bool = Field(description="Below the policy's balance floor: left out of statistics")
    policy_version: str | None
    as_of: date | None


class CustomerOut(BaseModel):
    """A customer as callers see it: personal data masked (reveal is a separate, audited call)."""

    id: str
    kind: CustomerKind
    segment: Segment
    status: Status
    name: str
    business_line: BusinessLine
    org_unit: str
    market_segment: str | None
    ownership_type: OwnershipType | None
    id_number: str | None = Field(description="Masked, e.g. 110101********1234")
    credit_code: str | None
    operator_id_number: str | None = Field(description="Masked")
    age: int | None
    sex: str | None
    phone: str | None = Field(description="Masked, e.g. 138****5678")
    lost_contact: bool
    addresses: list[dict[str, Any]]
    core_customer_no: str | None
    archive_number: str | None
    relationship_evaluation: str | None
    cooperation_direction: str | None
    importance: Importance | None
    importance_review_date: date | None
    profile: dict[str, Any]
    contacts: list[ContactOut]
    collaterals: list[CollateralOut]
    guarantors: list[GuarantorOut]
    data_source: str | None
    lawful_basis: LawfulBasis | None
    tiers: TiersOut
    merged_into: str | None
    erased: bool
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerSummary(BaseModel):
    """A row of a customer list."""

    id: str
    kind: CustomerKind
    segment: Segment
    status: Status
    name: str
    org_unit: str
    business_line: BusinessLine
    market_segment: str | None
    phone: str | None = Field(description="Masked")
    lost_contact: bool
    value_tier: str | None
    wealth_layer: str | None
    vip_level: str | None
    owners: list[str] = Field(description="Staff ids: the owner 第一责任人 first, then the team")
    version: int
    created_at: datetime


class CursorPage(BaseModel, Generic[T]):
    """A page of a cursor-paginated list: pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[T]
    limit: int
    next_cursor: str | None


class SnapshotIn(_In):
    """Core banking's figures for one customer on one business date."""

    business_date: date
    deposits: NonNegativeMoney = Decimal("0")
    loans: NonNegativeMoney = Decimal("0")
    personal_loans: NonNegativeMoney = Decimal("0")
    aum: NonNegativeMoney = Field(default=Decimal("0"), description="Financial assets 金融资产")
    card_annual_spend: NonNegativeMoney = Decimal("0")
    custody_margin: NonNegativeMoney = Decimal("0")
    card_level: CardLevel | None = None
    products: list[ProductCategory] = Field(default_factory=list)
    overdue_amount: NonNegativeMoney = Decimal("0")
    net_interest_contribution: Money = Decimal("0")
    fee_income: Money = Decimal("0")
    source: str = Field(default="core_banking", max_length=40)


class SnapshotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    business_date: date
    deposits: Money
    loans: Money
    personal_loans: Money
    aum: Money
    card_annual_spend: Money
    custody_margin: Money
    card_level: CardLevel | None
    products: list[ProductCategory]
    overdue_amount: Money
    net_interest_contribution: Money
    fee_income: Money
    source: str
    recorded_at: datetime


class SnapshotResult(BaseModel):
    snapshot: SnapshotOut
    tiers: TiersOut
    tier_changes: list[dict[str, Any]]


class RevealIn(_In):
    fields: list[RevealField] = Field(min_length=1)
    reason: str = Field(min_length=5, max_length=500, description="Why the clear value is needed")


class RevealOut(BaseModel):
    customer_id: str
    values: dict[str, Any]
    audit_id: int


class LookupIn(_In):
    """Look a customer up by identity (a teller serving someone at the counter)."""

    id_number: str | None = Field(default=None, max_length=30)
    credit_code: str | None = Field(default=None, max_length=30)


class MergeIn(_In):
    duplicate_id: str = Field(max_length=36, description="The record merged into this one")
    version: int = Field(ge=1, description="The survivor's version as read")


class ErasureIn(_In):
    reason: str = Field(min_length=5, max_length=500)
    request_reference: str = Field(min_length=1, max_length=100)


class RelationshipIn(_In):
    to_customer_id: str = Field(max_length=36)
    type: RelationshipType
    note: str | None = Field(default=None, max_length=500)


class RelationshipOut(BaseModel):
    id: int
    type: RelationshipType
    direction: str = Field(description="outgoing: this customer is the 'from' side")
    customer_id: str
    other_customer_id: str
    other_name: str
    note: str | None
    created_at: datetime


class DuplicateGroup(BaseModel):
    reason: str = Field(description="same_name_and_phone, same_name_and_address, similar_name")
    customers: list[CustomerSummary]


class ChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    action: str
    actor: str
    at: datetime
    changes: dict[str, Any]
