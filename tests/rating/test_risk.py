"""Early warning 风险识别与预警: signal flags from snapshots and grades, flags by hand, clearing,
the customer's risk status, its events and the watch list."""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from crmkit.auth import Caller
from services.rating import risk
from services.rating.app import create_app
from services.rating.models_risk import CustomerRisk, RiskFlag
from services.rating.schemas_risk import RiskLevel
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.rating.conftest import (
    events_of,
    financials,
    known_customer,
    rating_settings,
    runtime_of,
)

FLAGS = "/api/v1/risk-flags"
WATCHLIST = "/api/v1/risk-watchlist"


def status_of(api: Api, customer_id: str, who: str = "admin") -> dict[str, Any]:
    resp = api.as_(who).get(f"/api/v1/customers/{customer_id}/risk")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def flag(api: Api, who: str, customer_id: str, level: str, reason: str = "seen at a visit") -> Any:
    return api.as_(who).post(
        FLAGS, json={"customer_id": customer_id, "level": level, "reason": reason}
    )


def clear(api: Api, who: str, flag_id: str, reason: str = "checked: no risk") -> Any:
    return api.as_(who).post(f"{FLAGS}/{flag_id}/clear", json={"reason": reason})


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


def of_customer(payloads: list[dict[str, Any]], customer_id: str) -> list[dict[str, Any]]:
    return [p for p in payloads if p["customer_id"] == customer_id]


def confirmed(api: Api, customer_id: str, previous: str | None, grade: str) -> None:
    """A confirmed grade, as the confirmation calls the hook in its transaction."""
    with runtime_of(api).session_factory() as session:
        risk.on_grade_confirmed(session, customer_id, previous, grade)
        session.commit()


