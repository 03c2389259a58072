"""Value tiers, wealth layers, VIP levels, product-use types and the policy files behind them."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.customer.tier_policy import (
    POLICY_DIRECTORY,
    NoPolicyInForce,
    TierPolicy,
    TierPolicyError,
    load_tier_policies,
)
from services.customer.tiers import (
    TierInputs,
    assess_tiers,
    compute_value_tier,
    compute_vip_level,
    compute_wealth_layer,
    is_invalid,
    is_potential_vip,
    product_use_types,
)

FIRST_VERSION = "2026-01-01"
D = Decimal


@pytest.fixture(scope="module")
def policy() -> TierPolicy:
    return load_tier_policies().effective_on(date(2026, 1, 1))


def shipped_policy() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((POLICY_DIRECTORY / f"{FIRST_VERSION}.json").read_text())
    return data


def write_policy(directory: Path, name: str, data: dict[str, Any]) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def person(kind: str = "individual", age: int | None = 40, **amounts: Any) -> TierInputs:
    return TierInputs(kind=kind, age=age, **amounts)


# -- value tier 客户价值分层 -------------------------------------------------------------------

VALUE_TIERS = [
    ("0", "0", "general"),
    ("99999.99", "0", "general"),
    ("100000", "0", "middle"),
    ("999999.99", "0", "middle"),
    ("1000000", "0", "high"),
    ("0", "499999.99", "general"),
    ("0", "500000", "middle"),
    ("0", "1999999.99", "middle"),
    ("0", "2000000", "high"),
    ("99999.99", "499999.99", "general"),
    ("99999.99", "500000", "middle"),
    ("999999.99", "2000000", "high"),
    ("1000000", "499999.99", "high"),
]


@pytest.mark.parametrize("kind", ["individual", "farm_household", "corporate", "institution"])
@pytest.mark.parametrize(("deposits", "loans", "expected"), VALUE_TIERS)
def test_value_tier_boundaries(policy, kind, deposits, loans, expected):
    inputs = TierInputs(kind=kind, deposits=D(deposits), loans=D(loans))
    assert compute_value_tier(inputs, policy) == expected


def test_value_tier_reasons_name_the_measure_and_threshold(policy):
    high = assess_tiers(person(deposits=D("1000000")), policy)
    middle = assess_tiers(person(loans=D("500000")), policy)
    general = assess_tiers(person(deposits=D("99999.99")), policy)

    assert high.reasons[0] == "value tier high: deposits 1,000,000.00 >= 1,000,000.00"
    assert middle.reasons[0] == "value tier middle: loans 500,000.00 >= 500,000.00"
    assert general.reasons[0] == (
        "value tier general: deposits 99,999.99 < 100,000.00 and loans 0.00 < 500,000.00"
    )


def test_a_kind_of_its_own_gets_its_own_thresholds(tmp_path):
    data = shipped_policy()
    data["value_tier"]["by_kind"] = {
        "corporate": {
            "high": {"deposits_at_least": "5000000", "loans_at_least": "10000000"},
            "middle": {"deposits_at_least": "1000000", "loans_at_least": "2000000"},
        }
    }
    write_policy(tmp_path, "by-kind", data)
    own = load_tier_policies(tmp_path).effective_on(date(2026, 1, 1))

    corporate = TierInputs(kind="corporate", deposits=D("1000000"))
    individual = TierInputs(kind="individual", deposits=D("1000000"))

    assert compute_value_tier(corporate, own) == "middle"
    assert compute_value_tier(individual, own) == "high"
    assert assess_tiers(corporate, own).reasons[0].endswith("(corporate thresholds)")


# -- personal wealth layers 分层维护 ------------------------------------------------------------

AUM_BANDS = [
    ("49999.99", None),
    ("50000", "layer_4"),
    ("99999.99", "layer_4"),
    ("100000", "layer_3"),
    ("199999.99", "layer_3"),
    ("200000", "layer_2"),
    ("2000000", "layer_2"),
    ("2000000.01", "layer_1"),
]


@pytest.mark.parametrize("kind", ["individual", "farm_household"])
@pytest.mark.parametrize(("aum", "expected"), AUM_BANDS)
def test_wealth_layer_by_aum(policy, kind, aum, expected):
    assert compute_wealth_layer(person(kind=kind, aum=D(aum)), policy) == expected


@pytest.mark.parametrize(
    ("aum", "roles"),
    [
        ("2000000.01", ("wealth_manager", "supervising_vice_president", "outlet_president")),
        ("2000000", ("outlet_wealth_manager",)),
        ("150000", ("outlet_head", "lobby_manager")),
        ("60000", ("outlet_staff",)),
        ("49999.99", ()),
    ],
)
def test_each_layer_names_its_maintainers(policy, aum, roles):
    assert assess_tiers(person(aum=D(aum)), policy).wealth_maintainer_roles == roles


def test_aged_59_is_layer_4_by_the_seed(policy):
    assessment = assess_tiers(person(age=59, aum=D("60000")), policy)

    assert assessment.wealth_layer == "layer_4"
    assert assessment.reasons[1] == (
        "wealth layer layer_4: 50,000.00 <= AUM < 100,000.00 (AUM 60,000.00), "
        "maintained by outlet staff 网点员工"
    )


def test_aged_60_is_kept_in_layer_4_by_policy(policy):
    assessment = assess_tiers(person(age=60, aum=D("60000")), policy)

    assert assessment.wealth_layer == "layer_4"
    assert assessment.wealth_maintainer_roles == ("outlet_staff",)
    assert assessment.reasons[1] == (
        "wealth layer layer_4: aged 60+ (age 60) with 50,000.00 <= AUM < 100,000.00 "
        "(AUM 60,000.00), kept with outlet staff 网点员工 by policy 2026-01-01"
    )


def test_unknown_age_is_placed_by_the_over_age_rule(policy):
    assessment = assess_tiers(person(age=None, aum=D("60000")), policy)

    assert assessment.wealth_layer == "layer_4"
    assert "age not recorded" in assessment.reasons[1]


def test_the_age_limit_belongs_to_layer_4_only(policy):
    assert compute_wealth_layer(person(age=75, aum=D("100000")), policy) == "layer_3"
    assert compute_wealth_layer(person(age=75, aum=D("3000000")), policy) == "layer_1"


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        ({"card_annual_spend": D("50000")}, "layer_4"),
        ({"card_annual_spend": D("49999.99")}, None),
        ({"personal_loans": D("300000"), "loans": D("300000")}, "layer_4"),
        ({"personal_loans": D("299999.99"), "loans": D("299999.99")}, None),
        ({"custody_margin": D("10000")}, "layer_4"),
        ({"custody_margin": D("9999.99")}, None),
        ({"card_level": "gold"}, "layer_4"),
        ({"card_level": "platinum"}, "layer_4"),
        ({"card_level": "diamond"}, "layer_4"),
        ({"card_level": "standard"}, None),
    ],
)
def test_in_scope_by_another_criterion_with_little_aum(policy, amounts, expected):
    inputs = person(aum=D("10000"), **amounts)
    assert compute_wealth_layer(inputs, policy) == expected


def test_in_scope_by_card_spend_says_so(policy):
    reason = assess_tiers(person(aum=D("10000"), card_annual_spend=D("50000")), policy).reasons[1]

    assert reason == (
        "wealth layer layer_4: in scope by credit-card annual spend 50,000.00 >= 50,000.00 "
        "with AUM 10,000.00 < 50,000.00, kept with outlet staff 网点员工 by policy 2026-01-01"
    )


@pytest.mark.parametrize("kind", ["corporate", "institution", "individual_business"])
def test_only_people_and_farm_households_have_wealth_layers(policy, kind):
    inputs = TierInputs(kind=kind, aum=D("5000000"), card_level="diamond")

    assert compute_wealth_layer(inputs, policy) is None
    assert assess_tiers(inputs, policy).wealth_maintainer_roles == ()


def test_admission_standards_are_documented_not_invented(policy):
    layers = {layer.layer: layer for layer in policy.wealth_layers.layers}

    assert "准入标准" in (layers["layer_1"].admission_standard or "")
    assert "准入标准" in (layers["layer_2"].admission_standard or "")
    assert layers["layer_3"].admission_standard is None
    assert layers["layer_3"].maintenance_mode == "adopt"


# -- VIP 贵宾 ---------------------------------------------------------------------------------

VIP_LEVELS = [
    ("0", None, None),
    ("159999.99", None, None),
    ("160000", None, "gold"),
    ("199999.99", None, "gold"),
    ("200000", "gold", None),
    ("799999.99", "gold", None),
    ("800000", "gold", "platinum"),
    ("999999.99", "gold", "platinum"),
    ("1000000", "platinum", None),
    ("4000000", "platinum", "diamond"),
    ("5000000", "diamond", None),
    ("80000000", "diamond", None),
]


@pytest.mark.parametrize(("aum", "level", "potential"), VIP_LEVELS)
def test_vip_level_and_potential_vip(policy, aum, level, potential):
    inputs = person(aum=D(aum))

    assert compute_vip_level(inputs, policy) == level
    assert is_potential_vip(inputs, policy) == potential


def test_vip_loan_discount_keeps_its_rate_basis(policy):
    discount = policy.vip.loan_price_discount

    assert discount.discount_per_mille == D("0.3")
    assert discount.rate_basis == "monthly"
    assert policy.vip.potential_window_ratio == D("0.8")
    assert "teller" in policy.vip.exclusive_manager_excluded_roles


# -- product use and invalid customers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("deposits", "loans", "products", "expected"),
    [
        ("0", "0", set(), set()),
        ("0.01", "0", {"deposit"}, {"deposit"}),
        ("0", "1", {"loan"}, {"loan"}),
        ("0", "0", {"deposit", "loan", "basic_account"}, set()),
        ("0", "0", {"fee_business"}, {"fee_business"}),
        ("0", "0", {"wealth"}, {"fee_business"}),
        ("0", "0", {"card"}, {"fee_business"}),
        ("0", "0", {"e_banking"}, {"fee_business"}),
        ("0", "0", {"payroll_agency"}, {"fee_business"}),
        ("500", "800", {"card", "wealth"}, {"deposit", "loan", "fee_business"}),
    ],
)
def test_product_use_types(policy, deposits, loans, products, expected):
    inputs = person(deposits=D(deposits), loans=D(loans), products=frozenset(products))
    assert product_use_types(inputs, policy) == expected


@pytest.mark.parametrize(
    ("kind", "amounts", "expected"),
    [
        ("individual", {"aum": D("99.99"), "deposits": D("99.99")}, True),
        ("individual", {"aum": D("100"), "deposits": D("100")}, False),
        ("individual", {"aum": D("100"), "deposits": D("0")}, False),
        ("individual", {}, True),
        ("corporate", {"deposits": D("100")}, False),
        ("corporate", {"deposits": D("99.99")}, True),
        ("individual", {"loans": D("5000")}, False),
    ],
)
def test_invalid_customer_line(policy, kind, amounts, expected):
    assert is_invalid(TierInputs(kind=kind, **amounts), policy) is expected


# -- policy versions and refusals -------------------------------------------------------------


def test_the_shipped_policy_loads(policy):
    assert policy.version == FIRST_VERSION
    assert policy.effective_from == date(2026, 1, 1)
    assert policy.value_tier.default.high.deposits_at_least == D("1000000")


def test_effective_on_picks_the_version_in_force(tmp_path):
    write_policy(tmp_path, FIRST_VERSION, shipped_policy())
    later = shipped_policy()
    later["version"] = "2026-07-01"
    later["effective_from"] = "2026-07-01"
    later["value_tier"]["default"]["middle"]["deposits_at_least"] = "50000"
    write_policy(tmp_path, "2026-07-01", later)
    book = load_tier_policies(tmp_path)
    saver = person(deposits=D("60000"))

    before = book.effective_on(date(2026, 6, 30))
    on_the_day = book.effective_on(date(2026, 7, 1))

    assert before.version == FIRST_VERSION
    assert on_the_day.version == "2026-07-01"
    assert compute_value_tier(saver, before) == "general"
    assert compute_value_tier(saver, on_the_day) == "middle"
    assert assess_tiers(saver, on_the_day).policy_version == "2026-07-01"
    with pytest.raises(NoPolicyInForce, match="earliest version, 2026-01-01"):
        book.effective_on(date(2025, 12, 31))


def test_middle_at_or_above_high_is_refused(tmp_path):
    data = shipped_policy()
    data["value_tier"]["default"]["middle"]["deposits_at_least"] = "1000000"
    write_policy(tmp_path, "bad", data)

    with pytest.raises(TierPolicyError) as refused:
        load_tier_policies(tmp_path)

    message = str(refused.value)
    assert "bad.json" in message
    assert "middle deposits threshold 1,000,000.00 must be below" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["value_tier"]["default"]["high"].update(loans_at_least=2000000),
            "write amounts as strings",
        ),
        (
            lambda d: d["value_tier"]["default"]["high"].update(loans_at_least="-1"),
            "greater than or equal to 0",
        ),
        (
            lambda d: d["wealth_layers"]["layers"][2]["aum"].update(at_least="120000"),
            "without a gap or an overlap",
        ),
        (
            lambda d: d["wealth_layers"]["layers"][1]["aum"].update(at_most=None, below="2000000"),
            "without a gap or an overlap",
        ),
        (
            lambda d: d["wealth_layers"]["scope"].update(aum_at_least="40000"),
            "must start at the scope's AUM floor",
        ),
        (
            lambda d: d["wealth_layers"]["gap_rules"]["over_age_limit"].update(layer="layer_9"),
            "unknown layer 'layer_9'",
        ),
        (
            lambda d: d["vip"]["levels"][1].update(aum_at_least="200000"),
            "VIP thresholds must ascend",
        ),
        (lambda d: d["vip"]["levels"].reverse(), "from lowest to highest"),
        (lambda d: d["vip"].update(potential_window_ratio="1.2"), "less than 1"),
        (lambda d: d.update(thresholds={}), "Extra inputs are not permitted"),
    ],
)
def test_inconsistent_policies_are_refused(tmp_path, change, expected):
    data = shipped_policy()
    change(data)
    write_policy(tmp_path, "changed", data)

    with pytest.raises(TierPolicyError, match=expected):
        load_tier_policies(tmp_path)


def test_two_versions_on_one_day_are_refused(tmp_path):
    write_policy(tmp_path, "one", shipped_policy())
    twin = shipped_policy()
    twin["version"] = "2026-01-01b"
    write_policy(tmp_path, "two", twin)

    with pytest.raises(TierPolicyError, match="effective_from: 2026-01-01 appears more than once"):
        load_tier_policies(tmp_path)


def test_an_empty_policy_directory_is_refused(tmp_path):
    with pytest.raises(TierPolicyError, match="no tier policy files"):
        load_tier_policies(tmp_path)


# -- inputs and changes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"kind": "alien"},
        {"kind": "individual", "card_level": "bronze"},
        {"kind": "individual", "products": frozenset({"lottery"})},
        {"kind": "individual", "deposits": D("-1")},
        {"kind": "individual", "aum": D("NaN")},
        {"kind": "individual", "age": -1},
    ],
)
def test_impossible_inputs_are_refused(arguments):
    with pytest.raises(ValueError):
        TierInputs(**arguments)


def test_float_amounts_are_refused():
    with pytest.raises(TypeError, match="deposits must be a Decimal"):
        TierInputs(kind="individual", deposits=100000.0)  # type: ignore[arg-type]


def test_changes_from_reports_only_the_changed_dimensions(policy):
    before = assess_tiers(person(deposits=D("99999.99"), aum=D("170000")), policy)
    after = assess_tiers(person(deposits=D("100000"), aum=D("250000")), policy)

    changes = {change.dimension: change for change in after.changes_from(before)}

    assert set(changes) == {"value_tier", "wealth_layer", "vip_level", "potential_vip"}
    assert (changes["value_tier"].old, changes["value_tier"].new) == ("general", "middle")
    assert (changes["wealth_layer"].old, changes["wealth_layer"].new) == ("layer_3", "layer_2")
    assert (changes["vip_level"].old, changes["vip_level"].new) == (None, "gold")
    assert (changes["potential_vip"].old, changes["potential_vip"].new) == ("gold", None)
    assert changes["value_tier"].reason == "value tier middle: deposits 100,000.00 >= 100,000.00"


def test_no_change_reports_nothing(policy):
    inputs = person(deposits=D("5000"), aum=D("60000"), products=frozenset({"card"}))

    assert assess_tiers(inputs, policy).changes_from(assess_tiers(inputs, policy)) == []


def test_a_single_dimension_change(policy):
    before = assess_tiers(person(deposits=D("5000"), aum=D("5000")), policy)
    after = assess_tiers(
        person(deposits=D("5000"), aum=D("5000"), products=frozenset({"e_banking"})), policy
    )

    changes = after.changes_from(before)

    assert [(c.dimension, c.old, c.new) for c in changes] == [
        ("product_use_types", "deposit", "deposit,fee_business")
    ]


def test_first_assessment_reports_every_set_dimension(policy):
    first = assess_tiers(person(age=65, deposits=D("60000"), aum=D("60000")), policy)

    changes = first.changes_from(None)

    assert [(c.dimension, c.old, c.new) for c in changes] == [
        ("value_tier", None, "general"),
        ("wealth_layer", None, "layer_4"),
        ("product_use_types", None, "deposit"),
        ("invalid", None, "false"),
    ]
    assert "kept with outlet staff" in changes[1].reason
