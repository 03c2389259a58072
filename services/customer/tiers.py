"""Tiers of a customer: value tier 客户价值分层, personal wealth layer 分层维护, VIP level 贵宾,
product-use types and the invalid-customer line.

Policy is data: every threshold lives in a versioned JSON file under ``policy/tiers/``, validated
by the models below when it is loaded. The rules are pure functions of a :class:`TierInputs` and a
:class:`TierPolicy`; they contain no numbers of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from services.customer.schemas import CardLevel, CustomerKind, ProductCategory

POLICY_DIRECTORY = Path(__file__).parent / "policy" / "tiers"
ZERO = Decimal("0")


class ValueTier(StrEnum):
    """Value tier 客户价值分层: high 高端, middle 中端, general 一般."""

    high = "high"
    middle = "middle"
    general = "general"


class VipLevel(StrEnum):
    """VIP membership 贵宾会员 from lowest to highest: gold 黄金, platinum 白金, diamond 钻石."""

    gold = "gold"
    platinum = "platinum"
    diamond = "diamond"


class ProductUseType(StrEnum):
    """Product-use type: deposit 存款客户, loan 贷款客户, fee business 中间业务客户."""

    deposit = "deposit"
    loan = "loan"
    fee_business = "fee_business"


class Dimension(StrEnum):
    """The dimensions of an assessment whose changes are reported as ``customer.tier_changed``."""

    value_tier = "value_tier"
    wealth_layer = "wealth_layer"
    vip_level = "vip_level"
    potential_vip = "potential_vip"
    product_use_types = "product_use_types"
    invalid = "invalid"


class TierPolicyError(ValueError):
    """A tier policy file is unreadable, or breaks the rules every tier policy must keep."""


class NoPolicyInForce(LookupError):
    """No version of the tier policy is in force on the day asked for."""


def _amount_from_text(value: object) -> object:
    # A JSON number becomes a binary float before anyone sees it; thresholds must stay exact.
    if isinstance(value, int | float):
        raise ValueError(f'write amounts as strings (for example "100000"), not the number {value}')
    return value


Amount = Annotated[Decimal, BeforeValidator(_amount_from_text), Field(ge=0, allow_inf_nan=False)]
Ratio = Annotated[Decimal, BeforeValidator(_amount_from_text), Field(gt=0, lt=1)]


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueTierThresholds(_PolicyModel):
    """Either measure at or above its threshold (the seed's 以上) reaches the tier."""

    deposits_at_least: Amount
    loans_at_least: Amount


class ValueTierBands(_PolicyModel):
    """The thresholds of the high and middle tiers; everything below middle is general."""

    high: ValueTierThresholds
    middle: ValueTierThresholds

    @model_validator(mode="after")
    def _middle_below_high(self) -> ValueTierBands:
        for measure in ("deposits", "loans"):
            middle = getattr(self.middle, f"{measure}_at_least")
            high = getattr(self.high, f"{measure}_at_least")
            if middle >= high:
                raise ValueError(
                    f"middle {measure} threshold {_money(middle)} must be below "
                    f"the high {measure} threshold {_money(high)}"
                )
        return self


class ValueTierPolicy(_PolicyModel):
    """Value-tier thresholds, one set for every kind unless the bank sets a kind's own."""

    source: str
    note: str = ""
    default: ValueTierBands
    by_kind: dict[CustomerKind, ValueTierBands] = Field(default_factory=dict)

    def bands_for(self, kind: str) -> ValueTierBands:
        """The thresholds that apply to customers of ``kind``."""
        return self.by_kind.get(CustomerKind(kind), self.default)


class AumBand(_PolicyModel):
    """A band of financial assets: one lower bound, ``above`` (大于, strict) or ``at_least``
    (以上, inclusive), and at most one upper bound, ``below`` (strict) or ``at_most``."""

    above: Amount | None = None
    at_least: Amount | None = None
    below: Amount | None = None
    at_most: Amount | None = None

    @model_validator(mode="after")
    def _one_bound_each_side(self) -> AumBand:
        if (self.above is None) == (self.at_least is None):
            raise ValueError("an AUM band needs exactly one lower bound: above or at_least")
        if self.below is not None and self.at_most is not None:
            raise ValueError("an AUM band takes at most one upper bound: below or at_most")
        upper = self.upper
        if upper is not None and (
            upper < self.lower
            or (upper == self.lower and not (self.lower_inclusive and self.upper_inclusive))
        ):
            raise ValueError(f"the AUM band {self.describe()} is empty")
        return self

    @property
    def lower(self) -> Decimal:
        """The lower bound, strict or inclusive."""
        return self.at_least if self.at_least is not None else self.above or ZERO

    @property
    def lower_inclusive(self) -> bool:
        """Whether an amount equal to the lower bound is in the band."""
        return self.at_least is not None

    @property
    def upper(self) -> Decimal | None:
        """The upper bound, or None when the band is open above."""
        return self.at_most if self.at_most is not None else self.below

    @property
    def upper_inclusive(self) -> bool:
        """Whether an amount equal to the upper bound is in the band."""
        return self.at_most is not None

    def contains(self, amount: Decimal) -> bool:
        """Whether ``amount`` lies in the band."""
        lower_ok = amount >= self.lower if self.lower_inclusive else amount > self.lower
        upper = self.upper
        if upper is None:
            return lower_ok
        return lower_ok and (amount <= upper if self.upper_inclusive else amount < upper)

    def describe(self) -> str:
        """The band as an inequality, for reasons: ``50,000.00 <= AUM < 100,000.00``."""
        lower_sign = "<=" if self.lower_inclusive else "<"
        upper = self.upper
        if upper is None:
            return f"AUM {'>=' if self.lower_inclusive else '>'} {_money(self.lower)}"
        upper_sign = "<=" if self.upper_inclusive else "<"
        return f"{_money(self.lower)} {lower_sign} AUM {upper_sign} {_money(upper)}"


class Maintainer(_PolicyModel):
    """A role that maintains the customers of a wealth layer."""

    role: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    title_zh: str


class WealthLayer(_PolicyModel):
    """One personal wealth layer 分层: its AUM band, age limit, admission standard, maintainers."""

    layer: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    aum: AumBand
    age_below: int | None = Field(default=None, gt=0)
    admission_standard: str | None = None
    maintenance_mode: Literal["team", "individual", "adopt"]
    maintainers: tuple[Maintainer, ...] = Field(min_length=1)
    source: str

    def maintained_by(self) -> str:
        """The maintainers' titles, for reasons: ``outlet head 网点主任 and lobby manager ...``."""
        return " and ".join(f"{m.title} {m.title_zh}" for m in self.maintainers)


class MaintenanceScope(_PolicyModel):
    """Who is in the layered-maintenance scope 分层维护对象: any one criterion is enough."""

    source: str
    aum_at_least: Amount
    card_annual_spend_at_least: Amount
    personal_loans_at_least: Amount
    custody_margin_at_least: Amount
    card_levels: frozenset[CardLevel]


class GapRule(_PolicyModel):
    """Where the policy puts customers the seed's layers leave out, and why."""

    layer: str
    reason: str


class GapRules(_PolicyModel):
    """The two gaps of the seed's layers, each closed by an explicit rule."""

    over_age_limit: GapRule
    in_scope_below_aum_floor: GapRule


class WealthLayerPolicy(_PolicyModel):
    """Personal wealth layers; their AUM bands must cover the scope's AUM floor and up."""

    source: str
    applies_to_kinds: frozenset[CustomerKind]
    scope: MaintenanceScope
    layers: tuple[WealthLayer, ...] = Field(min_length=1)
    gap_rules: GapRules

    @model_validator(mode="after")
    def _nobody_in_scope_left_out(self) -> WealthLayerPolicy:
        ids = [layer.layer for layer in self.layers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"wealth layer ids must be unique: {ids}")
        for name, rule in (
            ("over_age_limit", self.gap_rules.over_age_limit),
            ("in_scope_below_aum_floor", self.gap_rules.in_scope_below_aum_floor),
        ):
            if rule.layer not in ids:
                raise ValueError(f"gap rule {name} names an unknown layer {rule.layer!r}")
        self._check_bands_tile_from_floor()
        return self

    def _check_bands_tile_from_floor(self) -> None:
        # Adjacent bands must meet at one amount that exactly one of them includes: no customer
        # at or above the scope's AUM floor may fall between two layers or into two at once.
        bands = sorted(
            (layer.aum for layer in self.layers),
            key=lambda band: (band.lower, not band.lower_inclusive),
        )
        floor = self.scope.aum_at_least
        if not (bands[0].lower == floor and bands[0].lower_inclusive):
            raise ValueError(
                f"the lowest wealth layer must start at the scope's AUM floor {_money(floor)} "
                f"inclusive, not at {bands[0].describe()}"
            )
        for lower, upper in pairwise(bands):
            if not (lower.upper == upper.lower and lower.upper_inclusive != upper.lower_inclusive):
                raise ValueError(
                    f"wealth layers {lower.describe()} and {upper.describe()} must meet "
                    "without a gap or an overlap"
                )
        if bands[-1].upper is not None:
            raise ValueError(f"the highest wealth layer must be open above: {bands[-1].describe()}")

    def layer(self, layer_id: str) -> WealthLayer:
        """The layer with id ``layer_id``; KeyError when the policy has none."""
        for layer in self.layers:
            if layer.layer == layer_id:
                return layer
        raise KeyError(f"no wealth layer {layer_id!r} in this policy")


class VipLevelRule(_PolicyModel):
    """The AUM at or above which a customer reaches a VIP level."""

    level: VipLevel
    name_zh: str
    aum_at_least: Amount


class LoanPriceDiscount(_PolicyModel):
    """The members' loan-price discount below the general rate of the same product."""

    discount_per_mille: Amount
    rate_basis: Literal["monthly", "annual"]
    note: str = ""


class VipPolicy(_PolicyModel):
    """VIP levels from lowest to highest, the potential-member window and the members' terms."""

    source: str
    note: str = ""
    applies_to_kinds: frozenset[CustomerKind]
    levels: tuple[VipLevelRule, ...] = Field(min_length=1)
    potential_window_ratio: Ratio
    potential_note: str = ""
    loan_price_discount: LoanPriceDiscount
    exclusive_manager_excluded_roles: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _levels_ascend(self) -> VipPolicy:
        rank = list(VipLevel)
        for lower, higher in pairwise(self.levels):
            if rank.index(lower.level) >= rank.index(higher.level):
                raise ValueError(
                    f"VIP levels must be listed from lowest to highest: {higher.level} "
                    f"cannot follow {lower.level}"
                )
            if lower.aum_at_least >= higher.aum_at_least:
                raise ValueError(
                    f"VIP thresholds must ascend: {higher.level} {_money(higher.aum_at_least)} "
                    f"is not above {lower.level} {_money(lower.aum_at_least)}"
                )
        return self


class ProductUsePolicy(_PolicyModel):
    """Which products make a customer a fee-business customer 中间业务客户."""

    source: str
    note: str = ""
    fee_business_products: frozenset[ProductCategory] = Field(min_length=1)


class InvalidCustomerPolicy(_PolicyModel):
    """The balance below which a customer is invalid 无效客户 for statistics."""

    source: str
    note: str = ""
    invalid_below: Amount
    loan_customers_exempt: bool


class TierPolicy(_PolicyModel):
    """One version of the tier policy, in force from ``effective_from``."""

    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    effective_from: date
    currency: Literal["CNY"]
    description: str
    value_tier: ValueTierPolicy
    wealth_layers: WealthLayerPolicy
    vip: VipPolicy
    product_use: ProductUsePolicy
    invalid_customer: InvalidCustomerPolicy


class TierPolicyBook:
    """Every version of the tier policy, ordered by the day it takes effect."""

    def __init__(self, policies: Iterable[TierPolicy]) -> None:
        ordered = tuple(sorted(policies, key=lambda policy: policy.effective_from))
        if not ordered:
            raise TierPolicyError("a tier policy book needs at least one policy version")
        for attribute in ("version", "effective_from"):
            values = [str(getattr(policy, attribute)) for policy in ordered]
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise TierPolicyError(
                    f"tier policy versions must differ in {attribute}: {', '.join(repeated)} "
                    "appears more than once"
                )
        self._policies = ordered

    @property
    def policies(self) -> tuple[TierPolicy, ...]:
        """Every version, earliest first."""
        return self._policies

    def effective_on(self, day: date) -> TierPolicy:
        """The latest version whose ``effective_from`` is on or before ``day``."""
        in_force = [policy for policy in self.policies if policy.effective_from <= day]
        if not in_force:
            first = self.policies[0]
            raise NoPolicyInForce(
                f"no tier policy is in force on {day.isoformat()}: the earliest version, "
                f"{first.version}, takes effect on {first.effective_from.isoformat()}"
            )
        return in_force[-1]


def load_tier_policy(path: Path) -> TierPolicy:
    """Read and validate one tier policy file; :class:`TierPolicyError` names the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TierPolicyError(f"tier policy {path.name} cannot be read: {exc}") from exc
    try:
        return TierPolicy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(file)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise TierPolicyError(f"tier policy {path.name} is refused: {problems}") from exc


def load_tier_policies(directory: Path | None = None) -> TierPolicyBook:
    """Load every ``*.json`` tier policy of ``directory`` (default: the service's own)."""
    folder = directory if directory is not None else POLICY_DIRECTORY
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not paths:
        raise TierPolicyError(f"no tier policy files (*.json) in {folder}")
    return TierPolicyBook(load_tier_policy(path) for path in paths)


@dataclass(frozen=True)
class TierInputs:
    """What the tier rules read about one customer, as of one day's core-banking balances.

    ``loans`` is the whole loan balance, ``personal_loans`` its personal-loan part 个贷;
    ``aum`` is the financial assets 金融资产 held at the bank, deposits included, as core banking
    reports them; ``card_annual_spend`` is the credit-card spend of the last twelve months.
    """

    kind: str
    age: int | None = None
    deposits: Decimal = ZERO
    loans: Decimal = ZERO
    personal_loans: Decimal = ZERO
    aum: Decimal = ZERO
    card_annual_spend: Decimal = ZERO
    custody_margin: Decimal = ZERO
    card_level: str | None = None
    products: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        CustomerKind(self.kind)
        if self.card_level is not None:
            CardLevel(self.card_level)
        unknown = sorted(self.products - set(ProductCategory))
        if unknown:
            raise ValueError(f"unknown product categories: {', '.join(unknown)}")
        if self.age is not None and self.age < 0:
            raise ValueError(f"age cannot be negative: {self.age}")
        for name in (
            "deposits",
            "loans",
            "personal_loans",
            "aum",
            "card_annual_spend",
            "custody_margin",
        ):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
            if not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a non-negative amount, not {value}")


@dataclass(frozen=True)
class TierChange:
    """One dimension of a customer's tiers that changed; feeds ``customer.tier_changed``."""

    dimension: str
    old: str | None
    new: str | None
    reason: str


@dataclass(frozen=True)
class TierAssessment:
    """Every tier of one customer under one policy version, with the reason for each."""

    policy_version: str
    value_tier: ValueTier
    wealth_layer: str | None
    wealth_maintainer_roles: tuple[str, ...]
    vip_level: VipLevel | None
    potential_vip: VipLevel | None
    product_use_types: frozenset[ProductUseType]
    invalid: bool
    explanations: Mapping[Dimension, str]

    @property
    def reasons(self) -> list[str]:
        """Human-readable reasons, one per dimension."""
        return [self.explanations[dimension] for dimension in Dimension]

    def dimension_values(self) -> dict[Dimension, str | None]:
        """Each dimension's value as text, as a ``customer.tier_changed`` event carries it."""
        return {
            Dimension.value_tier: self.value_tier.value,
            Dimension.wealth_layer: self.wealth_layer,
            Dimension.vip_level: self.vip_level.value if self.vip_level else None,
            Dimension.potential_vip: self.potential_vip.value if self.potential_vip else None,
            Dimension.product_use_types: ",".join(sorted(self.product_use_types)) or None,
            Dimension.invalid: "true" if self.invalid else "false",
        }

    def changes_from(self, previous: TierAssessment | None) -> list[TierChange]:
        """The dimensions whose value differs from ``previous`` (all set ones when None)."""
        before = previous.dimension_values() if previous is not None else {}
        return [
            TierChange(dimension.value, before.get(dimension), new, self.explanations[dimension])
            for dimension, new in self.dimension_values().items()
            if before.get(dimension) != new
        ]


def _value_tier(inputs: TierInputs, policy: TierPolicy) -> tuple[ValueTier, str]:
    bands = policy.value_tier.bands_for(inputs.kind)
    own = f" ({inputs.kind} thresholds)" if inputs.kind in policy.value_tier.by_kind else ""
    for tier, thresholds in ((ValueTier.high, bands.high), (ValueTier.middle, bands.middle)):
        met = []
        if inputs.deposits >= thresholds.deposits_at_least:
            met.append(
                f"deposits {_money(inputs.deposits)} >= {_money(thresholds.deposits_at_least)}"
            )
        if inputs.loans >= thresholds.loans_at_least:
            met.append(f"loans {_money(inputs.loans)} >= {_money(thresholds.loans_at_least)}")
        if met:
            return tier, f"value tier {tier.value}: {'; '.join(met)}{own}"
    middle = bands.middle
    return ValueTier.general, (
        f"value tier general: deposits {_money(inputs.deposits)} < "
        f"{_money(middle.deposits_at_least)} and loans {_money(inputs.loans)} < "
        f"{_money(middle.loans_at_least)}{own}"
    )


def _scope_criteria(inputs: TierInputs, scope: MaintenanceScope) -> list[str]:
    checks = (
        ("AUM", inputs.aum, scope.aum_at_least),
        ("credit-card annual spend", inputs.card_annual_spend, scope.card_annual_spend_at_least),
        ("personal-loan balance", inputs.personal_loans, scope.personal_loans_at_least),
        ("custody margin", inputs.custody_margin, scope.custody_margin_at_least),
    )
    met = [
        f"{label} {_money(value)} >= {_money(floor)}"
        for label, value, floor in checks
        if value >= floor
    ]
    if inputs.card_level is not None and inputs.card_level in scope.card_levels:
        met.append(f"{inputs.card_level} card")
    return met


def _wealth_layer(inputs: TierInputs, policy: TierPolicy) -> tuple[WealthLayer | None, str]:
    rules = policy.wealth_layers
    if inputs.kind not in rules.applies_to_kinds:
        kinds = ", ".join(sorted(rules.applies_to_kinds))
        return (
            None,
            f"wealth layer none: {inputs.kind} customers have no wealth layer (only {kinds})",
        )
    criteria = _scope_criteria(inputs, rules.scope)
    floor = rules.scope.aum_at_least
    if not criteria:
        return None, (
            f"wealth layer none: outside the maintenance scope (AUM {_money(inputs.aum)} < "
            f"{_money(floor)}; no spend, personal-loan, custody-margin or card criterion)"
        )
    band_layer = next((layer for layer in rules.layers if layer.aum.contains(inputs.aum)), None)
    if band_layer is None:
        # The bands cover the floor and up (checked at load), so the AUM is below the floor.
        layer = rules.layer(rules.gap_rules.in_scope_below_aum_floor.layer)
        return layer, (
            f"wealth layer {layer.layer}: in scope by {' and '.join(criteria)} with AUM "
            f"{_money(inputs.aum)} < {_money(floor)}, kept with {layer.maintained_by()} "
            f"by policy {policy.version}"
        )
    limit = band_layer.age_below
    if limit is not None and (inputs.age is None or inputs.age >= limit):
        # Unknown age cannot show the customer is under the limit: the over-age rule places them.
        layer = rules.layer(rules.gap_rules.over_age_limit.layer)
        age = "age not recorded" if inputs.age is None else f"aged {limit}+ (age {inputs.age})"
        return layer, (
            f"wealth layer {layer.layer}: {age} with {band_layer.aum.describe()} "
            f"(AUM {_money(inputs.aum)}), kept with {layer.maintained_by()} "
            f"by policy {policy.version}"
        )
    return band_layer, (
        f"wealth layer {band_layer.layer}: {band_layer.aum.describe()} (AUM {_money(inputs.aum)}), "
        f"maintained by {band_layer.maintained_by()}"
    )


def _vip_level(inputs: TierInputs, policy: TierPolicy) -> tuple[VipLevel | None, str]:
    vip = policy.vip
    if inputs.kind not in vip.applies_to_kinds:
        return None, f"VIP level none: {inputs.kind} customers are not admitted to membership"
    reached = [rule for rule in vip.levels if inputs.aum >= rule.aum_at_least]
    if not reached:
        first = vip.levels[0]
        return None, (
            f"VIP level none: AUM {_money(inputs.aum)} < {_money(first.aum_at_least)} "
            f"({first.level.value})"
        )
    top = reached[-1]
    return top.level, (
        f"VIP level {top.level.value}: AUM {_money(inputs.aum)} >= {_money(top.aum_at_least)}"
    )


def _potential_vip(inputs: TierInputs, policy: TierPolicy) -> tuple[VipLevel | None, str]:
    vip = policy.vip
    if inputs.kind not in vip.applies_to_kinds:
        return None, f"potential VIP none: {inputs.kind} customers are not admitted to membership"
    upcoming = next((rule for rule in vip.levels if inputs.aum < rule.aum_at_least), None)
    if upcoming is None:
        return None, "potential VIP none: already at the highest VIP level"
    window_start = upcoming.aum_at_least * vip.potential_window_ratio
    if inputs.aum >= window_start:
        return upcoming.level, (
            f"potential VIP {upcoming.level.value}: {_money(window_start)} <= AUM "
            f"{_money(inputs.aum)} < {_money(upcoming.aum_at_least)}"
        )
    return None, (
        f"potential VIP none: AUM {_money(inputs.aum)} < {_money(window_start)}, "
        f"where the {upcoming.level.value} window starts"
    )


def _product_use(inputs: TierInputs, policy: TierPolicy) -> tuple[frozenset[ProductUseType], str]:
    types: set[ProductUseType] = set()
    evidence: list[str] = []
    if inputs.deposits > 0:
        types.add(ProductUseType.deposit)
        evidence.append(f"deposits {_money(inputs.deposits)} > 0")
    if inputs.loans > 0:
        types.add(ProductUseType.loan)
        evidence.append(f"loans {_money(inputs.loans)} > 0")
    fee_products = sorted(inputs.products & policy.product_use.fee_business_products)
    if fee_products:
        types.add(ProductUseType.fee_business)
        evidence.append(f"holds {', '.join(fee_products)}")
    if not types:
        return frozenset(), "product use none: no deposits, no loans, no fee-business product"
    names = ", ".join(sorted(types))
    return frozenset(types), f"product use {names}: {'; '.join(evidence)}"


def _invalid(inputs: TierInputs, policy: TierPolicy) -> tuple[bool, str]:
    rule = policy.invalid_customer
    if rule.loan_customers_exempt and inputs.loans > 0:
        return False, f"valid for statistics: loan customer (loans {_money(inputs.loans)})"
    # AUM already includes deposits; the larger of the two neither double-counts nor misses them.
    balance = max(inputs.deposits, inputs.aum)
    if balance < rule.invalid_below:
        return True, (
            f"invalid for statistics: deposits and financial assets {_money(balance)} < "
            f"{_money(rule.invalid_below)}"
        )
    return False, (
        f"valid for statistics: deposits and financial assets {_money(balance)} >= "
        f"{_money(rule.invalid_below)}"
    )


def compute_value_tier(inputs: TierInputs, policy: TierPolicy) -> ValueTier:
    """Value tier 客户价值分层: high or middle when deposits OR loans reach the tier's threshold."""
    return _value_tier(inputs, policy)[0]


def compute_wealth_layer(inputs: TierInputs, policy: TierPolicy) -> str | None:
    """Personal wealth layer 分层维护 id, or None for other kinds and customers out of scope."""
    layer = _wealth_layer(inputs, policy)[0]
    return layer.layer if layer is not None else None


def compute_vip_level(inputs: TierInputs, policy: TierPolicy) -> VipLevel | None:
    """The highest VIP level 贵宾 whose AUM threshold the customer reaches, or None."""
    return _vip_level(inputs, policy)[0]


def is_potential_vip(inputs: TierInputs, policy: TierPolicy) -> VipLevel | None:
    """The next VIP level whose window the customer's AUM is in 潜在会员, or None."""
    return _potential_vip(inputs, policy)[0]


def product_use_types(inputs: TierInputs, policy: TierPolicy) -> frozenset[ProductUseType]:
    """Product-use types: deposit 存款客户, loan 贷款客户, fee business 中间业务客户."""
    return _product_use(inputs, policy)[0]


def is_invalid(inputs: TierInputs, policy: TierPolicy) -> bool:
    """Whether the customer is invalid 无效客户 for statistics (balance below the policy line)."""
    return _invalid(inputs, policy)[0]


def assess_tiers(inputs: TierInputs, policy: TierPolicy) -> TierAssessment:
    """Every tier of the customer under ``policy``, with a reason per dimension."""
    value_tier, value_reason = _value_tier(inputs, policy)
    layer, layer_reason = _wealth_layer(inputs, policy)
    vip_level, vip_reason = _vip_level(inputs, policy)
    potential, potential_reason = _potential_vip(inputs, policy)
    use_types, use_reason = _product_use(inputs, policy)
    invalid, invalid_reason = _invalid(inputs, policy)
    return TierAssessment(
        policy_version=policy.version,
        value_tier=value_tier,
        wealth_layer=layer.layer if layer is not None else None,
        wealth_maintainer_roles=tuple(m.role for m in layer.maintainers) if layer else (),
        vip_level=vip_level,
        potential_vip=potential,
        product_use_types=use_types,
        invalid=invalid,
        explanations={
            Dimension.value_tier: value_reason,
            Dimension.wealth_layer: layer_reason,
            Dimension.vip_level: vip_reason,
            Dimension.potential_vip: potential_reason,
            Dimension.product_use_types: use_reason,
            Dimension.invalid: invalid_reason,
        },
    )
