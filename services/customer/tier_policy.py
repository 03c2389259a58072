"""The tier policy 客户细分政策: versioned JSON files under ``policy/tiers/``, validated at load.

Every threshold the tier rules use lives here as data, with the date it takes effect; a file
that would leave someone in scope without a layer, or order its thresholds wrongly, is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from crmkit.policy import load_policy_file
from crmkit.schemas import CustomerKind
from services.customer.schemas import CardLevel, ProductCategory

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


def cny(amount: Decimal) -> str:
    """An amount as the reasons print it: 1,000,000.00."""
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
                    f"middle {measure} threshold {cny(middle)} must be below "
                    f"the high {measure} threshold {cny(high)}"
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
            return f"AUM {'>=' if self.lower_inclusive else '>'} {cny(self.lower)}"
        upper_sign = "<=" if self.upper_inclusive else "<"
        return f"{cny(self.lower)} {lower_sign} AUM {upper_sign} {cny(upper)}"


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
                f"the lowest wealth layer must start at the scope's AUM floor {cny(floor)} "
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
                    f"VIP thresholds must ascend: {higher.level} {cny(higher.aum_at_least)} "
                    f"is not above {lower.level} {cny(lower.aum_at_least)}"
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
    return load_policy_file(path, TierPolicy, "tier policy", TierPolicyError)


def load_tier_policies(directory: Path | None = None) -> TierPolicyBook:
    """Load every ``*.json`` tier policy of ``directory`` (default: the service's own)."""
    folder = directory if directory is not None else POLICY_DIRECTORY
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not paths:
        raise TierPolicyError(f"no tier policy files (*.json) in {folder}")
    return TierPolicyBook(load_tier_policy(path) for path in paths)
