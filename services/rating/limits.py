"""Credit-limit formulas 授信额度测算: versioned policy data turned into a fast, pure calculation.

A formula (``policy/limits/<id>-<effective date>.json``) serves one or more customer kinds:

- credit (unsecured) part 信用额度 = max(0, min(min(repayment capacity, net assets * ratio) *
  grade coefficient, cap of the grade) - existing debt), where repayment capacity = annual income
  (or operating cash flow) * a multiplier; grade C has coefficient 0 and cap 0: no unsecured
  credit;
- secured part 抵质押额度 = Σ appraised value * pledge rate of the collateral's type;
- guaranteed part 保证额度 = Σ min(amount guaranteed, what the guarantor can bear: its net assets *
  the ratio of its grade), nothing for a guarantor of unknown grade or grade C;
- each part is rounded down to a whole ``rounding_unit`` of yuan (``quantize`` with
  ``ROUND_DOWN``) and the total is their sum, before a staff adjustment.

The VIP pricing hint 贵宾优惠利率 (``policy/pricing.json``) says how far below the general rate a
member's loans are priced, in the monthly per mille the cooperatives quote and per year.

Like scoring, :meth:`LimitFormula.calculate` runs a million times in a campaign: the policy's
numbers are Decimals prepared at load, and the step-by-step lines are plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crmkit.clock import business_today
from crmkit.policy import load_policy_file
from services.rating.scoring import GRADES, to_number

POLICY_DIR = Path(__file__).with_name("policy") / "limits"
PRICING_FILE = Path(__file__).with_name("policy") / "pricing.json"

COLLATERAL_TYPES: tuple[str, ...] = (
    "land_use_right",
    "house",
    "commercial_property",
    "equipment",
    "vehicle",
    "deposit_receipt",
    "bonds",
    "inventory",
    "receivables",
)


class LimitPolicyError(Exception):
    """A limit or pricing policy file that cannot be used, or no formula for a kind and day."""


class LimitInputError(ValueError):
    """An input the formula cannot use (not a number, a negative value, an unknown type)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# -- the policy file -----------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputPolicy(_Strict):
    input: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)


class CapacityPolicy(InputPolicy):
    """Repayment capacity = the input (a yearly figure) * ``multiplier``."""

    multiplier: Decimal = Field(gt=0)


class NetAssetsPolicy(InputPolicy):
    ratio: Decimal = Field(ge=0, le=1)


class GradeTermsPolicy(_Strict):
    coefficient: Decimal = Field(ge=0, le=1)
    cap: Decimal = Field(ge=0)


class PledgePolicy(_Strict):
    name: str = Field(min_length=1)
    rate: Decimal = Field(ge=0, le=1)


