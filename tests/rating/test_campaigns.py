"""Rating campaigns 集中评级授信: creation and access, the three phases, the batch that rates
the stock customers (run directly, interrupted and resumed, raced), target customers, and the
coverage per org unit and business line against the 100% goal."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmkit import devauth
from crmkit.auth import Caller
from crmkit.clock import business_today
from crmkit.db import utcnow
from crmkit.errors import Conflict
from services.customer.events import CUSTOMER_CREATED
from services.rating import campaigns
from services.rating.app import create_app
from services.rating.models import Assessment, CreditLimit
from services.rating.models_campaigns import RatingCampaign
from services.rating.schemas_campaigns import CampaignIn
from services.rating.scoring import ScorecardError, scorecard_for
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.rating.conftest import (
    deliver,
    events_of,
    financials,
    owned_by,
    rating_settings,
    runtime_of,
)

CAMPAIGNS = "/api/v1/rating-campaigns"
RATINGS = "/api/v1/ratings"

# The individual card with every manual factor entered, the system knowing deposits of 60,000
# and a loan of 20,000 with nothing overdue:
#   annual_income 100000     → 60,000 to below 120,000       9
#   net_assets 500000        → 300,000 to below 800,000      9
#   debt_ratio 35            → 30% to below 50%              7
#   deposit_balance 60000.00 → 50,000 to below 200,000       6  (system)
#   repayment_record         → borrows, nothing overdue: normal 10  (system)
#   character good                                          11
#   work_experience 7        → 5 to below 10 years           6
#   family stable                                            9
#   bank_relationship core                                   8
#   total 9+9+7+6+10+11+6+9+8 = 75 → A (70 ≤ 75 < 80)
# Its indicative limit by the individual formula: capacity 100,000 x 3 = 300,000; net assets
# 500,000 x 0.5 = 250,000; min = 250,000 x 0.8 (grade A) = 200,000, within A's cap of 200,000;
# less the existing debt (this bank's loan balance, 20,000) = 180,000.00.
INDIVIDUAL_INPUTS: dict[str, Any] = {
    "annual_income": "100000",
    "net_assets": "500000",
    "debt_ratio": "35",
    "character": "good",
    "work_experience": 7,
    "family": "stable",
    "bank_relationship": "core",
}


def customer(
    api: Api,
    *,
    kind: str = "individual",
    org_unit: str = "/HQ/U01/B01",
    line: str = "personal",
    status: str = "active",
    owner: str | None = "manager.li",
) -> str:
    """A customer the service learns of from ``customer.created`` (with its status), owned by
    ``owner``."""
    customer_id = str(uuid.uuid4())
    deliver(
        api,
        CUSTOMER_CREATED,
        {
            "customer_id": customer_id,
            "kind": kind,
            "name": f"Customer {customer_id[:4]}",
            "org_unit": org_unit,
            "business_line": line,
            "status": status,
            "segment": "target" if status == "target" else "stock",
        },
        key=customer_id,
        actor="manager.li",
    )
    if owner is not None:
        owned_by(api, customer_id, owner, org_unit=org_unit)
    return customer_id


def create(api: Api, who: str = "president.zhao", **body: Any) -> Any:
    return api.as_(who).post(CAMPAIGNS, json={"name": "2026 rating", "year": 2026, **body})


def created(api: Api, who: str = "president.zhao", **body: Any) -> dict[str, Any]:
    resp = create(api, who, **body)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def started(api: Api, who: str = "president.zhao", **body: Any) -> dict[str, Any]:
    campaign = created(api, who, **body)
    resp = api.as_(who).post(f"{CAMPAIGNS}/{campaign['id']}/start")
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    assert out["status"] == "running" and out["started_by"] == who
    return out


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


def run(api: Api, campaign_id: str, chunk_size: int = 2) -> int:
    """The campaign's batch, run as the workers run it."""
    runtime = runtime_of(api)
    with runtime.session_factory() as session:
        campaign = session.get(RatingCampaign, campaign_id)
    assert campaign is not None
    return campaigns.run_batch(runtime.session_factory, runtime.recorder, campaign, chunk_size)


