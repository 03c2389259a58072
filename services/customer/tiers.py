"""Tiers of a customer: value tier 客户价值分层, personal wealth layer 分层维护, VIP level 贵宾,
product-use types and the invalid-customer line.

Policy is data: every threshold lives in a versioned JSON file under ``policy/tiers/``, validated
by the models below when it is loaded. The rules are pure functions of a :class:`TierInputs` and a
:class:`TierPolicy`; they contain no numbers of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from crmkit.schemas import CustomerKind
from services.customer.schemas import CardLevel, ProductCategory
from services.customer.tier_policy import (
    ZERO,
    Dimension,
    MaintenanceScope,
    ProductUseType,
    TierPolicy,
    ValueTier,
    VipLevel,
    WealthLayer,
    cny,
)


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
        if previous is None:
            return self.changes_since({})
        return self.changes_since({d.value: v for d, v in previous.dimension_values().items()})

    def changes_since(self, before: Mapping[str, str | None]) -> list[TierChange]:
        """The dimensions whose value differs from values spelled as ``dimension_values``
        spells them (a customer's stored tiers; empty when it was never assessed)."""
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
            met.append(f"deposits {cny(inputs.deposits)} >= {cny(thresholds.deposits_at_least)}")
        if inputs.loans >= thresholds.loans_at_least:
            met.append(f"loans {cny(inputs.loans)} >= {cny(thresholds.loans_at_least)}")
        if met:
            return tier, f"value tier {tier.value}: {'; '.join(met)}{own}"
    middle = bands.middle
    return ValueTier.general, (
        f"value tier general: deposits {cny(inputs.deposits)} < "
        f"{cny(middle.deposits_at_least)} and loans {cny(inputs.loans)} < "
        f"{cny(middle.loans_at_least)}{own}"
    )


def _scope_criteria(inputs: TierInputs, scope: MaintenanceScope) -> list[str]:
    checks = (
        ("AUM", inputs.aum, scope.aum_at_least),
        ("credit-card annual spend", inputs.card_annual_spend, scope.card_annual_spend_at_least),
        ("personal-loan balance", inputs.personal_loans, scope.personal_loans_at_least),
        ("custody margin", inputs.custody_margin, scope.custody_margin_at_least),
    )
    met = [
        f"{label} {cny(value)} >= {cny(floor)}" for label, value, floor in checks if value >= floor
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
            f"wealth layer none: outside the maintenance scope (AUM {cny(inputs.aum)} < "
            f"{cny(floor)}; no spend, personal-loan, custody-margin or card criterion)"
        )
    band_layer = next((layer for layer in rules.layers if layer.aum.contains(inputs.aum)), None)
    if band_layer is None:
        # The bands cover the floor and up (checked at load), so the AUM is below the floor.
        layer = rules.layer(rules.gap_rules.in_scope_below_aum_floor.layer)
        return layer, (
            f"wealth layer {layer.layer}: in scope by {' and '.join(criteria)} with AUM "
            f"{cny(inputs.aum)} < {cny(floor)}, kept with {layer.maintained_by()} "
            f"by policy {policy.version}"
        )
    limit = band_layer.age_below
    if limit is not None and (inputs.age is None or inputs.age >= limit):
        # Unknown age cannot show the customer is under the limit: the over-age rule places them.
        layer = rules.layer(rules.gap_rules.over_age_limit.layer)
        age = "age not recorded" if inputs.age is None else f"aged {limit}+ (age {inputs.age})"
        return layer, (
            f"wealth layer {layer.layer}: {age} with {band_layer.aum.describe()} "
            f"(AUM {cny(inputs.aum)}), kept with {layer.maintained_by()} "
            f"by policy {policy.version}"
        )
    return band_layer, (
        f"wealth layer {band_layer.layer}: {band_layer.aum.describe()} (AUM {cny(inputs.aum)}), "
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
            f"VIP level none: AUM {cny(inputs.aum)} < {cny(first.aum_at_least)} "
            f"({first.level.value})"
        )
    top = reached[-1]
    return top.level, (
        f"VIP level {top.level.value}: AUM {cny(inputs.aum)} >= {cny(top.aum_at_least)}"
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
            f"potential VIP {upcoming.level.value}: {cny(window_start)} <= AUM "
            f"{cny(inputs.aum)} < {cny(upcoming.aum_at_least)}"
        )
    return None, (
        f"potential VIP none: AUM {cny(inputs.aum)} < {cny(window_start)}, "
        f"where the {upcoming.level.value} window starts"
    )


def _product_use(inputs: TierInputs, policy: TierPolicy) -> tuple[frozenset[ProductUseType], str]:
    types: set[ProductUseType] = set()
    evidence: list[str] = []
    if inputs.deposits > 0:
        types.add(ProductUseType.deposit)
        evidence.append(f"deposits {cny(inputs.deposits)} > 0")
    if inputs.loans > 0:
        types.add(ProductUseType.loan)
        evidence.append(f"loans {cny(inputs.loans)} > 0")
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
        return False, f"valid for statistics: loan customer (loans {cny(inputs.loans)})"
    # AUM already includes deposits; the larger of the two neither double-counts nor misses them.
    balance = max(inputs.deposits, inputs.aum)
    if balance < rule.invalid_below:
        return True, (
            f"invalid for statistics: deposits and financial assets {cny(balance)} < "
            f"{cny(rule.invalid_below)}"
        )
    return False, (
        f"valid for statistics: deposits and financial assets {cny(balance)} >= "
        f"{cny(rule.invalid_below)}"
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
