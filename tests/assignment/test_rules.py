"""Assignment rules as data: each default rule, their precedence, capacity, VIPs, applying."""

from __future__ import annotations

import itertools
import uuid
from datetime import date
from typing import Any

import pytest

from crmkit.clock import business_today
from crmkit.consumer import RawRecord
from crmkit.events import build_envelope
from services.assignment import rules
from services.customer.events import CUSTOMER_CREATED, CUSTOMER_FINANCIALS_UPDATED
from tests.assignment.test_ownership import events, problem
from tests.customer.conftest import Api

RUNS = "/api/v1/assignment-runs"
_offsets = itertools.count(1000)
ZERO = "0.00"


def customer(
    api: Api,
    *,
    org_unit: str = "/HQ/U01/B01",
    kind: str = "individual",
    line: str = "personal",
    loans: str | None = None,
    products: list[str] | None = None,
    **tiers: str,
) -> str:
    """A customer known from its events: created with ``tiers``, and its figures if given."""
    customer_id = str(uuid.uuid4())
    created = {
        "customer_id": customer_id,
        "kind": kind,
        "name": f"Customer {customer_id[:4]}",
        "org_unit": org_unit,
        "business_line": line,
        "status": "active",
        "segment": "stock",
        **tiers,
    }
    records = [_record(CUSTOMER_CREATED, created, customer_id)]
    if loans is not None or products:
        figures = {
            "customer_id": customer_id,
            "business_date": "2026-11-27",
            "deposits": ZERO,
            "loans": loans or ZERO,
            "personal_loans": ZERO,
            "aum": ZERO,
            "card_annual_spend": ZERO,
            "custody_margin": ZERO,
            "overdue_amount": ZERO,
            "net_interest_contribution": ZERO,
            "fee_income": ZERO,
            "card_level": None,
            "products": products or [],
        }
        records.append(_record(CUSTOMER_FINANCIALS_UPDATED, figures, customer_id))
    api.client.app.state.runtime.applier.apply_batch(records)  # type: ignore[attr-defined]
    return customer_id


def _record(spec: Any, data: dict[str, Any], key: str) -> RawRecord:
    envelope = build_envelope(spec, data, source="customer", key=key, actor="test")
    return RawRecord("crm.customer", 0, next(_offsets), envelope.to_bytes())


def staff(api: Api, staff_id: str, roles: list[str], unit: str, **extra: Any) -> None:
    body = {"id": staff_id, "name": staff_id, "roles": roles, "org_unit": unit, **extra}
    resp = api.as_("admin").post("/api/v1/staff", json=body)
    assert resp.status_code == 201, resp.text


@pytest.fixture
def bank(org: Api) -> Api:
    """The test org with every kind of holder the default rules name."""
    staff(org, "president.zhao", ["branch_president"], "/HQ/U01")
    staff(org, "leader.he", ["head_office_leader"], "/HQ")
    staff(org, "wealth.ma", ["wealth_manager"], "/HQ/U01/B01")
    staff(org, "lobby.gao", ["lobby_manager"], "/HQ/U01/B01")
    staff(org, "corp.lu", ["customer_manager"], "/HQ/U01/B01", business_line="corporate")
    staff(org, "personal.yu", ["customer_manager"], "/HQ/U01/B01", business_line="personal")
    # manager.li (capacity 3, no line) and teller.wang come from the org fixture.
    return org