def stored(api: Api, campaign_id: str) -> RatingCampaign:
    with runtime_of(api).session_factory() as session:
        campaign = session.get(RatingCampaign, campaign_id)
    assert campaign is not None
    return campaign


def assessments(api: Api, **where: Any) -> list[Assessment]:
    with runtime_of(api).session_factory() as session:
        query = select(Assessment).filter_by(**where).order_by(Assessment.customer_id)
        return list(session.scalars(query).all())


def leader(api: Api) -> str:
    """A head-office leader (not among the seeded users)."""
    claims = {"sub": "leader.hq", "name": "Leader", "roles": ["head_office_leader"]}
    api.tokens["leader.hq"] = devauth.sign({**claims, "org_unit": "/HQ"}, api.private_pem)
    return "leader.hq"


# -- creating and reading -----------------------------------------------------------------------
def test_a_campaign_defaults_to_the_callers_unit_every_kind_but_farms_and_the_seeds_dates(
    api: Api,
) -> None:
    resp = create(api)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["Location"] == f"{CAMPAIGNS}/{body['id']}"
    assert body["org_unit"] == "/HQ/U01" and body["segment"] == "all"
    assert sorted(body["kinds"]) == [
        "corporate",
        "individual",
        "individual_business",
        "institution",
    ]
    assert (body["status"], body["cursor"], body["walked"]) == ("draft", None, 0)
    # The seed's three phases; its "9/31" is the 30th.
    assert [(p["phase"], p["starts_on"], p["ends_on"]) for p in body["phases"]] == [
        ("collection", "2026-08-20", "2026-08-31"),
        ("entry", "2026-09-01", "2026-09-15"),
        ("approval", "2026-09-16", "2026-09-30"),
    ]
    assert body["phases"][1]["name"] == "Entry and rating 信息录入及信用等级评定"
    got = api.as_("president.zhao").get(f"{CAMPAIGNS}/{body['id']}").json()
    assert got["business_date"] == business_today().isoformat()
    assert got["coverage"]["goal_pct"] == "100.00"


def test_the_current_phase_follows_the_business_date(api: Api) -> None:
    today = business_today()
    phases = {
        "collection": {
            "starts_on": str(today - timedelta(10)),
            "ends_on": str(today - timedelta(1)),
        },
        "entry": {"starts_on": str(today), "ends_on": str(today + timedelta(5))},
        "approval": {"starts_on": str(today + timedelta(6)), "ends_on": str(today + timedelta(9))},
    }
    body = created(api, phases=phases)
    assert body["current_phase"] == "entry"
    assert [p["state"] for p in body["phases"]] == ["ended", "current", "upcoming"]
    past = created(api, year=2020)  # every phase of 2020 is over
    assert past["current_phase"] is None
    assert {p["state"] for p in past["phases"]} == {"ended"}
    future = created(api, year=2099)
    assert future["current_phase"] is None
    assert {p["state"] for p in future["phases"]} == {"upcoming"}


def test_phases_must_follow_each_other(api: Api) -> None:
    phases = {
        "collection": {"starts_on": "2026-08-20", "ends_on": "2026-09-02"},
        "entry": {"starts_on": "2026-09-01", "ends_on": "2026-09-15"},
        "approval": {"starts_on": "2026-09-16", "ends_on": "2026-09-30"},
    }
    err = problem(create(api, phases=phases), 422)
    assert "entry starts after collection ends" in str(err["errors"])
    phases["collection"]["ends_on"] = "2026-08-31"
    phases["approval"]["ends_on"] = "2026-09-10"
    err = problem(create(api, phases=phases), 422)
    assert "ends_on comes before starts_on" in str(err["errors"])


