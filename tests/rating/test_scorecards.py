"""The scorecards as data: hand-computed scores of each card, every grade boundary, missing
inputs, what the system knows, and the version in force."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.rating import scoring
from services.rating.models import CustomerFigures
from services.rating.scoring import (
    GRADES,
    ScorecardError,
    ScoreInputError,
    load_scorecards,
    scorecard_for,
    system_inputs,
)

BOUNDARIES = [("AAA", "90"), ("AA", "80"), ("A", "70"), ("BBB", "60"), ("BB", "50"), ("B", "40")]


def test_each_customer_kind_has_its_card() -> None:
    day = date(2026, 6, 1)
    assert {
        kind: scorecard_for(kind, day).id
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
    with pytest.raises(ScorecardError):
        scorecard_for("individual", date(2025, 12, 31))  # before the first card


def test_every_card_adds_up_to_100_with_financial_and_non_financial_factors() -> None:
    for card in scoring.scorecards():
        sides = {side: Decimal(0) for side in scoring.SIDES}
        for factor in card.policy.factors:
            sides[factor.side] += factor.max_points
        assert sides == {"financial": 60, "non_financial": 40}, card.id
        assert {
            "deposit_balance",
            "repayment_record",
            "net_assets",
            "debt_ratio",
            "character",
            "bank_relationship",
        } <= set(card.factor_codes)
        assert card.system_codes == {"deposit_balance", "repayment_record"}


def test_the_corporate_card_by_hand() -> None:
    card = scorecard_for("corporate", date(2026, 6, 1))
    inputs = {
        "annual_revenue": "8000000",  # 5,000,000 to below 20,000,000  →  9
        "net_assets": Decimal("12000000"),  # 10,000,000 to below 30,000,000  → 12
        "debt_ratio": 55,  # exactly 55: 55% to below 70%  →  5
        "deposit_balance": Decimal("2000000.00"),  # exactly 2,000,000: 2m to below 5m  →  8
        "repayment_record": "normal",  #  → 10
        "character": "excellent",  #  → 15
        "business_experience": "12",  # 10 years and more  →  8
        "management": "adequate",  #  →  6
        "bank_relationship": "regular",  #  →  5
    }
    result = card.score(inputs)
    # 9 + 12 + 5 + 8 + 10 + 15 + 8 + 6 + 5 = 78 → A (70 ≤ 78 < 80)
    assert (result.score, result.grade, result.missing) == (Decimal("78.00"), "A", ())
    assert (result.scorecard_id, result.version) == ("corporate", "2026-01-01")
    assert [line.points for line in result.lines] == [
        Decimal(p) for p in ("9", "12", "5", "8", "10", "15", "8", "6", "5")
    ]
    debt = result.lines[2]
    assert (debt.code, debt.side, debt.value, debt.bin, debt.max_points) == (
        "debt_ratio",
        "financial",
        "55",
        "55% to below 70%",
        Decimal("10.00"),
    )
    assert result.lines[5].side == "non_financial"


def test_the_individual_card_by_hand_reaching_exactly_90() -> None:
    card = scorecard_for("individual", date(2026, 6, 1))
    inputs: dict[str, Any] = {
        "annual_income": "300000",  # 300,000 and above  → 15
        "net_assets": "2000000",  # 2,000,000 and above  → 15
        "debt_ratio": "30",  # exactly 30: 30% to below 50%  →  7
        "deposit_balance": "500000",  # 500,000 and above  → 10
        "repayment_record": "normal",  #  → 10
        "character": "good",  #  → 11
        "work_experience": 10,  # 10 years and more  →  8
        "family": "ordinary",  #  →  6
        "bank_relationship": "core",  #  →  8
    }
    # 15 + 15 + 7 + 10 + 10 + 11 + 8 + 6 + 8 = 90 → AAA (exactly on the line)
    result = card.score(inputs)
    assert (result.score, result.grade) == (Decimal("90.00"), "AAA")
    # One cent below a bin's bound falls in the bin under it: 200,000 to below 500,000 → 8
    # 90 - 10 + 8 = 88 → AA
    result = card.score({**inputs, "deposit_balance": "499999.99"})
    assert (result.score, result.grade) == (Decimal("88.00"), "AA")
    assert result.lines[3].bin == "200,000 to below 500,000"


def test_the_farm_household_card_by_hand() -> None:
    card = scorecard_for("farm_household", date(2026, 6, 1))
    inputs = {
        "annual_income": "50000",  # exactly 50,000: 50,000 to below 100,000  →  9
        "net_assets": "149999.99",  # 50,000 to below 150,000  →  6
        "debt_ratio": 0.7,  # a float read by its repr, 0.7%: below 30%  → 10
        "deposit_balance": "100000",  # 100,000 and above  → 10
        "repayment_record": "overdue",  #  →  0
        "character": "excellent",  #  → 15
        "farming_experience": 3,  # exactly 3: 3 to below 5 years  →  4
        "family": "strong",  #  →  9
        "bank_relationship": "core",  #  →  8
    }
    result = card.score(inputs)
    # 9 + 6 + 10 + 10 + 0 + 15 + 4 + 9 + 8 = 71 → A
    assert (result.score, result.grade) == (Decimal("71.00"), "A")
    assert result.lines[2].value == "0.7"
    # The same household with nothing overdue: 71 + 10 = 81 → AA
    assert card.score({**inputs, "repayment_record": "normal"}).grade == "AA"
    # Insolvent, poor and new: 9 + 3 (net assets below 50,000) + 0 (debt 70% and above) + 10
    # + 0 + 0 + 2 + 2 + 2 = 28 → C
    poor = {
        **inputs,
        "net_assets": "-5000",
        "debt_ratio": "120",
        "character": "poor",
        "farming_experience": 1,
        "family": "weak",
        "bank_relationship": "new",
    }
    assert (card.score(poor).score, card.score(poor).grade) == (Decimal("28.00"), "C")


@pytest.mark.parametrize("card_id", ["corporate", "individual", "farm_household"])
def test_every_grade_boundary(card_id: str) -> None:
    card = scoring.scorecard(card_id)
    assert card is not None
    lower = {grade: GRADES[i + 1] for i, grade in enumerate(GRADES[:-1])}
    for grade, minimum in BOUNDARIES:
        at = Decimal(minimum)
        assert card.grade_of(at) == grade, (card_id, minimum)
        assert card.grade_of(at - Decimal("0.01")) == lower[grade], (card_id, minimum)
        assert card.grade_of(at + Decimal("0.01")) == grade
    assert card.grade_of(Decimal("100")) == "AAA"
    assert card.grade_of(Decimal("39.99")) == "C"
    assert card.grade_of(Decimal("0")) == "C"
    assert set(card.meanings) == set(GRADES)


def test_missing_inputs_are_listed_not_guessed() -> None:
    card = scorecard_for("individual", date(2026, 6, 1))
    result = card.score({"annual_income": "100000", "character": "", "family": None})
    assert result.grade is None
    assert result.missing == (
        "net_assets",
        "debt_ratio",
        "deposit_balance",
        "repayment_record",
        "character",
        "work_experience",
        "family",
        "bank_relationship",
    )
    assert result.score == Decimal("9.00")  # what the one input earned; no grade from it
    assert [(line.value, line.points) for line in result.lines[1:3]] == [
        (None, Decimal("0.00")),
        (None, Decimal("0.00")),
    ]
    assert card.score({}).missing == card.factor_codes


def test_inputs_a_factor_cannot_read() -> None:
    card = scorecard_for("individual", date(2026, 6, 1))
    for code, value in [
        ("annual_income", "a lot"),
        ("annual_income", "NaN"),
        ("annual_income", [1]),
        ("family", "enormous"),
        ("family", 3),
    ]:
        with pytest.raises(ScoreInputError) as raised:
            card.score({code: value})
        assert raised.value.code == code


def test_what_the_system_knows_from_core_banking() -> None:
    def figures(**values: Any) -> CustomerFigures:
        return CustomerFigures(customer_id="c", business_date=date(2026, 11, 28), **values)

    assert system_inputs(None) == {}
    assert system_inputs(CustomerFigures(customer_id="c", vip_level="gold")) == {}  # tiers only
    known = system_inputs(
        figures(deposits=Decimal("80000.00"), loans=Decimal("0.00"), overdue_amount=Decimal("0.00"))
    )
    assert known == {"deposit_balance": Decimal("80000.00"), "repayment_record": "no_history"}
    assert (
        system_inputs(
            figures(deposits=Decimal("1.00"), loans=Decimal("5000.00"), overdue_amount=Decimal("0"))
        )["repayment_record"]
        == "normal"
    )
    assert (
        system_inputs(
            figures(
                deposits=Decimal("1.00"), loans=Decimal("5000.00"), overdue_amount=Decimal("0.01")
            )
        )["repayment_record"]
        == "overdue"
    )


def test_system_factors_take_the_systems_value_manual_ones_the_managers() -> None:
    card = scorecard_for("individual", date(2026, 6, 1))
    system = {"deposit_balance": Decimal("60000.00"), "repayment_record": "normal"}
    entered = {"deposit_balance": "1", "repayment_record": "overdue", "character": "good"}
    assert card.inputs_from(system, entered) == {
        "deposit_balance": Decimal("60000.00"),
        "repayment_record": "normal",
        "character": "good",
    }
    # Nothing known: the manager's entries of system factors are used.
    assert card.inputs_from({}, entered) == entered
    # A manual factor the system would suggest: the manager's entry wins, an empty one does not.
    assert card.inputs_from({"character": "fair"}, {"character": "excellent"}) == {
        "character": "excellent"
    }
    assert card.inputs_from({"character": "fair"}, {"character": ""}) == {"character": "fair"}
    assert card.unknown_codes({"character": "good", "height": 180}) == ["height"]


def _write_card(directory: Path, source: dict[str, Any], **changes: Any) -> None:
    card = {**source, **changes}
    (directory / f"{card['id']}-{card['version']}.json").write_text(json.dumps(card))


def test_the_version_in_force_is_the_latest_effective_on_the_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = json.loads((scoring.POLICY_DIR / "individual-2026-01-01.json").read_text())
    _write_card(tmp_path, source)
    scale = [
        {**g, "min_score": str(Decimal(g["min_score"]) - 5 if g["grade"] != "C" else 0)}
        for g in source["scale"]
    ]
    _write_card(tmp_path, source, version="2027-01-01", effective_from="2027-01-01", scale=scale)
    cards = load_scorecards(tmp_path)
    monkeypatch.setattr(scoring, "_loaded", lambda: tuple(cards))
    assert scorecard_for("individual", date(2026, 12, 31)).version == "2026-01-01"
    newer = scorecard_for("individual", date(2027, 1, 1))
    assert newer.version == "2027-01-01"
    assert newer.grade_of(Decimal("85")) == "AAA"  # the newer scale starts AAA at 85
    assert [c.version for c in scoring.scorecards()] == ["2026-01-01", "2027-01-01"]


def test_a_card_that_does_not_add_up_is_refused(tmp_path: Path) -> None:
    source = json.loads((scoring.POLICY_DIR / "farm_household-2026-01-01.json").read_text())
    source["factors"][0]["max_points"] = "16"
    source["factors"][0]["bins"][-1]["points"] = "16"
    _write_card(tmp_path, source)
    with pytest.raises(ScorecardError, match=r"farm_household-2026-01-01\.json.*max_score"):
        load_scorecards(tmp_path)
    source = json.loads((scoring.POLICY_DIR / "farm_household-2026-01-01.json").read_text())
    source["factors"][0]["bins"][2]["min"] = "10"  # bounds no longer rise
    _write_card(tmp_path, source)
    with pytest.raises(ScorecardError, match="rise strictly"):
        load_scorecards(tmp_path)
