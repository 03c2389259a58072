"""Core banking's figures through the API: tiers decided by the newest snapshot, exact money."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from tests.customer.conftest import Api, person

CUSTOMERS = "/api/v1/customers"
FIGURES = (
    "deposits",
    "loans",
    "personal_loans",
    "aum",
    "card_annual_spend",
    "custody_margin",
    "overdue_amount",
    "net_interest_contribution",
    "fee_income",
)
MONEY = re.compile(r"^-?[0-9]+\.[0-9]{2}$")


@pytest.fixture
def customer_id(api: Api) -> str:
    resp = api.as_("manager.li").post(CUSTOMERS, json=person())
    assert resp.status_code == 201, resp.text
    created: str = resp.json()["id"]
    return created


def put(api: Api, customer_id: str, day: str, **figures: Any) -> Any:
    return api.as_client("customer.financials").put(
        f"{CUSTOMERS}/{customer_id}/financials", json={"business_date": day, **figures}
    )


def recorded(api: Api, customer_id: str, day: str, **figures: Any) -> dict[str, Any]:
    resp = put(api, customer_id, day, **figures)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def history(api: Api, customer_id: str, **params: Any) -> dict[str, Any]:
    resp = api.as_("manager.li").get(f"{CUSTOMERS}/{customer_id}/financials", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def outbox_types(api: Api) -> Counter[str]:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    outbox = runtime.tables.outbox
    with runtime.engine.connect() as conn:
        return Counter(conn.execute(select(outbox.c.event_type)).scalars().all())


def outbox_payloads(api: Api, event_type: str) -> list[dict[str, Any]]:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    outbox = runtime.tables.outbox
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.envelope)
            .where(outbox.c.event_type == event_type)
            .order_by(outbox.c.seq)
        ).scalars()
        return [json.loads(row)["data"] for row in rows]


# -- value tier boundaries --------------------------------------------------------------------

BOUNDARIES = [
    ("deposits", "1000000.00", "high"),
    ("deposits", "999999.99", "middle"),
    ("deposits", "100000.00", "middle"),
    ("deposits", "99999.99", "general"),
    ("loans", "2000000.00", "high"),
    ("loans", "1999999.99", "middle"),
    ("loans", "500000.00", "middle"),
    ("loans", "499999.99", "general"),
]


@pytest.mark.parametrize(("measure", "amount", "tier"), BOUNDARIES)
def test_value_tier_boundaries_through_the_api(
    api: Api, customer_id: str, measure: str, amount: str, tier: str
) -> None:
    body = recorded(api, customer_id, "2026-11-20", **{measure: amount})
    assert body["snapshot"][measure] == amount
    assert body["tiers"]["value_tier"] == tier
    assert body["tiers"]["as_of"] == "2026-11-20"
    assert body["tiers"]["policy_version"] == "2026-01-01"
    value_changes = [c for c in body["tier_changes"] if c["dimension"] == "value_tier"]
    assert len(value_changes) == 1
    assert (value_changes[0]["old"], value_changes[0]["new"]) == (None, tier)
    assert value_changes[0]["reason"]
    stored = api.as_("manager.li").get(f"{CUSTOMERS}/{customer_id}").json()
    assert stored["tiers"]["value_tier"] == tier
    listed = api.as_("manager.li").get(CUSTOMERS, params={"value_tier": tier}).json()
    assert [item["id"] for item in listed["items"]] == [customer_id]


def test_an_older_business_date_does_not_change_the_tiers(api: Api, customer_id: str) -> None:
    newest = recorded(api, customer_id, "2026-11-20", deposits="1000000.00")
    assert newest["tiers"]["value_tier"] == "high"
    before = outbox_types(api)

    older = recorded(api, customer_id, "2026-11-10", deposits="0")
    assert older["snapshot"]["business_date"] == "2026-11-10"
    assert older["tier_changes"] == []
    assert older["tiers"] == newest["tiers"]
    stored = api.as_("manager.li").get(f"{CUSTOMERS}/{customer_id}").json()["tiers"]
    assert (stored["value_tier"], stored["as_of"]) == ("high", "2026-11-20")
    after = outbox_types(api)
    assert after["customer.financials_updated"] == before["customer.financials_updated"] + 1
    assert after["customer.tier_changed"] == before["customer.tier_changed"]
    assert [s["business_date"] for s in history(api, customer_id)["items"]] == [
        "2026-11-20",
        "2026-11-10",
    ]

    later = recorded(api, customer_id, "2026-11-25", deposits="0")
    assert later["tiers"]["value_tier"] == "general"
    assert later["tiers"]["as_of"] == "2026-11-25"
    change = next(c for c in later["tier_changes"] if c["dimension"] == "value_tier")
    assert (change["old"], change["new"]) == ("high", "general")

    corrected = recorded(api, customer_id, "2026-11-25", deposits="150000")
    change = next(c for c in corrected["tier_changes"] if c["dimension"] == "value_tier")
    assert (change["old"], change["new"]) == ("general", "middle")
    assert history(api, customer_id)["total"] == 3


def test_the_same_figures_twice_change_nothing(api: Api, customer_id: str) -> None:
    figures = {"deposits": "250000.00", "aum": "300000", "products": ["deposit", "wealth"]}
    first = recorded(api, customer_id, "2026-11-20", **figures)
    assert first["tier_changes"] != []
    events = outbox_types(api)
    changes = api.as_("manager.li").get(f"{CUSTOMERS}/{customer_id}/changes").json()

    second = recorded(api, customer_id, "2026-11-20", **figures)
    assert second["tier_changes"] == []
    assert second["tiers"] == first["tiers"]
    assert second["snapshot"] == first["snapshot"]  # recorded_at included: nothing was written
    assert outbox_types(api) == events
    assert api.as_("manager.li").get(f"{CUSTOMERS}/{customer_id}/changes").json() == changes

    # The same figures written differently are the same figures.
    rewritten = recorded(
        api,
        customer_id,
        "2026-11-20",
        deposits="250000",
        aum=300000,
        products=["wealth", "deposit", "wealth"],
    )
    assert rewritten["tier_changes"] == [] and rewritten["snapshot"] == first["snapshot"]
    assert outbox_types(api) == events

    # A cent more is a new fact (announced) that leaves the tiers as they were.
    corrected = recorded(api, customer_id, "2026-11-20", **{**figures, "deposits": "250000.01"})
    assert corrected["tier_changes"] == []
    assert corrected["snapshot"]["deposits"] == "250000.01"
    after = outbox_types(api)
    assert after["customer.financials_updated"] == events["customer.financials_updated"] + 1
    assert after["customer.tier_changed"] == events["customer.tier_changed"]


def test_history_is_newest_first_and_filtered_by_date(api: Api, customer_id: str) -> None:
    for n, day in enumerate(["2026-11-05", "2026-11-15", "2026-11-01", "2026-11-10"], start=1):
        recorded(api, customer_id, day, deposits=str(n))
    full = history(api, customer_id)
    assert full["total"] == 4
    assert [s["business_date"] for s in full["items"]] == [
        "2026-11-15",
        "2026-11-10",
        "2026-11-05",
        "2026-11-01",
    ]
    assert [s["deposits"] for s in full["items"]] == ["2.00", "4.00", "1.00", "3.00"]

    def dates(**params: Any) -> tuple[list[str], int]:
        page = history(api, customer_id, **params)
        return [s["business_date"] for s in page["items"]], page["total"]

    assert dates(since="2026-11-05", until="2026-11-10") == (["2026-11-10", "2026-11-05"], 2)
    assert dates(since="2026-11-06") == (["2026-11-15", "2026-11-10"], 2)
    assert dates(until="2026-11-05") == (["2026-11-05", "2026-11-01"], 2)
    assert dates(since="2026-11-15", until="2026-11-15") == (["2026-11-15"], 1)
    assert dates(since="2026-11-16") == ([], 0)
    assert dates(since="2026-11-10", until="2026-11-05") == ([], 0)
    assert dates(limit=2, offset=1) == (["2026-11-10", "2026-11-05"], 4)
    bad = api.as_("manager.li").get(
        f"{CUSTOMERS}/{customer_id}/financials", params={"since": "yesterday"}
    )
    assert bad.status_code == 422


# -- money on the wire ------------------------------------------------------------------------


def test_money_travels_as_strings_with_two_decimals(api: Api, customer_id: str) -> None:
    body = recorded(
        api,
        customer_id,
        "2026-11-20",
        deposits="1234.5",
        loans="0",
        aum="0.1",
        card_annual_spend=12,
        net_interest_contribution="-12.3",
        fee_income="7.05",
    )
    snapshot = body["snapshot"]
    for name in FIGURES:
        assert isinstance(snapshot[name], str) and MONEY.match(snapshot[name]), name
    assert (snapshot["deposits"], snapshot["loans"], snapshot["aum"]) == ("1234.50", "0.00", "0.10")
    assert snapshot["card_annual_spend"] == "12.00"
    assert snapshot["net_interest_contribution"] == "-12.30"
    assert snapshot["fee_income"] == "7.05"
    assert snapshot["custody_margin"] == "0.00"
    assert history(api, customer_id)["items"] == [snapshot]
    [event] = outbox_payloads(api, "customer.financials_updated")
    assert {name: event[name] for name in FIGURES} == {name: snapshot[name] for name in FIGURES}


def test_a_json_number_is_taken_as_its_exact_decimal(api: Api, customer_id: str) -> None:
    body = recorded(api, customer_id, "2026-11-20", deposits=0.1, aum=100000.35)
    assert (body["snapshot"]["deposits"], body["snapshot"]["aum"]) == ("0.10", "100000.35")
    assert history(api, customer_id)["items"][0]["aum"] == "100000.35"


def test_the_largest_amount_the_contract_allows_is_kept_exactly(api: Api, customer_id: str) -> None:
    """18 digits, 2 of them decimals (``Numeric(18, 2)`` and the schema's ``max_digits``)."""
    largest = "9999999999999999.99"
    body = recorded(api, customer_id, "2026-11-20", deposits=largest, aum="1234567890123456.78")
    assert body["snapshot"]["deposits"] == largest
    stored = history(api, customer_id)["items"]
    assert [(s["deposits"], s["aum"]) for s in stored] == [(largest, "1234567890123456.78")]


INVALID = [
    {"deposits": -1},
    {"deposits": "-0.01"},
    {"deposits": "0.001"},
    {"deposits": 0.125},
    {"deposits": "NaN"},
    {"deposits": "Infinity"},
    {"deposits": "lots"},
    {"deposits": "12345678901234567.89"},  # 19 digits
    {"loans": "-5"},
    {"aum": None},
    {"card_level": "bronze"},
    {"products": ["crypto"]},
    {"surprise": "1"},
]


@pytest.mark.parametrize("figures", INVALID, ids=str)
def test_invalid_figures_are_refused(api: Api, customer_id: str, figures: dict[str, Any]) -> None:
    resp = put(api, customer_id, "2026-11-20", **figures)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert [e["field"].split(".")[0] for e in resp.json()["errors"]] == list(figures)
    assert history(api, customer_id)["total"] == 0


def test_a_business_date_is_required(api: Api, customer_id: str) -> None:
    resp = api.as_client("customer.financials").put(
        f"{CUSTOMERS}/{customer_id}/financials", json={"deposits": "1.00"}
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["business_date"]


def test_figures_for_an_unknown_customer_are_404(api: Api) -> None:
    resp = put(api, "00000000-0000-4000-8000-000000000000", "2026-11-20", deposits="1.00")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_a_snapshot_before_any_tier_policy_is_refused_by_field(api: Api) -> None:
    created = api.as_("manager.li").post("/api/v1/customers", json=person()).json()
    resp = api.as_client("customer.financials").put(
        f"/api/v1/customers/{created['id']}/financials",
        json={"business_date": "2020-12-31", "deposits": "10.00"},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"] == [
        {"field": "business_date", "reason": "no tier policy in force"}
    ]
    listed = api.as_("manager.li").get(f"/api/v1/customers/{created['id']}/financials")
    assert listed.json()["total"] == 0