class LimitFormulaPolicy(_Strict):
    """One limit formula version as the bank writes it."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)
    version: str = Field(min_length=1, max_length=20)
    kinds: list[
        Literal["individual", "farm_household", "individual_business", "corporate", "institution"]
    ] = Field(min_length=1)
    effective_from: date
    description: str = Field(min_length=1)
    capacity: CapacityPolicy
    net_assets: NetAssetsPolicy
    existing_debt: InputPolicy
    grades: dict[str, GradeTermsPolicy]
    pledge_rates: dict[str, PledgePolicy]
    guarantor_ratios: dict[str, Decimal]
    rounding_unit: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> LimitFormulaPolicy:
        if set(self.grades) != set(GRADES) or set(self.guarantor_ratios) != set(GRADES):
            raise ValueError(f"grades and guarantor_ratios name every grade: {GRADES}")
        if self.grades["C"].coefficient != 0 or self.grades["C"].cap != 0:
            raise ValueError("grade C gets no unsecured credit (coefficient 0, cap 0)")
        if self.guarantor_ratios["C"] != 0:
            raise ValueError("a guarantor of grade C bears nothing (ratio 0)")
        if any(not 0 <= r <= 1 for r in self.guarantor_ratios.values()):
            raise ValueError("guarantor ratios lie between 0 and 1")
        shape = self.rounding_unit.normalize().as_tuple()
        if shape.digits != (1,) or not isinstance(shape.exponent, int) or shape.exponent < 0:
            raise ValueError("rounding_unit is a power of ten yuan: 1, 10, 100, 1000 …")
        return self


class PricingPolicy(_Strict):
    """The VIP pricing hint: members' loans ``monthly_discount_permille`` ‰ (monthly) below the
    general rate."""

    version: str = Field(min_length=1)
    effective_from: date
    description: str = Field(min_length=1)
    member_levels: list[str] = Field(min_length=1)
    monthly_discount_permille: Decimal = Field(gt=0)


# -- inputs and result ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Collateral:
    """A pledge or mortgage 抵质押物: its type (a key of the formula's pledge rates) and value."""

    type: str
    appraised_value: Decimal
    description: str = ""


@dataclass(frozen=True, slots=True)
class Guarantor:
    """A guarantor 保证人: the amount it guarantees and its own standing (net assets, grade)."""

    name: str
    amount: Decimal
    net_assets: Decimal
    grade: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class LimitResult:
    """A calculated limit 授信额度测算表: the three parts, their sum before any staff
    adjustment, the calculation step by step, and the inputs that were missing (the credit part
    is 0 while any is)."""

    formula_id: str
    version: str
    credit_amount: Decimal
    guaranteed_amount: Decimal
    secured_amount: Decimal
    total_amount: Decimal
    lines: tuple[dict[str, str], ...]
    missing: tuple[str, ...]


_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")


def _amount(value: object, field: str) -> Decimal:
    try:
        number = to_number(value)
    except ValueError as exc:
        raise LimitInputError(field, str(exc)) from None
    return number


def _line(label: str, formula: str, value: str) -> dict[str, str]:
    return {"label": label, "formula": formula, "value": value}


def _shown(amount: Decimal) -> str:
    """An amount as the 测算表 shows it: yuan with two places."""
    return str(amount.quantize(_CENT))


_TOTAL_LABEL = "Total limit 综合授信额度"
_TOTAL_FORMULA = "credit + guaranteed + secured"
_CREDIT_LABEL = "Credit part 信用额度"


class LimitFormula:
    """One loaded limit formula version; :meth:`calculate` is pure and fast."""

    def __init__(self, policy: LimitFormulaPolicy) -> None:
        self.policy = policy
        self.id = policy.id
        self.version = policy.version
        self.kinds: tuple[str, ...] = tuple(policy.kinds)
        self.effective_from = policy.effective_from
        self.description = policy.description
        self.unit = policy.rounding_unit
        # The unit as a quantum (100 → 1E+2): quantize with ROUND_DOWN cuts to whole units.
        self._unit_quantum = Decimal(1).scaleb(len(str(int(self.unit))) - 1)
        self.input_codes: tuple[str, ...] = (
            policy.capacity.input,
            policy.net_assets.input,
            policy.existing_debt.input,
        )
        self._multiplier = policy.capacity.multiplier
        self._assets_ratio = policy.net_assets.ratio
        self._terms = {g: (t.coefficient, t.cap) for g, t in policy.grades.items()}
        self._pledge = {
            kind: (p.rate, f"Collateral: {p.name}", f" * {p.rate}")
            for kind, p in policy.pledge_rates.items()
        }
        self._guarantor_ratio = dict(policy.guarantor_ratios)
        # The fixed parts of the 测算表's texts, written once.
        unit = str(self.unit)
        self._capacity_text = f"{policy.capacity.name} ", f" * {self._multiplier}"
        self._assets_text = f"{policy.net_assets.name} ", f" * {self._assets_ratio}"
        self._debt_text = f" - {policy.existing_debt.name} ", f"), rounded down to {unit}"
        self._grade_labels = {g: f"Grade {g} basis 等级核定" for g in GRADES}
        self._secured_line = (
            "Secured part 抵质押额度",
            f"sum of appraised value * pledge rate, rounded down to {unit}",
        )
        self._guaranteed_line = (
            "Guaranteed part 保证额度",
            "sum of min(amount, guarantor's net assets * ratio of its grade), rounded down to"
            f" {unit}",
        )

    def __repr__(self) -> str:
        return f"LimitFormula({self.id!r}, {self.version!r})"

    def round_down(self, amount: Decimal) -> Decimal:
        """``amount`` rounded down to a whole rounding unit, as yuan with two places."""
        return amount.quantize(self._unit_quantum, rounding=ROUND_DOWN).quantize(_CENT)

    def pledge_rate(self, collateral_type: str) -> Decimal:
        """The pledge rate 抵质押率 of a collateral type."""
        found = self._pledge.get(collateral_type)
        if found is None:
            raise LimitInputError("collaterals", f"unknown collateral type {collateral_type!r}")
        return found[0]

    def guarantor_ratio(self, grade: str | None) -> Decimal:
        """The share of its net assets a guarantor of ``grade`` may bear (0 when unknown)."""
        return self._guarantor_ratio.get(grade, _ZERO) if grade is not None else _ZERO

    def calculate(
        self,
        grade: str,
        inputs: Mapping[str, object],
        collaterals: Sequence[Collateral] = (),
        guarantors: Sequence[Guarantor] = (),
    ) -> LimitResult:
        """The limit of a customer of ``grade`` from ``inputs`` (the capacity, net-assets and
        existing-debt inputs the formula names), its collaterals and guarantors."""
        terms = self._terms.get(grade)
        if terms is None:
            raise LimitInputError("grade", f"{grade!r} is not a grade")
        lines: list[dict[str, str]] = []
        credit, missing = self._credit(terms, grade, inputs, lines)
        secured = self._secured(collaterals, lines)
        guaranteed = self._guaranteed(guarantors, lines)
        total = credit + guaranteed + secured
        lines.append(_line(_TOTAL_LABEL, _TOTAL_FORMULA, str(total)))
        return LimitResult(
            self.id, self.version, credit, guaranteed, secured, total, tuple(lines), missing
        )

    def _credit(
        self,
        terms: tuple[Decimal, Decimal],
        grade: str,
        inputs: Mapping[str, object],
        lines: list[dict[str, str]],
    ) -> tuple[Decimal, tuple[str, ...]]:
        get = inputs.get
        codes = self.input_codes
        raw = (get(codes[0]), get(codes[1]), get(codes[2]))
        if None in raw or "" in raw:
            missing = tuple(
                code for code, value in zip(codes, raw, strict=True) if value is None or value == ""
            )
            lines.append(_line(_CREDIT_LABEL, "inputs missing: " + ", ".join(missing), "0.00"))
            return _ZERO, missing
        income = _amount(raw[0], codes[0])
        assets = _amount(raw[1], codes[1])
        debt = _amount(raw[2], codes[2])
        if debt < 0:
            raise LimitInputError(codes[2], "may not be negative")
        coefficient, cap = terms
        capacity = income * self._multiplier
        by_assets = assets * self._assets_ratio
        base = max(min(capacity, by_assets), _ZERO)
        weighted = min(base * coefficient, cap)
        credit = self.round_down(max(weighted - debt, _ZERO))
        capacity_text, assets_text, debt_text = (
            self._capacity_text,
            self._assets_text,
            self._debt_text,
        )
        shown_capacity, shown_assets, shown_weighted = (
            _shown(capacity),
            _shown(by_assets),
            _shown(weighted),
        )
        lines += (
            _line(
                "Repayment capacity 还款能力",
                capacity_text[0] + str(income) + capacity_text[1],
                shown_capacity,
            ),
            _line(
                "Net-assets basis 净资产基数",
                assets_text[0] + str(assets) + assets_text[1],
                shown_assets,
            ),
            _line(
                self._grade_labels[grade],
                f"min(max(0, min({shown_capacity}, {shown_assets})) * {coefficient!s},"
                f" cap {cap!s})",
                shown_weighted,
            ),
            _line(
                _CREDIT_LABEL,
                "max(0, " + shown_weighted + debt_text[0] + str(debt) + debt_text[1],
                str(credit),
            ),
        )
        return credit, ()

    def _secured(self, collaterals: Sequence[Collateral], lines: list[dict[str, str]]) -> Decimal:
        secured = _ZERO
        for collateral in collaterals:
            found = self._pledge.get(collateral.type)
            if found is None:
                raise LimitInputError("collaterals", f"unknown collateral type {collateral.type!r}")
            rate, label, times_rate = found
            value = _amount(collateral.appraised_value, "collaterals.appraised_value")
            if value < 0:
                raise LimitInputError("collaterals.appraised_value", "may not be negative")
            part = value * rate
            secured += part
            lines.append(_line(label, str(value) + times_rate, _shown(part)))
        secured = self.round_down(secured)
        lines.append(_line(*self._secured_line, str(secured)))
        return secured

    def _guaranteed(self, guarantors: Sequence[Guarantor], lines: list[dict[str, str]]) -> Decimal:
        guaranteed = _ZERO
        for guarantor in guarantors:
            amount = _amount(guarantor.amount, "guarantors.amount")
            assets = _amount(guarantor.net_assets, "guarantors.net_assets")
            if amount < 0:
                raise LimitInputError("guarantors.amount", "may not be negative")
            ratio = self.guarantor_ratio(guarantor.grade)
            part = min(amount, max(assets * ratio, _ZERO))
            guaranteed += part
            lines.append(
                _line(
                    f"Guarantor: {guarantor.name} ({guarantor.grade or 'no grade'})",
                    f"min({amount!s}, {assets!s} * {ratio!s})",
                    _shown(part),
                )
            )
        guaranteed = self.round_down(guaranteed)
        lines.append(_line(*self._guaranteed_line, str(guaranteed)))
        return guaranteed


# -- loading -------------------------------------------------------------------------------------
def load_formulas(directory: Path = POLICY_DIR) -> list[LimitFormula]:
    """Every limit formula file in ``directory``, validated."""
    formulas = [
        LimitFormula(load_policy_file(path, LimitFormulaPolicy, "limit formula", LimitPolicyError))
        for path in sorted(directory.glob("*.json"))
    ]
    if not formulas:
        raise LimitPolicyError(f"no limit formula in {directory}")
    return sorted(formulas, key=lambda f: (f.id, f.effective_from, f.version))


@cache
def _loaded() -> tuple[LimitFormula, ...]:
    return tuple(load_formulas())


def formulas() -> list[LimitFormula]:
    """Every limit formula version of the bank's policy."""
    return list(_loaded())


def formula_for(kind: str, on: date | None = None) -> LimitFormula:
    """The formula in force for a customer kind on a business date (today by default)."""
    day = on or business_today()
    in_force = [f for f in _loaded() if kind in f.kinds and f.effective_from <= day]
    if not in_force:
        raise LimitPolicyError(f"no limit formula in force for {kind} customers on {day}")
    return max(in_force, key=lambda f: (f.effective_from, f.version))


@cache
def pricing_policy(path: Path = PRICING_FILE) -> PricingPolicy:
    """The VIP pricing policy."""
    return load_policy_file(path, PricingPolicy, "pricing policy", LimitPolicyError)


def pricing_hint(vip_level: str | None) -> dict[str, str] | None:
    """The VIP pricing hint for a member (gold, platinum, diamond), ``None`` for anyone else:
    the discount per month in per mille 月息‰ (as the cooperatives quote), the same per year in
    percentage points (monthly ‰ * 12 / 10), and the basis the policy states."""
    policy = pricing_policy()
    if vip_level is None or vip_level not in policy.member_levels:
        return None
    monthly = policy.monthly_discount_permille
    yearly = (monthly * 12 / 10).quantize(Decimal("0.01"))
    return {
        "vip_level": vip_level,
        "monthly_discount_permille": str(monthly),
        "annual_discount_percentage_points": str(yearly),
        "hint": f"{monthly}‰ per month below the general rate (= {yearly} percentage points a"
        " year)",
        "basis": policy.description,
        "policy_version": policy.version,
    }
