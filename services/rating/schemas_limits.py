"""Wire models of the credit-limit calculation and proposals 授信额度测算: snake_case, money as
exact decimal strings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, computed_field

from services.rating.limits import Collateral, Guarantor
from services.rating.schemas_ratings import CustomerId, Grade, InputValue

# CNY with two places; on the wire an exact decimal string, never a float.
Money = Annotated[
    Decimal,
    Field(max_digits=18, decimal_places=2),
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
NonNegativeMoney = Annotated[Money, Field(ge=0)]
PositiveMoney = Annotated[Money, Field(gt=0)]


class LimitCollateralType(StrEnum):
    land_use_right = "land_use_right"  # 土地使用权
    house = "house"  # 住房
    commercial_property = "commercial_property"  # 商业用房
    equipment = "equipment"  # 机器设备
    vehicle = "vehicle"  # 机动车
    deposit_receipt = "deposit_receipt"  # 存单
    bonds = "bonds"  # 国债、金融债
    inventory = "inventory"  # 存货
    receivables = "receivables"  # 应收账款


class LimitCollateralIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: LimitCollateralType
    appraised_value: NonNegativeMoney = Field(description="Appraised value 评估价值")
    description: str = Field(default="", max_length=500)

    def domain(self) -> Collateral:
        return Collateral(self.type.value, self.appraised_value, self.description)


class LimitGuarantorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    amount: NonNegativeMoney = Field(description="Amount guaranteed 担保金额")
    net_assets: Money = Field(description="The guarantor's net assets 净资产")
    grade: Grade | None = Field(
        default=None,
        description="The guarantor's credit grade; a guarantor of unknown grade bears nothing."
        " A rated customer of the bank bears by its confirmed grade here",
    )
    customer_id: str | None = Field(default=None, min_length=36, max_length=36)

    def domain(self) -> Guarantor:
        grade = self.grade.value if self.grade else None
        return Guarantor(self.name, self.amount, self.net_assets, grade, self.customer_id)


class SubLimitIn(BaseModel):
    """A sub-limit of the comprehensive limit for one product 分项额度."""

    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=100)
    amount: PositiveMoney
    note: str | None = Field(default=None, max_length=500)


class CreditLimitIn(BaseModel):
    """Propose a customer's comprehensive limit 综合授信 on its confirmed grade."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str | None = Field(
        default=None,
        max_length=36,
        description="The running rating campaign 集中评级授信 this proposal is part of",
    )
    customer_id: CustomerId
    assessment_id: str = Field(
        min_length=36, max_length=36, description="The customer's confirmed assessment"
    )
    inputs: dict[str, InputValue] = Field(
        default_factory=dict,
        description="The formula's inputs (annual income or operating cash flow, net assets,"
        " existing debt); the assessment's and the bank's figures fill what is not given",
    )
    collaterals: list[LimitCollateralIn] = Field(default_factory=list, max_length=100)
    guarantors: list[LimitGuarantorIn] = Field(default_factory=list, max_length=100)
    sub_limits: list[SubLimitIn] = Field(default_factory=list, max_length=50)
    revolving: bool = Field(default=False, description="Revolving 循环贷")
    term_months: int = Field(ge=1, le=360)
    adjustment_amount: Money = Field(
        default=Decimal("0.00"),
        description="Staff adjustment for the guarantees (may be negative); needs its reason",
    )
    adjustment_reason: str | None = Field(default=None, max_length=2000)
    investigation_report: str = Field(min_length=1, max_length=20000, description="调查报告")
    risk_analysis: str = Field(min_length=1, max_length=20000, description="风险分析")


class CalculationLine(BaseModel):
    label: str
    formula: str
    value: str


class CreditLimitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    kind: str
    org_unit: str
    business_line: str
    assessment_id: str
    grade: Grade
    formula_id: str
    formula_version: str
    status: str
    inputs: dict[str, Any]
    calculation: list[CalculationLine]
    collaterals: list[dict[str, Any]]
    guarantors: list[dict[str, Any]]
    sub_limits: list[dict[str, Any]]
    credit_amount: Money
    guaranteed_amount: Money
    secured_amount: Money
    adjustment_amount: Money
    adjustment_reason: str | None
    total_amount: Money
    revolving: bool
    term_months: int
    pricing: dict[str, Any] | None
    investigation_report: str
    risk_analysis: str
    campaign_id: str | None
    proposed_by: str
    proposed_at: datetime
    step_due_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_opinion: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    start_date: date | None
    expiry_date: date | None
    version: int

    @computed_field(description="credit + guaranteed + secured, before the staff adjustment")
    def computed_total(self) -> Money:
        return self.credit_amount + self.guaranteed_amount + self.secured_amount


class PledgeRateOut(BaseModel):
    type: str
    name: str
    rate: Decimal


class LimitFormulaOut(BaseModel):
    """One limit formula version with its numbers."""

    id: str
    version: str
    kinds: list[str]
    effective_from: date
    description: str
    capacity: dict[str, Any]
    net_assets: dict[str, Any]
    existing_debt: dict[str, Any]
    grades: dict[str, dict[str, Decimal]]
    pledge_rates: list[PledgeRateOut]
    guarantor_ratios: dict[str, Decimal]
    rounding_unit: Decimal
