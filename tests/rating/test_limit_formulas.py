"""The limit formulas as data: hand-computed limits of each formula, every collateral type,
guarantors bounded by their own standing, rounding, and the VIP pricing hint."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.rating import limits
from services.rating.limits import (
    COLLATERAL_TYPES,
    Collateral,
    Guarantor,
    LimitInputError,
    LimitPolicyError,
    formula_for,
    load_formulas,
    pricing_hint,
)
from services.rating.schemas_limits import LimitCollateralType

DAY = date(2026, 6, 1)


def D(value: str) -> Decimal:  # noqa: N802 - reads like the Decimal it makes
    return Decimal(value)


def test_each_customer_kind_has_its_formula() -> None:
    assert {
        kind: formula_for(kind, DAY).id
        for kind in (
            "corporate",
            "institution",
            "individual",
            "individual_business",
            "farm_household",
        )
    } == {
        "corporate": "corporate",
        "institution": "corporate",
        "individual": "individual",
        "individual_business": "individual",
        "farm_household": "farm_household",
    }


def test_the_individual_formula_by_hand() -> None:
    formula = formula_for("individual", DAY)
    inputs = {"annual_income": "100000", "net_assets": "500000", "existing_debt": "50000"}
    # capacity = 100,000 * 3 = 300,000; net-assets basis = 500,000 * 0.5 = 250,000
    # A: min(min(300,000, 250,000) * 0.8, cap 200,000) = 200,000; - debt 50,000 = 150,000
    # secured: house 400,000 * 0.70 = 280,000; deposit receipt 50,050 * 0.90 = 45,045
    #          280,000 + 45,045 = 325,045 → down to whole hundreds: 325,000
    # guaranteed: Li Si (A)     min(100,000, 300,000 * 0.60 = 180,000) = 100,000
    #             Wang Wu (BBB) min(200,000, 150,000 * 0.50 =  75,000) =  75,000
    #             Zhao (no grade) and Qian (C) bear nothing                     0
    #             100,000 + 75,000 = 175,000
    # total = 150,000 + 175,000 + 325,000 = 650,000
    result = formula.calculate(
        "A",
        inputs,
        [Collateral("house", D("400000")), Collateral("deposit_receipt", D("50050"))],
        [
            Guarantor("Li Si", D("100000"), D("300000"), "A"),
            Guarantor("Wang Wu", D("200000"), D("150000"), "BBB"),
            Guarantor("Zhao Liu", D("50000"), D("1000000"), None),
            Guarantor("Qian Qi", D("50000"), D("1000000"), "C"),
        ],
    )
    assert (result.formula_id, result.version, result.missing) == ("individual", "2026-01-01", ())
    assert result.credit_amount == D("150000.00")
    assert result.secured_amount == D("325000.00")
    assert result.guaranteed_amount == D("175000.00")
    assert result.total_amount == D("650000.00")
    values = {line["label"]: line["value"] for line in result.lines}
    assert values["Repayment capacity 还款能力"] == "300000.00"
    assert values["Net-assets basis 净资产基数"] == "250000.00"
    assert values["Grade A basis 等级核定"] == "200000.00"
    assert values["Collateral: Certificate of deposit 存单"] == "45045.00"
    assert values["Guarantor: Wang Wu (BBB)"] == "75000.00"
    assert values["Guarantor: Zhao Liu (no grade)"] == "0.00"
    assert result.lines[-1] == {
        "label": "Total limit 综合授信额度",
        "formula": "credit + guaranteed + secured",
        "value": "650000.00",
    }


def test_the_farm_household_formula_by_hand() -> None:
    formula = formula_for("farm_household", DAY)
    inputs = {"annual_income": "45678", "net_assets": "260000", "existing_debt": "12345"}
    # capacity = 45,678 * 2 = 91,356; net-assets basis = 260,000 * 0.5 = 130,000
    # AA: min(91,356 * 0.9 = 82,220.40, cap 200,000) = 82,220.40; - 12,345 = 69,875.40
    # → down to whole hundreds: 69,800
    result = formula.calculate("AA", inputs)
    assert result.credit_amount == D("69800.00")
    assert (result.secured_amount, result.guaranteed_amount) == (D("0.00"), D("0.00"))
    assert result.total_amount == D("69800.00")
    # The same household at B: min(91,356 * 0.2 = 18,271.20, cap 10,000) = 10,000; - 12,345 → 0
    assert formula.calculate("B", inputs).credit_amount == D("0.00")


def test_the_corporate_formula_by_hand() -> None:
    formula = formula_for("corporate", DAY)
    inputs = {
        "operating_cash_flow": D("1500000"),
        "net_assets": D("8000000"),
        "existing_debt": D("1200000"),
    }
    # capacity = 1,500,000 * 3 = 4,500,000; net-assets basis = 8,000,000 * 0.6 = 4,800,000
    # BBB: min(4,500,000 * 0.6 = 2,700,000, cap 2,000,000) = 2,000,000; - 1,200,000 = 800,000
    assert formula.calculate("BBB", inputs).credit_amount == D("800000.00")
    # AAA: min(4,500,000 * 1.0, cap 10,000,000) = 4,500,000; - 1,200,000 = 3,300,000
    assert formula.calculate("AAA", inputs).credit_amount == D("3300000.00")
    # Equipment 1,234,567 * 0.40 = 493,826.80 and receivables 300,000 * 0.50 = 150,000:
    # 643,826.80 → 643,800; total at BBB 800,000 + 643,800 = 1,443,800
    secured = formula.calculate(
        "BBB",
        inputs,
        [Collateral("equipment", D("1234567")), Collateral("receivables", D("300000"))],
    )
    assert (secured.secured_amount, secured.total_amount) == (D("643800.00"), D("1443800.00"))


def test_grade_c_gets_no_unsecured_credit_but_keeps_its_security() -> None:
    formula = formula_for("individual", DAY)
    inputs = {"annual_income": "5000000", "net_assets": "90000000", "existing_debt": "0"}
    # house 100,000 * 0.70 = 70,000; guarantor AA min(20,000, 100,000 * 0.70) = 20,000
    result = formula.calculate(
        "C",
        inputs,
        [Collateral("house", D("100000"))],
        [Guarantor("Sun Ba", D("20000"), D("100000"), "AA")],
    )
    assert result.credit_amount == D("0.00")
    assert (result.secured_amount, result.guaranteed_amount) == (D("70000.00"), D("20000.00"))
    assert result.total_amount == D("90000.00")


def test_every_collateral_type_has_its_pledge_rate() -> None:
    rates = {
        "land_use_right": "0.50",
        "house": "0.70",
        "commercial_property": "0.60",
        "equipment": "0.40",
        "vehicle": "0.40",
        "deposit_receipt": "0.90",
        "bonds": "0.90",
        "inventory": "0.30",
        "receivables": "0.50",
    }
    assert set(rates) == set(COLLATERAL_TYPES) == {t.value for t in LimitCollateralType}
    for formula in limits.formulas():
        assert set(formula.policy.pledge_rates) == set(COLLATERAL_TYPES), formula.id
        for kind, rate in rates.items():
            # 100,000 of each type is worth 100,000 * its rate
            result = formula.calculate("C", {}, [Collateral(kind, D("100000"))])
            assert result.secured_amount == D("100000") * D(rate), (formula.id, kind)
    # All nine together: 100,000 * (0.5+0.7+0.6+0.4+0.4+0.9+0.9+0.3+0.5 = 5.2) = 520,000
    every = [Collateral(kind, D("100000")) for kind in COLLATERAL_TYPES]
    assert formula_for("farm_household", DAY).calculate("C", {}, every).secured_amount == D(
        "520000.00"
    )
    with pytest.raises(LimitInputError):
        formula_for("individual", DAY).calculate("A", {}, [Collateral("racehorse", D("1"))])
    with pytest.raises(LimitInputError):
        formula_for("individual", DAY).calculate("A", {}, [Collateral("house", D("-1"))])


@pytest.mark.parametrize(
    ("grade", "ratio"),
    [
        ("AAA", "0.80"),
        ("AA", "0.70"),
        ("A", "0.60"),
        ("BBB", "0.50"),
        ("BB", "0.30"),
        ("B", "0.20"),
        ("C", "0"),
        (None, "0"),
    ],
)
def test_a_guarantor_bears_no_more_than_its_own_standing(grade: str | None, ratio: str) -> None:
    formula = formula_for("individual", DAY)
    # A guarantee of 500,000 by a guarantor with 200,000 net assets is worth at most
    # 200,000 * the ratio of its grade; a small guarantee counts in full where it fits.
    big = formula.calculate("A", {}, guarantors=[Guarantor("G", D("500000"), D("200000"), grade)])
    assert big.guaranteed_amount == (D("200000") * D(ratio)).quantize(D("0.01"))
    small = formula.calculate("A", {}, guarantors=[Guarantor("G", D("10000"), D("200000"), grade)])
    assert small.guaranteed_amount == (D("10000.00") if D(ratio) > 0 else D("0.00"))
    # A guarantor with negative net assets bears nothing.
    broke = formula.calculate("A", {}, guarantors=[Guarantor("G", D("1000"), D("-5000"), grade)])
    assert broke.guaranteed_amount == D("0.00")


def test_existing_debt_above_the_basis_floors_the_credit_part_at_zero() -> None:
    formula = formula_for("individual", DAY)
    # 60,000 * 3 = 180,000; 400,000 * 0.5 = 200,000; AA: 180,000 * 0.9 = 162,000 < 300,000
    # 162,000 - 170,000 < 0 → 0
    inputs = {"annual_income": "60000", "net_assets": "400000", "existing_debt": "170000"}
    assert formula.calculate("AA", inputs).credit_amount == D("0.00")
    # Negative net assets give no basis at all.
    inputs = {"annual_income": "60000", "net_assets": "-1", "existing_debt": "0"}
    assert formula.calculate("AAA", inputs).credit_amount == D("0.00")
    with pytest.raises(LimitInputError):
        formula.calculate("AAA", {**inputs, "existing_debt": "-5"})


def test_amounts_round_down_to_whole_hundreds() -> None:
    formula = formula_for("individual", DAY)
    assert formula.unit == D("100")
    assert formula.round_down(D("12399.99")) == D("12300.00")
    assert formula.round_down(D("12300")) == D("12300.00")
    assert formula.round_down(D("99.99")) == D("0.00")
    assert str(formula.round_down(D("1000000.5"))) == "1000000.00"


def test_a_formula_that_breaks_the_rules_is_refused(tmp_path: Path) -> None:
    source = json.loads((limits.POLICY_DIR / "individual-2026-01-01.json").read_text())
    path = tmp_path / "individual-2026-01-01.json"
    path.write_text(json.dumps({**source, "rounding_unit": "500"}))
    with pytest.raises(LimitPolicyError, match="power of ten"):
        load_formulas(tmp_path)
    grades = {**source["grades"], "C": {"coefficient": "0.1", "cap": "0"}}
    path.write_text(json.dumps({**source, "grades": grades}))
    with pytest.raises(LimitPolicyError, match="no unsecured credit"):
        load_formulas(tmp_path)
    path.write_text(json.dumps({**source, "rounding_unit": "1000"}))
    [thousands] = load_formulas(tmp_path)
    assert thousands.round_down(D("12999.99")) == D("12000.00")


def test_missing_inputs_are_listed_and_give_no_credit_part() -> None:
    formula = formula_for("corporate", DAY)
    result = formula.calculate(
        "AAA", {"net_assets": "9000000", "existing_debt": ""}, [Collateral("bonds", D("1000"))]
    )
    assert result.missing == ("operating_cash_flow", "existing_debt")
    assert result.credit_amount == D("0.00")
    assert result.secured_amount == D("900.00")  # 1,000 * 0.90, the security still counts
    with pytest.raises(LimitInputError):
        formula.calculate("AAAA", {})


def test_members_get_the_vip_pricing_hint_and_others_none() -> None:
    for level in ("gold", "platinum", "diamond"):
        hint = pricing_hint(level)
        assert hint is not None
        # 0.3‰ a month below the general rate; a year: 0.3‰ * 12 = 3.6‰ = 0.36 points
        assert hint["monthly_discount_permille"] == "0.3"
        assert hint["annual_discount_percentage_points"] == "0.36"
        assert hint["vip_level"] == level
        assert "per mille" in hint["basis"] and "0.36 percentage points" in hint["basis"]
    assert pricing_hint(None) is None
    assert pricing_hint("standard") is None