def test_who_may_run_and_read_campaigns(api: Api) -> None:
    err = problem(create(api, "manager.li"), 403)
    assert "branch presidents and head-office leaders" in err["detail"]
    problem(create(api, "head.sun"), 403)  # an outlet head does not run campaigns
    err = problem(create(api, "president.zhao", org_unit="/HQ/U02"), 403)
    assert "/HQ/U02" in err["detail"]
    mine = created(api, "president.zhao")
    other = created(api, leader(api), org_unit="/HQ/U02")
    assert created(api, "admin", org_unit="/HQ/U03")["org_unit"] == "/HQ/U03"
    # Staff working in a campaign read it; staff of another branch do not; nor start it.
    assert api.as_("manager.zhou").get(f"{CAMPAIGNS}/{mine['id']}").status_code == 200
    problem(api.as_("manager.zhou").get(f"{CAMPAIGNS}/{other['id']}"), 404)
    err = problem(api.as_("manager.li").post(f"{CAMPAIGNS}/{mine['id']}/start"), 403)
    assert "may start this campaign" in err["detail"]
    problem(api.as_("president.zhao").post(f"{CAMPAIGNS}/{other['id']}/start"), 404)

    def listed(who: str) -> list[str]:
        resp = api.as_(who).get(CAMPAIGNS, params={"limit": 10})
        assert resp.status_code == 200, resp.text
        return sorted(c["org_unit"] for c in resp.json()["items"])

    assert listed("manager.zhou") == ["/HQ/U01"]
    assert listed("president.zhao") == ["/HQ/U01"]
    assert listed("approver.hq") == ["/HQ/U01", "/HQ/U02", "/HQ/U03"]
    assert listed("auditor.chen") == ["/HQ/U01", "/HQ/U02", "/HQ/U03"]
    page = api.as_("admin").get(CAMPAIGNS, params={"limit": 2, "status": "draft"}).json()
    assert (page["total"], len(page["items"]), page["limit"]) == (3, 2, 2)


def test_one_campaign_a_year_covers_a_customer(api: Api) -> None:
    first = created(api, "president.zhao")
    err = problem(create(api, "admin", org_unit="/HQ/U01/B01"), 409)
    assert err["existing"] == f"{CAMPAIGNS}/{first['id']}"
    problem(create(api, "admin", org_unit="/HQ"), 409)  # above it, same kinds
    # Farm households have their own programme; another year is another campaign.
    assert created(api, "admin", org_unit="/HQ/U01/B01", kinds=["farm_household"])
    assert created(api, "president.zhao", year=2027)


# -- the batch ----------------------------------------------------------------------------------
@pytest.fixture
def branch(api: Api) -> dict[str, str]:
    """Customers of branch /HQ/U01 and around it, each a case of the campaign's scope."""
    people: dict[str, str] = {
        # A manager's open assessment with every input, and figures: graded by the batch.
        "full": customer(api),
        # Figures only: the manual factors are missing.
        "figures": customer(api),
        "corporate": customer(
            api, kind="corporate", org_unit="/HQ/U01/B02", line="corporate", owner="manager.zhou"
        ),
        "dormant": customer(api, org_unit="/HQ/U01/B02", status="dormant", owner="manager.zhou"),
        # Out of the default scope: a farm household, closed and lost customers, a target
        # (targets come by list), another branch's customer.
        "farm": customer(api, kind="farm_household", line="agricultural"),
        "closed": customer(api, status="closed"),
        "lost": customer(api, status="lost"),
        "target": customer(api, status="target"),
        "elsewhere": customer(api, org_unit="/HQ/U02/B01", owner=None),
    }
    financials(api, people["full"], "2026-11-28", deposits="60000.00", loans="20000.00")
    financials(api, people["figures"], "2026-11-28", deposits="5000.00")
    resp = api.as_("manager.li").post(
        RATINGS, json={"customer_id": people["full"], "inputs": INDIVIDUAL_INPUTS}
    )
    assert resp.status_code == 201, resp.text
    people["manual_assessment"] = resp.json()["id"]
    return people