def plan(api: Api, who: str = "head.sun", **body: Any) -> dict[str, Any]:
    resp = api.as_(who).post(RUNS, json=body)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def placed(run: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    return {i["customer_id"]: (i["rule"], i["staff_id"]) for i in run["items"]}


def test_each_default_rule_places_its_customers(bank: Api) -> None:
    cases = {
        customer(bank, wealth_layer="layer_1"): ("high_value", "president.zhao"),
        customer(bank, vip_level="diamond"): ("high_value", "president.zhao"),
        customer(bank, value_tier="high"): ("high_tier", "head.sun"),
        customer(bank, kind="corporate", line="corporate", products=["payroll_agency"]): (
            "payroll_enterprise",
            "corp.lu",
        ),
        customer(bank, loans="50000.00"): ("loan_customer", "personal.yu"),
        customer(bank, wealth_layer="layer_2"): ("wealth_layer_2", "wealth.ma"),
        customer(bank, wealth_layer="layer_3"): ("wealth_layer_3", "head.sun"),
        customer(bank, value_tier="middle"): ("middle_deposit", "personal.yu"),
        customer(bank, wealth_layer="layer_4"): ("wealth_layer_4", "lobby.gao"),
        customer(bank): ("general_deposit", "teller.wang"),
    }
    run = plan(bank, "president.zhao")  # the union's president: B01's staff and themselves
    got = placed(run)
    for customer_id, expected in cases.items():
        assert got[customer_id] == expected, (expected, got[customer_id])
    in_force = rules.policy_on(business_today()).version
    assert run["dry_run"] is True and run["applied"] == 0 and run["policy_version"] == in_force
    # A dry run changes nothing.
    assert plan(bank, "president.zhao")["considered"] == run["considered"] == len(cases)
    # An outlet head may not give customers to the president above: high value stays unplaced.
    narrow = placed(plan(bank))
    assert narrow[next(iter(cases))] == ("high_value", None)


def test_the_first_rule_that_applies_decides(bank: Api) -> None:
    rich_borrower = customer(bank, value_tier="high", loans="900000.00")
    vip_in_high_layer = customer(bank, wealth_layer="layer_1", value_tier="high")
    got = placed(plan(bank, "president.zhao"))
    assert got[rich_borrower] == ("high_tier", "head.sun")  # before loan_customer
    assert got[vip_in_high_layer] == ("high_value", "president.zhao")  # before high_tier


def test_vip_members_never_go_to_a_teller(bank: Api) -> None:
    vip = customer(bank, vip_level="gold")
    rule, holder = placed(plan(bank))[vip]
    assert rule == "general_deposit"
    assert holder in {"manager.li", "personal.yu", "corp.lu"}


def test_nobody_goes_above_capacity_and_the_unplaced_are_reported(bank: Api) -> None:
    # Three borrowers of the corporate line for one corporate manager with room for two.
    patch = {"capacity": 2, "version": 1}
    assert bank.as_("admin").patch("/api/v1/staff/corp.lu", json=patch).status_code == 200
    firms = [customer(bank, kind="corporate", line="corporate", loans="1000.00") for _ in range(3)]
    run = plan(bank, dry_run=False)
    got = placed(run)
    assert sorted(str(got[f]) for f in firms) == [
        str(("loan_customer", "corp.lu")),
        str(("loan_customer", "corp.lu")),
        str(("loan_customer", None)),
    ]
    (left,) = [i for i in run["items"] if i["staff_id"] is None]
    assert "no active customer_manager with room" in left["reason"]
    assert (run["placed"], run["unplaced"], run["applied"]) == (2, 1, 2)
    assert bank.as_("admin").get("/api/v1/staff/corp.lu").json()["book_size"] == 2


def test_an_applied_run_assigns_and_announces_and_the_next_finds_nothing_new(bank: Api) -> None:
    ids = [customer(bank) for _ in range(3)] + [customer(bank, value_tier="high")]
    run = plan(bank, dry_run=False)
    assert run["applied"] == 4 and run["by_rule"] == {"general_deposit": 3, "high_tier": 1}
    owners = {
        i: bank.as_("head.sun").get(f"/api/v1/customers/{i}/owner").json()["owner"] for i in ids
    }
    assert all(o is not None and o["reason"] == "rule" for o in owners.values())
    announced = events(bank, "ownership.assigned")
    assert sorted(e["customer_id"] for e in announced) == sorted(ids)
    assert all(e["reason"] == "rule" for e in announced)
    assert plan(bank)["considered"] == 0


def test_a_run_stays_in_the_callers_subtree(bank: Api) -> None:
    customer(bank, org_unit="/HQ/U02/B01")
    near = customer(bank)
    run = plan(bank)  # head.sun: /HQ/U01/B01 only
    assert [i["customer_id"] for i in run["items"]] == [near]
    problem(bank.as_("head.sun").post(RUNS, json={"org_unit": "/HQ/U02"}), 403)
    problem(bank.as_("manager.li").post(RUNS, json={}), 403)
    assert plan(bank, "admin", org_unit="/HQ")["considered"] == 2


def test_the_policy_files_are_sound() -> None:
    policy = rules.policy_on(date(2026, 11, 30))
    assert policy.rules[-1].when == rules.Condition()  # the last rule catches everyone
    with pytest.raises(rules.RulePolicyError):
        rules.policy_on(date(2025, 12, 31))
