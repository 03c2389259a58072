"""Follow-up plans: the next contact due per tier and importance, reasons beyond the cycle, the
owner's changes, closed customers, the batch derivation and the overdue lists per role."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from crmkit.clock import BUSINESS_TZ, business_today
from services.visits import followups
from services.visits.followups import FollowupPolicy, FollowupPolicyError, next_due
from services.visits.models import CustomerCare
from tests.customer.conftest import Api
from tests.visits.conftest import (
    known_customer,
    limit_approved,
    owned_by,
    risk_flagged,
    runtime_of,
    status_changed,
)

POLICY_FILE = followups.POLICY_DIR / "2026-01-01.json"
CARE = "/api/v1/customers/{}/care"
OVERDUE = "/api/v1/followups/overdue"


def at_day(day: date, hour: int = 10) -> datetime:
    """An instant on a business date (Asia/Shanghai), in UTC."""
    return datetime.combine(day, time(hour), tzinfo=BUSINESS_TZ).astimezone(UTC)


def contact(api: Api, customer_id: str, day: date, channel: str = "in_person") -> None:
    """A contact made on ``day``, as recording a visit reports it to the plan."""
    runtime = runtime_of(api)
    with runtime.session_factory() as session:
        followups.contact_made(session, customer_id, at_day(day), channel)
        session.commit()


def care_of(api: Api, customer_id: str) -> CustomerCare:
    with runtime_of(api).session_factory() as session:
        care = session.get(CustomerCare, customer_id)
        assert care is not None
        return care


def care(api: Api, customer_id: str, user: str = "manager.li") -> dict[str, Any]:
    resp = api.as_(user).get(CARE.format(customer_id))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def plan() -> followups.CompiledPlan:
    return followups.compiled(followups.policy_on(date(2026, 11, 30)))


# -- the pure derivation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value_tier", "wealth_layer", "vip_level", "days"),
    [
        ("high", None, None, 30),  # in person monthly
        ("middle", None, None, 90),  # quarterly
        ("general", None, None, 180),  # twice a year
        (None, None, None, 180),  # no tier: the default plan
        (None, "layer_1", None, 30),
        (None, "layer_2", None, 30),
        (None, "layer_3", None, 90),
        (None, "layer_4", None, 180),
        (None, None, "gold", 30),
        ("general", None, "diamond", 30),  # the most frequent plan wins
        ("middle", "layer_4", None, 90),
        ("general", "layer_3", None, 90),
    ],
)
def test_each_tier_has_its_interval_and_the_most_frequent_wins(
    value_tier: str | None, wealth_layer: str | None, vip_level: str | None, days: int
) -> None:
    last = date(2026, 3, 1)
    due = next_due(plan(), value_tier, wealth_layer, vip_level, None, last, None)
    assert due == (last + timedelta(days=days), "cycle")


@pytest.mark.parametrize(
    ("value_tier", "importance", "days"),
    [
        ("high", "high", 15),  # 30 x 0.5
        ("high", "normal", 30),
        ("high", "low", 45),  # 30 x 1.5
        ("middle", "high", 45),  # 90 x 0.5
        ("middle", "low", 135),  # 90 x 1.5
        ("general", "high", 90),  # 180 x 0.5
        ("general", "low", 270),  # 180 x 1.5
    ],
)
def test_the_importance_scales_the_interval(value_tier: str, importance: str, days: int) -> None:
    last = date(2026, 5, 10)
    due = next_due(plan(), value_tier, None, None, importance, last, None)
    assert due == (last + timedelta(days=days), "cycle")


def test_the_scaled_interval_is_rounded_half_up_to_whole_days() -> None:
    data = json.loads(POLICY_FILE.read_text(encoding="utf-8"))
    data["plans"]["monthly_visit"]["interval_days"] = 45
    odd = followups.compiled(FollowupPolicy.model_validate(data))
    # 45 x 0.5 = 22.5 -> 23 days; 45 x 1.5 = 67.5 -> 68 days.
    assert odd.step(("high", None, None, "high")) == timedelta(days=23)
    assert odd.step(("high", None, None, "low")) == timedelta(days=68)


def test_the_base_is_the_last_contact_else_the_day_the_owner_took_the_customer() -> None:
    owned_since = date(2026, 6, 1)
    assert next_due(plan(), "high", None, None, None, None, owned_since) == (
        date(2026, 7, 1),  # June 1 + 30 days
        "cycle",
    )
    assert next_due(plan(), "high", None, None, None, date(2026, 6, 20), owned_since) == (
        date(2026, 7, 20),
        "cycle",
    )
    assert next_due(plan(), "high", None, None, None, None, None) is None


def test_an_earlier_pending_date_stands_and_a_later_one_gives_way() -> None:
    last = date(2026, 6, 1)  # cycle: July 1
    risk = (date(2026, 6, 10), "risk")
    assert next_due(plan(), "high", None, None, None, last, None, risk) == risk
    late = (date(2026, 8, 1), "post_sale")
    assert next_due(plan(), "high", None, None, None, last, None, late) == (
        date(2026, 7, 1),
        "cycle",
    )


def test_a_policy_naming_an_undefined_plan_is_refused(tmp_path: Path) -> None:
    data = json.loads(POLICY_FILE.read_text(encoding="utf-8"))
    data["tiers"]["value_tier"]["high"] = "weekly_visit"
    (tmp_path / "2027-01-01.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FollowupPolicyError, match="weekly_visit"):
        followups.policies(tmp_path)


def test_no_policy_is_in_force_before_the_first() -> None:
    with pytest.raises(FollowupPolicyError):
        followups.policy_on(date(2025, 12, 31))


# -- one customer, through its events -----------------------------------------------------------
def test_a_new_customer_is_due_one_interval_after_its_owner_took_it(api: Api) -> None:
    today = business_today()
    customer_id = known_customer(api, value_tier="high")
    body = care(api, customer_id)
    assert body["next_due_on"] == str(today + timedelta(days=30))
    assert (body["due_reason"], body["plan_version"], body["overdue_days"]) == (
        "cycle",
        "2026-01-01",
        0,
    )
    assert body["plan"]["id"] == "monthly_visit" and body["plan"]["channel"] == "in_person"
    assert body["plan"]["greetings"] is True
    assert body["owner_id"] == "manager.li" and body["importance"] == "normal"


def test_a_customer_without_owner_or_contact_keeps_the_date_first_given(api: Api) -> None:
    customer_id = known_customer(api, value_tier="middle", owner=None)
    runtime = runtime_of(api)
    first = business_today() + timedelta(days=90)
    assert care_of(api, customer_id).next_due_on == first
    with runtime.session_factory() as session:
        row = session.get(CustomerCare, customer_id)
        assert row is not None
        followups.refresh(session, row, today=date(2027, 3, 1))  # a later derivation
        assert row.next_due_on == first
        row.next_due_on = None
        followups.refresh(session, row, today=date(2027, 3, 1))  # none yet: from that day
        assert row.next_due_on == date(2027, 5, 30)  # March 1 + 90 days


def test_the_importance_is_set_by_the_owner_or_a_head_and_moves_the_due_date(api: Api) -> None:
    today = business_today()
    customer_id = known_customer(api, value_tier="high")
    resp = api.as_("manager.li").patch(CARE.format(customer_id), json={"importance": "high"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["next_due_on"] == str(today + timedelta(days=15))  # 30 x 0.5
    assert resp.json()["plan"]["interval_days"] == 15
    resp = api.as_("head.sun").patch(CARE.format(customer_id), json={"importance": "low"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["next_due_on"] == str(today + timedelta(days=45))  # 30 x 1.5
    refused = api.as_("manager.zhou").patch(CARE.format(customer_id), json={"importance": "high"})
    assert refused.status_code == 403
    assert "owner" in refused.json()["detail"]
    assert api.as_("manager.zhou").get(CARE.format(customer_id)).status_code == 403
    bad = api.as_("manager.li").patch(CARE.format(customer_id), json={"importance": "vital"})
    assert bad.status_code == 422


def test_reasons_beyond_the_cycle_bring_the_date_forward_until_a_contact(api: Api) -> None:
    today = business_today()
    customer_id = known_customer(api, value_tier="general")  # cycle: today + 180
    limit_approved(api, customer_id)
    body = care(api, customer_id)
    assert (body["next_due_on"], body["due_reason"]) == (
        str(today + timedelta(days=7)),
        "post_sale",
    )
    risk_flagged(api, customer_id, "warning")  # within 3 days: earlier, it takes over
    body = care(api, customer_id)
    assert (body["next_due_on"], body["due_reason"]) == (str(today + timedelta(days=3)), "risk")
    assert body["risk_status"] == "warning"
    limit_approved(api, customer_id)  # 7 days: later than what is due, changes nothing
    assert care(api, customer_id)["due_reason"] == "risk"
    # A tier change derives again; the earlier risk date stands.
    runtime = runtime_of(api)
    with runtime.session_factory() as session:
        row = session.get(CustomerCare, customer_id)
        assert row is not None
        followups.refresh(session, row)
        assert (row.next_due_on, row.due_reason) == (today + timedelta(days=3), "risk")
    contact(api, customer_id, today, "phone")
    body = care(api, customer_id)
    assert (body["next_due_on"], body["due_reason"]) == (str(today + timedelta(days=180)), "cycle")
    assert body["last_channel"] == "phone"


def test_an_older_contact_moves_nothing(api: Api) -> None:
    customer_id = known_customer(api, value_tier="high")
    contact(api, customer_id, date(2026, 10, 1))
    contact(api, customer_id, date(2026, 9, 1))  # recorded late, before the last one
    row = care_of(api, customer_id)
    assert row.next_due_on == date(2026, 10, 31)  # Oct 1 + 30 days
    assert row.last_contact_at == at_day(date(2026, 10, 1))


def test_after_an_ownership_change_the_due_date_follows_the_new_owner(api: Api) -> None:
    today = business_today()
    contacted = known_customer(api, value_tier="high")
    contact(api, contacted, date(2026, 11, 20))
    never = known_customer(api, value_tier="middle")
    owned_by(api, contacted, "manager.zhou")
    owned_by(api, never, "manager.zhou")
    row = care_of(api, contacted)
    # The last contact still counts: Nov 20 + 30 days, now on the new owner's list.
    assert (row.owner_id, row.next_due_on) == ("manager.zhou", date(2026, 12, 20))
    row = care_of(api, never)
    assert (row.owner_id, row.next_due_on) == ("manager.zhou", today + timedelta(days=90))


def test_a_closed_customer_has_no_contact_due(api: Api) -> None:
    customer_id = known_customer(api, value_tier="high")
    contact(api, customer_id, date(2026, 9, 1))
    status_changed(api, customer_id, "active", "closed")
    body = care(api, customer_id)
    assert (body["next_due_on"], body["due_reason"], body["plan"]) == (None, None, None)
    risk_flagged(api, customer_id)
    assert care(api, customer_id)["next_due_on"] is None
    contact(api, customer_id, date(2026, 11, 1))
    assert care(api, customer_id)["next_due_on"] is None
    assert api.as_("admin").get(OVERDUE).json()["total"] == 0


def test_a_customer_event_brings_a_visit_forward(api: Api) -> None:
    today = business_today()
    customer_id = known_customer(api, value_tier="general")
    status_changed(api, customer_id, "active", "dormant")
    body = care(api, customer_id)
    assert (body["next_due_on"], body["due_reason"]) == (str(today + timedelta(days=5)), "event")


# -- the whole book -----------------------------------------------------------------------------
def test_derive_all_corrects_stale_rows_once_and_skips_rows_changed_meanwhile(api: Api) -> None:
    runtime = runtime_of(api)
    stale = known_customer(api, value_tier="high")
    contact(api, stale, date(2026, 11, 1))
    busy = known_customer(api, value_tier="general")
    contact(api, busy, date(2026, 11, 1))
    care_table = followups.CARE
    with runtime.session_factory() as session:
        session.execute(
            update(care_table)
            .where(care_table.c.customer_id.in_([stale, busy]))
            .values(next_due_on=date(2030, 1, 1), plan_version="2025-01-01")
        )
        session.commit()
    with runtime.session_factory() as session:
        rows = session.execute(followups._book_query("", None)).all()
        derived = followups.derive_rows(plan(), rows, business_today())
        assert {d[0] for d in derived} == {stale, busy}
        # A consumer changes ``busy`` after the batch read it: the batch leaves it alone.
        session.execute(
            update(care_table)
            .where(care_table.c.customer_id == busy)
            .values(updated_at=datetime.now(UTC) + timedelta(seconds=1))
        )
        followups.write_derived(session, derived)
        session.commit()
    assert care_of(api, stale).next_due_on == date(2026, 12, 1)  # Nov 1 + 30 days
    assert care_of(api, busy).next_due_on == date(2030, 1, 1)
    result = followups.derive_all(runtime.session_factory, chunk_size=1)
    assert (result.walked, result.changed) == (2, 1)
    assert care_of(api, busy).next_due_on == date(2027, 4, 30)  # Nov 1 + 180 days
    assert followups.derive_all(runtime.session_factory, chunk_size=1).changed == 0


def test_derive_all_walks_a_large_book_chunk_by_chunk(api: Api) -> None:
    """120 customers in chunks of 50 (PostgreSQL copies each chunk into its temporary table)."""
    runtime = runtime_of(api)
    now = datetime.now(UTC)
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(120)]
    tables = CustomerCare.metadata.tables
    with runtime.session_factory() as session:
        session.execute(
            tables["customer_refs"].insert(),
            [
                {
                    "customer_id": cid,
                    "name": "Bulk",
                    "kind": "individual",
                    "org_unit": "/HQ/U01/B01",
                    "business_line": "personal",
                    "status": "closed" if n == 7 else "active",
                    "as_of": now,
                }
                for n, cid in enumerate(ids)
            ],
        )
        session.execute(
            tables[CustomerCare.__tablename__].insert(),
            [
                {
                    "customer_id": cid,
                    "org_unit": "/HQ/U01/B01",
                    "value_tier": "high" if n % 2 else "general",
                    "last_contact_at": at_day(date(2026, 10, 1)),
                    "next_due_on": date(2026, 10, 2),
                    "due_reason": "cycle",
                    "updated_at": now,
                }
                for n, cid in enumerate(ids)
            ],
        )
        session.commit()
    result = followups.derive_all(runtime.session_factory, chunk_size=50)
    assert (result.walked, result.changed) == (120, 120)
    assert care_of(api, ids[1]).next_due_on == date(2026, 10, 31)  # high: Oct 1 + 30 days
    assert care_of(api, ids[2]).next_due_on == date(2027, 3, 30)  # general: Oct 1 + 180 days
    assert care_of(api, ids[7]).next_due_on is None  # closed
    assert followups.derive_all(runtime.session_factory, chunk_size=50).changed == 0


def test_a_new_plan_in_force_derives_the_book_again(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_of(api)
    customer_id = known_customer(api, value_tier="middle")
    contact(api, customer_id, date(2026, 11, 1))
    assert care_of(api, customer_id).next_due_on == date(2027, 1, 30)  # Nov 1 + 90 days
    data = json.loads(POLICY_FILE.read_text(encoding="utf-8"))
    data.update(version="2026-11-15", effective_from="2026-11-15")
    data["plans"]["quarterly_call"]["interval_days"] = 60
    current = followups.policies()
    monkeypatch.setattr(
        followups, "policies", lambda directory=None: (*current, FollowupPolicy(**data))
    )
    with runtime.session_factory() as session:
        assert followups.derived_by_another_plan(session, "2026-11-15")
    followups.remind(runtime, today=date(2026, 11, 30))
    row = care_of(api, customer_id)
    assert (row.next_due_on, row.plan_version) == (date(2026, 12, 31), "2026-11-15")  # + 60


# -- overdue lists ------------------------------------------------------------------------------
@pytest.fixture
def overdue_book(api: Api) -> dict[str, str]:
    """Overdue customers: two of manager.li (B01), one of manager.zhou (B02), one of B01
    without an owner; and one of manager.li not due yet."""
    found = {
        "li_high": known_customer(api, value_tier="high"),
        "li_general": known_customer(api, value_tier="general"),
        "zhou": known_customer(
            api, value_tier="high", org_unit="/HQ/U01/B02", owner="manager.zhou"
        ),
        "unowned": known_customer(api, value_tier="high", owner=None),
        "li_fresh": known_customer(api, value_tier="high"),
    }
    today = business_today()
    contact(api, found["li_high"], today - timedelta(days=40))  # due 10 days ago
    contact(api, found["li_general"], today - timedelta(days=181))  # due yesterday
    contact(api, found["zhou"], today - timedelta(days=35))  # due 5 days ago
    contact(api, found["unowned"], today - timedelta(days=32))  # due 2 days ago
    return found


def _overdue(api: Api, user: str, **params: Any) -> Any:
    return api.as_(user).get(OVERDUE, params=params)


def test_a_manager_lists_their_own_overdue_customers(
    api: Api, overdue_book: dict[str, str]
) -> None:
    resp = _overdue(api, "manager.li")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["as_of"] == str(business_today())
    days = {i["customer_id"]: i["overdue_days"] for i in body["items"]}
    assert days == {overdue_book["li_high"]: 10, overdue_book["li_general"]: 1}
    assert body["groups"] == [
        {
            "org_unit": "/HQ/U01/B01",
            "owner_id": "manager.li",
            "customers": 2,
            "most_overdue_days": 10,
        }
    ]
    refused = _overdue(api, "manager.li", owner="manager.zhou")
    assert refused.status_code == 403 and "your own" in refused.json()["detail"]


def test_heads_list_their_subtree_with_the_unowned_and_auditors_everything(
    api: Api, overdue_book: dict[str, str]
) -> None:
    body = _overdue(api, "head.sun").json()
    # Ordered by unit, owner (none first), due date.
    assert [i["customer_id"] for i in body["items"]] == [
        overdue_book["unowned"],
        overdue_book["li_high"],
        overdue_book["li_general"],
    ]
    assert [(g["owner_id"], g["customers"]) for g in body["groups"]] == [
        (None, 1),
        ("manager.li", 2),
    ]
    assert _overdue(api, "head.sun", org_unit="/HQ/U01/B02").status_code == 403
    branch = _overdue(api, "president.zhao").json()
    assert branch["total"] == 4
    assert [(g["org_unit"], g["owner_id"]) for g in branch["groups"]] == [
        ("/HQ/U01/B01", None),
        ("/HQ/U01/B01", "manager.li"),
        ("/HQ/U01/B02", "manager.zhou"),
    ]
    narrowed = _overdue(api, "president.zhao", org_unit="/HQ/U01/B02", owner="manager.zhou")
    assert [i["overdue_days"] for i in narrowed.json()["items"]] == [5]
    audit = _overdue(api, "auditor.chen", limit=2, offset=2).json()
    assert (audit["total"], len(audit["items"])) == (4, 2)
    assert _overdue(api, "teller.wang").json()["total"] == 0