def test_the_batch_rates_every_stock_customer_in_scope_once(
    api: Api, branch: dict[str, str]
) -> None:
    campaign = started(api)
    assert run(api, campaign["id"], chunk_size=2) == 4
    rated = {a.customer_id: a for a in assessments(api, campaign_id=campaign["id"])}
    in_scope = {branch[k] for k in ("full", "figures", "corporate", "dormant")}
    assert set(rated) == in_scope
    full = rated[branch["full"]]
    assert (full.status, full.score, full.computed_grade) == ("assessed", Decimal("75.00"), "A")
    assert (full.trigger, full.assessed_by) == ("campaign", "system")
    # The manager's inputs carried, the system's figures fresh.
    assert full.inputs["annual_income"] == "100000" and full.inputs["deposit_balance"] == "60000.00"
    assert full.inputs["repayment_record"] == "normal"
    # The manager's open assessment was replaced, as a new assessment replaces the open one.
    (manual,) = assessments(api, id=branch["manual_assessment"])
    assert manual.status == "superseded"
    figures_only = rated[branch["figures"]]
    assert figures_only.status == "incomplete" and figures_only.computed_grade is None
    assert "annual_income" in figures_only.missing and "deposit_balance" not in figures_only.missing
    assert rated[branch["corporate"]].scorecard_id == "corporate"
    # One rating.assessed per customer, carrying the campaign.
    published = [e for e in events_of(api, "rating.assessed") if e["trigger"] == "campaign"]
    assert sorted(e["customer_id"] for e in published) == sorted(in_scope)
    assert {e["campaign_id"] for e in published} == {campaign["id"]}
    assert next(e for e in published if e["customer_id"] == branch["full"])["score"] == "75.00"
    after = stored(api, campaign["id"])
    assert (after.status, after.cursor) == ("done", max(in_scope))
    assert (after.walked, after.graded, after.incomplete, after.skipped) == (4, 1, 3, 0)
    assert after.finished_at is not None
    # Done is done: running it again rates nobody.
    assert run(api, campaign["id"]) == 0
    assert len(assessments(api, campaign_id=campaign["id"])) == 4


def test_a_draft_campaign_runs_nothing_and_run_pending_runs_the_started_ones(
    api: Api, branch: dict[str, str]
) -> None:
    draft = created(api)
    campaigns.run_pending(runtime_of(api))
    assert stored(api, draft["id"]).status == "draft"
    assert assessments(api, campaign_id=draft["id"]) == []
    api.as_("president.zhao").post(f"{CAMPAIGNS}/{draft['id']}/start")
    again = api.as_("president.zhao").post(f"{CAMPAIGNS}/{draft['id']}/start")
    assert again.status_code == 200 and again.json()["status"] == "running"
    campaigns.run_pending(runtime_of(api))
    assert stored(api, draft["id"]).status == "done"
    assert len(assessments(api, campaign_id=draft["id"])) == 4


def test_the_kinds_named_are_the_kinds_rated(api: Api, branch: dict[str, str]) -> None:
    farms = started(api, kinds=["farm_household"])
    run(api, farms["id"])
    assert [a.customer_id for a in assessments(api, campaign_id=farms["id"])] == [branch["farm"]]
    assert assessments(api, campaign_id=farms["id"])[0].scorecard_id == "farm_household"