# -- overdue ------------------------------------------------------------------------------------
def test_an_overdue_snapshot_raises_a_warning_and_repaying_clears_it(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    financials(api, customer_id, "2026-11-27", deposits="50000.00")
    assert status_of(api, customer_id)["status"] == "none"
    assert events_of(api, "risk.flagged") == []

    financials(api, customer_id, "2026-11-28", deposits="50000.00", overdue_amount="1200.00")
    seen = status_of(api, customer_id, "manager.li")
    assert seen["status"] == "warning"
    [open_flag] = seen["open_flags"]
    assert (open_flag["source"], open_flag["signal"], open_flag["level"]) == (
        "signal",
        "overdue",
        "warning",
    )
    assert open_flag["raised_by"] == "system"
    assert open_flag["basis"] == {"business_date": "2026-11-28", "overdue_amount": "1200.00"}
    assert "1200.00" in open_flag["reason"]
    [flagged] = events_of(api, "risk.flagged")
    assert flagged == {
        "customer_id": customer_id,
        "flag_id": open_flag["id"],
        "org_unit": "/HQ/U01/B01",
        "level": "warning",
        "source": "signal",
        "signal": "overdue",
        "reason": open_flag["reason"],
        "flagged_by": "system",
        "risk_status": "warning",
    }

    financials(api, customer_id, "2026-11-29", deposits="50000.00", overdue_amount="0.00")
    assert status_of(api, customer_id)["status"] == "none"
    [cleared] = events_of(api, "risk.cleared")
    assert cleared["flag_id"] == open_flag["id"]
    assert (cleared["cleared_by"], cleared["risk_status"]) == ("system", "none")
    assert cleared["org_unit"] == "/HQ/U01/B01"
    stored = api.as_("admin").get(f"{FLAGS}/{open_flag['id']}").json()
    assert (stored["status"], stored["cleared_by"]) == ("cleared", "system")
    assert stored["cleared_reason"].startswith("Overdue repaid")


def test_a_persisting_overdue_raises_no_second_flag_and_a_large_one_is_severe(api: Api) -> None:
    customer_id = known_customer(api)
    financials(api, customer_id, "2026-11-26", overdue_amount="1200.00")
    financials(api, customer_id, "2026-11-27", overdue_amount="1500.00")
    financials(api, customer_id, "2026-11-28", overdue_amount="900.00")
    flags = api.as_("admin").get(FLAGS, params={"customer_id": customer_id}).json()
    assert flags["total"] == 1
    assert len(events_of(api, "risk.flagged")) == 1

    # 100,000.01 > 100,000.00 (the policy's severe line): the warning is replaced by a severe flag.
    financials(api, customer_id, "2026-11-29", overdue_amount="100000.01")
    seen = status_of(api, customer_id)
    assert seen["status"] == "severe"
    assert [f["level"] for f in seen["open_flags"]] == ["severe"]
    assert [e["level"] for e in events_of(api, "risk.flagged")] == ["warning", "severe"]
    [replaced] = events_of(api, "risk.cleared")
    assert replaced["risk_status"] == "severe"  # the status after the whole change
    assert replaced["flag_id"] == flags["items"][0]["id"]

    # Exactly the line is not above it; a lower overdue keeps the severe flag until repaid.
    financials(api, customer_id, "2026-11-30", overdue_amount="100000.00")
    assert status_of(api, customer_id)["status"] == "severe"
    assert len(events_of(api, "risk.flagged")) == 2
    financials(api, customer_id, "2026-12-01", overdue_amount="0.00")
    assert status_of(api, customer_id)["status"] == "none"
    assert [e["risk_status"] for e in events_of(api, "risk.cleared")] == ["severe", "none"]


# -- sharp balance drop -------------------------------------------------------------------------
def test_a_sharp_deposit_drop_raises_a_watch_until_deposits_recover(api: Api) -> None:
    customer_id = known_customer(api)
    financials(api, customer_id, "2026-11-26", deposits="80000.00")
    # (80,000 - 30,000) / 80,000 = 62.5 % >= 50 %, and 80,000 >= the 10,000 floor.
    financials(api, customer_id, "2026-11-27", deposits="30000.00")
    seen = status_of(api, customer_id)
    assert seen["status"] == "watch"
    [drop] = seen["open_flags"]
    assert drop["signal"] == "balance_drop"
    assert drop["basis"]["previous_deposits"] == "80000.00"
    assert drop["basis"]["deposits"] == "30000.00"
    assert "62.5%" in drop["reason"]
    [event] = events_of(api, "risk.flagged")
    assert (event["signal"], event["level"], event["risk_status"]) == (
        "balance_drop",
        "watch",
        "watch",
    )
    # 35,000 is still (80,000 - 35,000) / 80,000 = 56.25 % below the balance before the drop.
    financials(api, customer_id, "2026-11-28", deposits="35000.00")
    assert status_of(api, customer_id)["status"] == "watch"
    assert events_of(api, "risk.cleared") == []
    # 45,000: (80,000 - 45,000) / 80,000 = 43.75 % < 50 %: recovered, cleared by the system.
    financials(api, customer_id, "2026-11-29", deposits="45000.00")
    assert status_of(api, customer_id)["status"] == "none"
    [cleared] = events_of(api, "risk.cleared")
    assert (cleared["flag_id"], cleared["cleared_by"]) == (drop["id"], "system")
    assert len(events_of(api, "risk.flagged")) == 1


def test_no_drop_flag_under_the_floor_or_the_ratio(api: Api) -> None:
    small = known_customer(api)
    financials(api, small, "2026-11-27", deposits="9999.99")
    financials(api, small, "2026-11-28", deposits="100.00")  # 99 % drop, but from under 10,000
    mild = known_customer(api)
    financials(api, mild, "2026-11-27", deposits="20000.00")
    # (20,000 - 10,000.01) / 20,000 = 49.99995 % < 50 %.
    financials(api, mild, "2026-11-28", deposits="10000.01")
    assert status_of(api, small)["status"] == "none"
    assert status_of(api, mild)["status"] == "none"
    assert events_of(api, "risk.flagged") == []
    # Exactly half: (20,000 - 10,000) / 20,000 = 50 % is a sharp drop.
    edge = known_customer(api)
    financials(api, edge, "2026-11-27", deposits="20000.00")
    financials(api, edge, "2026-11-28", deposits="10000.00")
    assert status_of(api, edge)["status"] == "watch"


def test_overdue_and_drop_together_give_the_most_serious_status(api: Api) -> None:
    customer_id = known_customer(api)
    financials(api, customer_id, "2026-11-27", deposits="60000.00")
    financials(api, customer_id, "2026-11-28", deposits="6000.00", overdue_amount="50.00")
    seen = status_of(api, customer_id)
    assert seen["status"] == "warning"
    assert [f["signal"] for f in seen["open_flags"]] == ["overdue", "balance_drop"]
    assert [e["risk_status"] for e in events_of(api, "risk.flagged")] == ["warning", "warning"]
    financials(api, customer_id, "2026-11-29", deposits="6000.00", overdue_amount="0.00")
    # The overdue is gone, the drop stays: the status falls to watch.
    assert status_of(api, customer_id)["status"] == "watch"
    assert events_of(api, "risk.cleared")[-1]["risk_status"] == "watch"


# -- downgrade ----------------------------------------------------------------------------------
def test_a_confirmed_downgrade_raises_a_flag_that_grows_and_clears(api: Api) -> None:
    customer_id = known_customer(api)
    confirmed(api, customer_id, None, "A")  # a first grade: nothing to compare
    confirmed(api, customer_id, "A", "AA")  # an upgrade
    assert status_of(api, customer_id)["status"] == "none"
    confirmed(api, customer_id, "AA", "A")  # 1 notch: watch
    seen = status_of(api, customer_id)
    assert seen["status"] == "watch"
    [down] = seen["open_flags"]
    assert (down["signal"], down["basis"]) == ("downgrade", {"from_grade": "AA", "to_grade": "A"})
    confirmed(api, customer_id, "A", "A")  # the same grade again: no change
    assert len(events_of(api, "risk.flagged")) == 1
    # A → BBB is one notch, but AA → BBB two since the downgrade began: warning.
    confirmed(api, customer_id, "A", "BBB")
    seen = status_of(api, customer_id)
    assert seen["status"] == "warning"
    assert seen["open_flags"][0]["basis"] == {"from_grade": "AA", "to_grade": "BBB"}
    assert [e["level"] for e in events_of(api, "risk.flagged")] == ["watch", "warning"]
    confirmed(api, customer_id, "BBB", "A")  # still below AA: the flag stays
    assert status_of(api, customer_id)["status"] == "warning"
    confirmed(api, customer_id, "A", "AA")  # back at AA: cleared
    assert status_of(api, customer_id)["status"] == "none"
    assert events_of(api, "risk.cleared")[-1]["cleared_by"] == "system"


def test_a_downgrade_to_b_or_by_two_notches_is_a_warning(api: Api) -> None:
    to_b = known_customer(api)
    confirmed(api, to_b, "BB", "B")  # 1 notch, but to B
    two = known_customer(api)
    confirmed(api, two, "AAA", "A")  # 2 notches
    one = known_customer(api)
    confirmed(api, one, "AAA", "AA")
    assert status_of(api, to_b)["status"] == "warning"
    assert status_of(api, two)["status"] == "warning"
    assert status_of(api, one)["status"] == "watch"
    with pytest.raises(ValueError, match="not a grade"):
        confirmed(api, one, "AA", "Z")


def graded(api: Api, customer_id: str, grade: str) -> None:
    """A grade from the bank's credit system recorded by manager.li, confirmed by approver.qian."""
    body = {"customer_id": customer_id, "imported_grade": grade, "source": "credit_system"}
    resp = api.as_("manager.li").post("/api/v1/ratings", json=body)
    assert resp.status_code == 201, resp.text
    resp = api.as_("approver.qian").post(
        f"/api/v1/ratings/{resp.json()['id']}/confirm", json={"decision": "confirm"}
    )
    assert resp.status_code == 200, resp.text


def test_confirming_a_lower_grade_raises_the_downgrade_flag(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    graded(api, customer_id, "AA")
    assert status_of(api, customer_id)["status"] == "none"
    graded(api, customer_id, "BBB")  # AA → BBB: 2 notches, a warning
    seen = status_of(api, customer_id)
    assert seen["status"] == "warning"
    assert seen["open_flags"][0]["basis"] == {"from_grade": "AA", "to_grade": "BBB"}
    [event] = events_of(api, "risk.flagged")
    assert (event["signal"], event["flagged_by"], event["risk_status"]) == (
        "downgrade",
        "system",
        "warning",
    )
    graded(api, customer_id, "AAA")  # above the grade before the downgrade
    assert status_of(api, customer_id)["status"] == "none"


# -- by hand ------------------------------------------------------------------------------------
def test_staff_flag_by_hand_within_their_reach(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    resp = flag(api, "manager.li", customer_id, "warning", "the shop closed last week")
    assert resp.status_code == 201, resp.text
    mine = resp.json()
    assert resp.headers["Location"] == f"{FLAGS}/{mine['id']}"
    assert (mine["source"], mine["signal"], mine["raised_by"]) == ("manual", "manual", "manager.li")
    assert mine["basis"] is None
    resp = flag(api, "risk.he", customer_id, "severe", "court judgment against the guarantor")
    assert resp.status_code == 201, resp.text
    # Several flags by hand may be open at once; the status is the most serious.
    seen = status_of(api, customer_id, "manager.li")
    assert seen["status"] == "severe"
    assert [f["raised_by"] for f in seen["open_flags"]] == ["risk.he", "manager.li"]
    assert [
        (e["flagged_by"], e["source"], e["risk_status"]) for e in events_of(api, "risk.flagged")
    ] == [
        ("manager.li", "manual", "warning"),
        ("risk.he", "manual", "severe"),
    ]

    refused = problem(flag(api, "manager.zhou", customer_id, "watch"), 403)
    assert "owner and serving managers" in refused["detail"]
    problem(flag(api, "teller.wang", customer_id, "watch"), 403)
    problem(flag(api, "manager.li", "7f0c2a43-0000-4000-8000-000000000000", "watch"), 404)
    bad = problem(flag(api, "manager.li", customer_id, "alarming"), 422)
    assert bad["errors"][0]["field"] == "level"
    problem(flag(api, "manager.li", customer_id, "watch", "   "), 422)
    # Approvers of the subtree and administrators flag too.
    assert flag(api, "approver.qian", customer_id, "watch").status_code == 201
    assert flag(api, "admin", customer_id, "watch").status_code == 201
    assert len(of_customer(events_of(api, "risk.flagged"), customer_id)) == 4


def test_clearing_by_hand_follows_who_raised_it(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    own = flag(api, "manager.li", customer_id, "watch").json()
    theirs = flag(api, "risk.he", customer_id, "warning").json()

    refused = problem(clear(api, "manager.li", theirs["id"]), 403)
    assert "only the flags they raised" in refused["detail"]
    problem(clear(api, "manager.zhou", own["id"]), 403)

    resp = clear(api, "manager.li", own["id"], "misread the statement")
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["cleared_by"]) == ("cleared", "manager.li")
    [event] = events_of(api, "risk.cleared")
    assert (event["reason"], event["cleared_by"], event["risk_status"]) == (
        "misread the statement",
        "manager.li",
        "warning",  # risk.he's flag stays open
    )
    again = problem(clear(api, "manager.li", own["id"]), 409)
    assert again["cleared_by"] == "manager.li"

    assert clear(api, "risk.he", theirs["id"]).status_code == 200
    assert status_of(api, customer_id)["status"] == "none"
    assert events_of(api, "risk.cleared")[-1]["risk_status"] == "none"
    problem(clear(api, "risk.he", "no-such-flag"), 404)
    closed = api.as_("admin").get(FLAGS, params={"customer_id": customer_id, "status": "cleared"})
    assert closed.json()["total"] == 2


def test_an_overdue_flag_cleared_by_hand_comes_back_only_when_it_is_a_new_episode(
    api: Api,
) -> None:
    customer_id = known_customer(api, owner="manager.li")
    financials(api, customer_id, "2026-11-26", overdue_amount="300.00")
    [signal] = status_of(api, customer_id)["open_flags"]
    problem(clear(api, "manager.li", signal["id"]), 403)  # a signal flag: not the manager's
    assert clear(api, "risk.he", signal["id"], "a fee posted twice").status_code == 200
    # Still overdue at the same level: not raised again.
    financials(api, customer_id, "2026-11-27", overdue_amount="300.00")
    assert status_of(api, customer_id)["status"] == "none"
    assert len(events_of(api, "risk.flagged")) == 1
    # More serious than what was cleared: raised again.
    financials(api, customer_id, "2026-11-28", overdue_amount="250000.00")
    assert status_of(api, customer_id)["status"] == "severe"
    severe = status_of(api, customer_id)["open_flags"][0]
    assert clear(api, "risk.he", severe["id"], "restructured").status_code == 200
    # Repaid once, then overdue again: a new episode.
    financials(api, customer_id, "2026-11-29", overdue_amount="0.00")
    financials(api, customer_id, "2026-11-30", overdue_amount="10.00")
    assert status_of(api, customer_id)["status"] == "warning"
    assert [e["level"] for e in events_of(api, "risk.flagged")] == ["warning", "severe", "warning"]


# -- reading ------------------------------------------------------------------------------------
def test_reading_a_customers_risk_and_flags_needs_access(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    flag(api, "manager.li", customer_id, "watch")
    problem(api.as_("manager.zhou").get(f"/api/v1/customers/{customer_id}/risk"), 403)
    problem(api.as_("manager.zhou").get(FLAGS, params={"customer_id": customer_id}), 403)
    assert status_of(api, customer_id, "auditor.chen")["status"] == "watch"
    assert status_of(api, customer_id, "risk.he")["status"] == "watch"
    page = api.as_("manager.li").get(FLAGS, params={"customer_id": customer_id}).json()
    assert page["total"] == 1
    problem(
        api.as_("admin").get("/api/v1/customers/7f0c2a43-0000-4000-8000-000000000000/risk"), 404
    )


def test_the_watch_list_per_org_unit_and_role(api: Api) -> None:
    at_li = known_customer(api, name="Li's customer", owner="manager.li")
    at_zhou = known_customer(
        api, org_unit="/HQ/U01/B02", name="Zhou's customer", owner="manager.zhou"
    )
    far = known_customer(api, org_unit="/HQ/U02/B01", name="Far customer", owner="manager.far")
    quiet = known_customer(api, name="Quiet customer", owner="manager.li")
    financials(api, at_li, "2026-11-28", overdue_amount="75.00")  # warning
    assert flag(api, "risk.he", at_zhou, "severe").status_code == 201
    assert flag(api, "admin", far, "watch").status_code == 201
    financials(api, quiet, "2026-11-28", deposits="100.00")

    def listed(who: str, **params: Any) -> list[str]:
        resp = api.as_(who).get(WATCHLIST, params=params)
        assert resp.status_code == 200, resp.text
        return [e["customer_id"] for e in resp.json()["items"]]

    # Most serious first.
    assert listed("admin") == [at_zhou, at_li, far]
    assert listed("auditor.chen") == [at_zhou, at_li, far]
    assert listed("risk.he") == [at_zhou, at_li]  # /HQ/U01 and below
    assert listed("risk.he", org_unit="/HQ/U01/B01") == [at_li]
    assert listed("admin", org_unit="/HQ/U02") == [far]
    assert listed("manager.li") == [at_li]
    assert listed("manager.zhou") == [at_zhou]
    assert listed("admin", level="severe") == [at_zhou]
    outside = problem(api.as_("risk.he").get(WATCHLIST, params={"org_unit": "/HQ"}), 403)
    assert "outside your subtree" in outside["detail"]
    problem(api.as_("teller.wang").get(WATCHLIST), 403)

    page = api.as_("admin").get(WATCHLIST, params={"limit": 1, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    [entry] = page["items"]
    assert entry["customer_id"] == at_li
    assert (entry["name"], entry["org_unit"], entry["owner"]) == (
        "Li's customer",
        "/HQ/U01/B01",
        "manager.li",
    )
    assert (entry["level"], entry["signals"], entry["open_flags"]) == ("warning", ["overdue"], 1)
    assert entry["since"] == entry["flagged_since"]

    resp = api.as_("admin").get(WATCHLIST, params={"format": "csv", "limit": 1})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(resp.text.lstrip("\ufeff"))))
    assert rows[0][:2] == ["customer_id (客户号)", "name (客户名称)"]
    assert [r[0] for r in rows[1:]] == [at_zhou, at_li, far]  # every row: limit ignored
    assert rows[2][4:7] == ["warning", "overdue", "1"]

    # Once cleared, off the list.
    financials(api, at_li, "2026-11-29", overdue_amount="0.00")
    assert listed("manager.li") == []


# -- concurrent writers -------------------------------------------------------------------------
ADMIN = Caller("admin", "Admin", frozenset({"admin"}), "/HQ")


@pytest.mark.postgres
def test_concurrent_flags_of_one_customer_are_serialised(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    """Ten flags raised at once: each event's status counts every flag committed before it, and
    the status kept is the most serious (without the customer's lock, a warning committed last
    would overwrite a severe status)."""
    app = create_app(rating_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        api = Api(client, {}, dev_keys[0])
        customer_id = known_customer(api)
        runtime = runtime_of(api)
        with runtime.session_factory() as session:  # the status row exists: the race is on it
            risk.flag_by_hand(session, ADMIN, customer_id, RiskLevel.watch, "before the race")
        levels = [RiskLevel.severe if n % 2 else RiskLevel.warning for n in range(10)]
        barrier = threading.Barrier(len(levels))
        failures: list[BaseException] = []

        def raise_one(level: RiskLevel) -> None:
            with runtime.session_factory() as session:
                barrier.wait()
                try:
                    risk.flag_by_hand(session, ADMIN, customer_id, level, "race")
                except BaseException as exc:  # reported below, not lost in the thread
                    failures.append(exc)

        threads = [threading.Thread(target=raise_one, args=(lv,)) for lv in levels]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert failures == []
        with runtime.session_factory() as session:
            flags = session.scalars(
                select(RiskFlag)
                .where(RiskFlag.customer_id == customer_id)
                .order_by(RiskFlag.raised_at)
            ).all()
            state = session.get(CustomerRisk, customer_id)
            assert state is not None and state.status == "severe"
        assert len(flags) == 11
        status_by_flag = {e["flag_id"]: e["risk_status"] for e in events_of(api, "risk.flagged")}
        worst = "none"
        for raised in flags:  # in the order they were committed
            worst = max(worst, raised.level, key=risk.rank)
            assert status_by_flag[raised.id] == worst