def test_an_interrupted_campaign_resumes_after_its_last_chunk(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(customer(api) for _ in range(5))
    campaign = started(api)
    real = campaigns.write_chunk
    calls = 0

    def crash_on_second_chunk(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        written = real(*args, **kwargs)
        if calls == 2:
            raise RuntimeError("the worker died")
        return written

    monkeypatch.setattr(campaigns, "write_chunk", crash_on_second_chunk)
    with pytest.raises(RuntimeError, match="the worker died"):
        run(api, campaign["id"], chunk_size=2)
    # The first chunk stands with its cursor; the second left nothing behind.
    half = stored(api, campaign["id"])
    assert (half.status, half.cursor, half.walked) == ("running", ids[1], 2)
    assert [a.customer_id for a in assessments(api, campaign_id=campaign["id"])] == ids[:2]
    assert len(events_of(api, "rating.assessed")) == 2

    # A tick of the workers that fails too keeps the error on the campaign and moves nothing.
    def always_fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(campaigns, "write_chunk", always_fail)
    campaigns.run_pending(runtime_of(api))
    failed = stored(api, campaign["id"])
    assert "the database went away" in (failed.last_error or "")
    assert (failed.cursor, failed.walked) == (ids[1], 2)
    # The next tick resumes after the cursor.
    monkeypatch.setattr(campaigns, "write_chunk", real)
    campaigns.run_pending(runtime_of(api))
    done = stored(api, campaign["id"])
    assert (done.status, done.cursor, done.walked, done.last_error) == ("done", ids[-1], 5, None)
    # Every customer rated exactly once, one event each.
    assert [a.customer_id for a in assessments(api, campaign_id=campaign["id"])] == ids
    assert sorted(e["customer_id"] for e in events_of(api, "rating.assessed")) == ids


def test_a_kind_without_a_scorecard_in_force_is_skipped_not_a_stuck_batch(
    api: Api, branch: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def only_individuals(kind: str, on: Any = None) -> Any:
        if kind == "corporate":
            raise ScorecardError(f"no scorecard in force for {kind} customers")
        return scorecard_for(kind, on)

    monkeypatch.setattr(campaigns, "scorecard_for", only_individuals)
    campaign = started(api)
    assert run(api, campaign["id"]) == 4
    rated = {a.customer_id for a in assessments(api, campaign_id=campaign["id"])}
    assert branch["corporate"] not in rated and len(rated) == 3
    after = stored(api, campaign["id"])
    assert (after.status, after.walked, after.skipped) == ("done", 4, 1)


# -- target customers ---------------------------------------------------------------------------
def test_a_target_customer_listed_as_willing_is_assessed_in_the_campaign(
    api: Api, branch: dict[str, str]
) -> None:
    draft = created(api)
    url = f"{CAMPAIGNS}/{draft['id']}/targets"
    body = {"customer_ids": [branch["target"]]}
    problem(api.as_("manager.li").post(url, json=body), 409)  # not started yet
    api.as_("president.zhao").post(f"{CAMPAIGNS}/{draft['id']}/start")
    err = problem(api.as_("manager.zhou").post(url, json=body), 403)  # not theirs
    assert "manager" in err["detail"]
    err = problem(api.as_("manager.li").post(url, json={"customer_ids": [branch["figures"]]}), 422)
    assert "stock customers are rated by the campaign's batch" in err["errors"][0]["reason"]
    problem(api.as_("manager.li").post(url, json={"customer_ids": [branch["elsewhere"]]}), 422)
    resp = api.as_("manager.li").post(url, json=body)
    assert resp.status_code == 200, resp.text
    (listed,) = resp.json()
    assert (listed["customer_id"], listed["status"], listed["already"]) == (
        branch["target"],
        "incomplete",
        False,
    )
    (assessment,) = assessments(api, campaign_id=draft["id"])
    assert (assessment.assessed_by, assessment.trigger) == ("manager.li", "campaign")
    again = api.as_("president.zhao").post(url, json=body).json()
    assert again[0]["already"] is True and again[0]["assessment_id"] == listed["assessment_id"]
    # The batch walks stock customers only: the target is not rated twice.
    run(api, draft["id"])
    assert len(assessments(api, customer_id=branch["target"])) == 1


def test_a_stock_only_campaign_takes_no_targets(api: Api, branch: dict[str, str]) -> None:
    campaign = started(api, segment="stock")
    resp = api.as_("manager.li").post(
        f"{CAMPAIGNS}/{campaign['id']}/targets", json={"customer_ids": [branch["target"]]}
    )
    assert "stock customers only" in problem(resp, 409)["detail"]


# -- coverage -----------------------------------------------------------------------------------
def _by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


def test_coverage_per_org_unit_and_business_line_against_the_goal(
    api: Api, branch: dict[str, str]
) -> None:
    campaign = started(api)
    run(api, campaign["id"])
    url = f"{CAMPAIGNS}/{campaign['id']}"
    coverage = api.as_("president.zhao").get(url).json()["coverage"]
    total = coverage["total"]
    # In scope: full, figures (B01), corporate, dormant (B02); collected: full and figures have
    # core banking's figures (the others nothing yet); rated: full has a grade.
    assert (total["stock"], total["target"], total["in_scope"]) == (4, 0, 4)
    assert (total["collected"], total["rated"], total["confirmed"]) == (2, 1, 0)
    assert (total["collected_pct"], total["rated_pct"], total["confirmed_pct"]) == (
        "50.00",
        "25.00",
        "0.00",
    )
    assert (total["batch_graded"], total["batch_incomplete"]) == (1, 3)
    assert (total["limits_indicated"], total["indicative_limit_total"]) == (1, "180000.00")
    units = _by(coverage["by_org_unit"], "org_unit")
    assert sorted(units) == ["/HQ/U01/B01", "/HQ/U01/B02"]
    assert (units["/HQ/U01/B01"]["in_scope"], units["/HQ/U01/B01"]["rated_pct"]) == (2, "50.00")
    assert (units["/HQ/U01/B02"]["in_scope"], units["/HQ/U01/B02"]["rated_pct"]) == (2, "0.00")
    lines = _by(coverage["by_business_line"], "business_line")
    assert {line: row["in_scope"] for line, row in lines.items()} == {"corporate": 1, "personal": 3}

    # An approver confirms the graded one; a limit on it is approved; a target is listed.
    (graded,) = [a for a in assessments(api, campaign_id=campaign["id"]) if a.computed_grade]
    resp = api.as_("approver.qian").post(
        f"{RATINGS}/{graded.id}/confirm", json={"decision": "confirm"}
    )
    assert resp.status_code == 200, resp.text
    _approved_limit(api, graded, campaign["id"])
    resp = api.as_("manager.li").post(f"{url}/targets", json={"customer_ids": [branch["target"]]})
    assert resp.status_code == 200, resp.text
    total = api.as_("president.zhao").get(url).json()["coverage"]["total"]
    # 5 in scope now: the target counts once assessed in the campaign (incomplete: no inputs).
    assert (total["stock"], total["target"], total["in_scope"]) == (4, 1, 5)
    assert (total["collected"], total["rated"], total["confirmed"]) == (3, 1, 1)
    assert (total["limit_approved"], total["limit_approved_pct"]) == (1, "20.00")
    # Staff working in the campaign see their own part of it.
    mine = api.as_("manager.zhou").get(url).json()["coverage"]
    assert mine["scope"] == "/HQ/U01/B02"
    assert [row["org_unit"] for row in mine["by_org_unit"]] == ["/HQ/U01/B02"]
    assert mine["total"]["in_scope"] == 2


def _approved_limit(api: Api, assessment: Assessment, campaign_id: str) -> None:
    """An approved limit of the campaign on the confirmed grade (as the approval flow leaves
    it)."""
    now = utcnow()
    zero = Decimal("0.00")
    with runtime_of(api).session_factory() as session:
        session.add(
            CreditLimit(
                id=str(uuid.uuid4()),
                customer_id=assessment.customer_id,
                kind=assessment.kind,
                org_unit=assessment.org_unit,
                business_line=assessment.business_line,
                assessment_id=assessment.id,
                grade="A",
                formula_id="individual",
                formula_version="2026-01-01",
                status="approved",
                inputs={},
                calculation=[],
                collaterals=[],
                guarantors=[],
                sub_limits=[],
                credit_amount=Decimal("180000.00"),
                guaranteed_amount=zero,
                secured_amount=zero,
                adjustment_amount=zero,
                total_amount=Decimal("180000.00"),
                revolving=True,
                term_months=12,
                investigation_report="visited",
                risk_analysis="low",
                campaign_id=campaign_id,
                proposed_by="manager.li",
                proposed_at=now,
                decided_by="approver.qian",
                decided_at=now,
                start_date=business_today(),
                expiry_date=business_today() + timedelta(days=365),
            )
        )
        session.commit()


# -- concurrent runners (PostgreSQL) -------------------------------------------------------------
@pytest.fixture
def pg_api(pg_databases: Databases, dev_keys: tuple[str, Path]) -> Iterator[Api]:
    with TestClient(create_app(rating_settings(pg_databases, dev_keys[1]))) as client:
        yield Api(client, {}, dev_keys[0])


def test_two_runners_at_once_rate_each_customer_once(pg_api: Api) -> None:
    ids = sorted(customer(pg_api) for _ in range(12))
    campaign = started(pg_api)
    walked: list[int] = []
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            walked.append(run(pg_api, campaign["id"], chunk_size=3))
        except BaseException as exc:  # the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(walked) == 12  # the chunks were shared, none done twice
    with runtime_of(pg_api).session_factory() as session:
        per_customer = dict(
            session.execute(
                select(Assessment.customer_id, func.count())
                .where(Assessment.campaign_id == campaign["id"])
                .group_by(Assessment.customer_id)
            ).all()
        )
    assert per_customer == dict.fromkeys(ids, 1)
    assert stored(pg_api, campaign["id"]).cursor == ids[-1]


def test_overlapping_campaigns_created_at_once_make_one(pg_api: Api) -> None:
    runtime = runtime_of(pg_api)
    callers = [
        Caller("president.zhao", "Zhao", frozenset({"branch_president"}), "/HQ/U01"),
        Caller("admin", "Admin", frozenset({"admin"}), "/HQ"),
    ] * 4
    units = ["/HQ/U01", "/HQ/U01/B01"] * 4
    barrier = threading.Barrier(len(callers))
    outcomes: list[str] = []
    lock = threading.Lock()

    def make(caller: Caller, unit: str) -> None:
        with runtime.session_factory() as session:
            barrier.wait()
            try:
                campaigns.create(session, CampaignIn(name="race", year=2026, org_unit=unit), caller)
                outcome = "created"
            except Conflict:
                outcome = "conflict"
        with lock:
            outcomes.append(outcome)

    threads = [
        threading.Thread(target=make, args=pair) for pair in zip(callers, units, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["conflict"] * 7 + ["created"]
    listed = pg_api.as_("admin").get(CAMPAIGNS).json()
    assert listed["total"] == 1


# -- staff's own work in a campaign -------------------------------------------------------------
def test_an_assessment_staff_enter_for_a_running_campaign_carries_its_id(api: Api) -> None:
    campaign = started(api)
    customer_id = customer(api)
    manager = api.as_("manager.li")
    body = {"customer_id": customer_id, "inputs": INDIVIDUAL_INPUTS, "campaign_id": campaign["id"]}
    resp = manager.post("/api/v1/ratings", json=body)
    assert resp.status_code == 201, resp.text
    [entered] = assessments(api, customer_id=customer_id)
    assert entered.campaign_id == campaign["id"] and entered.trigger == "manual"
    # A campaign that does not exist, or is not running, is the request's fault.
    draft = created(api, name="draft", year=2027)
    for wrong in (str(uuid.uuid4()), draft["id"]):
        err = problem(manager.post("/api/v1/ratings", json={**body, "campaign_id": wrong}), 422)
        assert err["errors"] == [
            {"field": "campaign_id", "reason": "no running campaign with this id"}
        ]
