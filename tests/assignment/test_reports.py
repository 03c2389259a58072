"""Reports of the assignment service: 附件3 存量客户1对N维护责任表, the book summary and the
per-layer maintainer lists 分层维护人员名单, with their scoping and CSV."""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from datetime import datetime
from typing import Any

from crmkit.clock import BUSINESS_TZ
from crmkit.consumer import RawRecord
from crmkit.events import build_envelope
from services.assignment import reports
from services.customer.events import CUSTOMER_CREATED, CUSTOMER_FINANCIALS_UPDATED
from tests.assignment import test_rules, test_teams
from tests.assignment.test_ownership import assign, problem
from tests.customer.conftest import Api

bank = test_rules.bank  # the fixture: the test org with every kind of holder

RESPONSIBILITY = "/api/v1/reports/responsibility"
MAINTAINERS = "/api/v1/reports/maintainers"
_offsets = itertools.count(50_000)
ZERO = "0.00"


def _record(spec: Any, data: dict[str, Any], key: str) -> RawRecord:
    envelope = build_envelope(spec, data, source="customer", key=key, actor="test")
    return RawRecord("crm.customer", 0, next(_offsets), envelope.to_bytes())


def customer(
    api: Api,
    name: str,
    *,
    org_unit: str = "/HQ/U01/B01",
    line: str = "personal",
    kind: str = "individual",
    segment: str = "stock",
    deposits: str | None = None,
    loans: str = ZERO,
    **profile: str,
) -> str:
    """A customer known from its events, with its figures when ``deposits`` is given."""
    customer_id = str(uuid.uuid4())
    created = {
        "customer_id": customer_id,
        "kind": kind,
        "name": name,
        "org_unit": org_unit,
        "business_line": line,
        "status": "active",
        "segment": segment,
        **profile,
    }
    records = [_record(CUSTOMER_CREATED, created, customer_id)]
    if deposits is not None:
        figures: dict[str, Any] = {
            "customer_id": customer_id,
            "business_date": "2026-11-27",
            "deposits": deposits,
            "loans": loans,
            "personal_loans": ZERO,
            "aum": ZERO,
            "card_annual_spend": ZERO,
            "custody_margin": ZERO,
            "overdue_amount": ZERO,
            "net_interest_contribution": ZERO,
            "fee_income": ZERO,
            "card_level": None,
            "products": [],
        }
        records.append(_record(CUSTOMER_FINANCIALS_UPDATED, figures, customer_id))
    api.client.app.state.runtime.applier.apply_batch(records)  # type: ignore[attr-defined]
    return customer_id


def owned(api: Api, customer_id: str, staff_id: str, who: str = "head.sun", **extra: Any) -> None:
    resp = assign(api, who, customer_id, staff_id, **extra)
    assert resp.status_code == 200, resp.text


def get(api: Api, who: str, url: str, **params: Any) -> dict[str, Any]:
    resp = api.as_(who).get(url, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# -- 附件3 -------------------------------------------------------------------------------------
def test_the_responsibility_table_has_a_row_per_owned_stock_customer(bank: Api) -> None:
    rich = customer(
        bank,
        "Wu Gang",
        value_tier="high",
        market_segment="retail_trade",
        deposits="1234567.89",
        loans="50000.10",
    )
    plain = customer(bank, "An Ping")  # no figures yet
    firm = customer(bank, "Hua Mill", kind="corporate", line="corporate", deposits="10.00")
    customer(bank, "Target Co", segment="target")  # not a stock customer
    owned(bank, rich, "personal.yu", reason="marketed")
    owned(bank, plain, "teller.wang")
    owned(bank, firm, "head.sun", reason="rule")

    report = get(bank, "head.sun", RESPONSIBILITY)
    rows = {r["customer_id"]: r for r in report["items"]}
    assert report["total"] == 3 and set(rows) == {rich, plain, firm}
    # Ordered by org unit, owner, customer.
    assert [r["maintainer_id"] for r in report["items"]] == [
        "head.sun",
        "personal.yu",
        "teller.wang",
    ]
    row = rows[rich]
    today = datetime.now(BUSINESS_TZ).date().isoformat()
    assert row == {
        "org_unit": "/HQ/U01/B01",
        "org_unit_name": "Outlet B01",
        "maintainer_id": "personal.yu",
        "maintainer_name": "personal.yu",
        "maintainer_org_unit": "/HQ/U01/B01",
        "post": "customer_manager",
        "post_label": "客户经理",
        "business_line": "personal",
        "customer_id": rich,
        "customer_name": "Wu Gang",
        "customer_kind": "individual",
        "value_tier": "high",
        "credit_rating": None,
        "credit_limit": None,
        "deposit_balance": "1234567.89",
        "loan_balance": "50000.10",
        "figures_as_of": "2026-11-27",
        "market_segment": "retail_trade",
        "responsibility_basis": "marketed",
        "responsibility_basis_label": "谁营销谁维护",
        "ownership_reason": "marketed",
        "first_responsible": {"staff_id": "personal.yu", "name": "personal.yu"},
        "team_members": [],
        "effective_date": today,
    }
    assert rows[plain]["post"] == "teller" and rows[plain]["post_label"] == "综合柜员"
    assert rows[plain]["responsibility_basis"] == "teller"
    assert rows[plain]["deposit_balance"] is None and rows[plain]["loan_balance"] is None
    assert rows[firm]["post_label"] == "营业单位负责人"
    assert rows[firm]["responsibility_basis"] == "designated"
    assert rows[firm]["business_line"] == "corporate" and rows[firm]["deposit_balance"] == "10.00"

    page = get(bank, "head.sun", RESPONSIBILITY, limit=2, offset=1)
    assert [r["customer_id"] for r in page["items"]] == [rich, plain]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)


def test_posts_follow_the_roles_and_the_unit() -> None:
    assert reports.post_of(["branch_president"], "county_union").value == "union_leadership"
    assert reports.post_of(["branch_president"], "sub_branch").value == "unit_head"
    assert reports.post_of(["teller", "customer_manager"], "outlet").value == "customer_manager"
    assert reports.post_of(["head_office_leader"], "head_office").value == "head_office_leader"
    assert reports.post_of(["auditor"], "head_office").value == "other"


def test_the_assignment_rate_counts_the_unowned_per_unit_and_line(bank: Api) -> None:
    a = customer(bank, "A")
    customer(bank, "B")
    customer(bank, "C")
    corp = customer(bank, "D", kind="corporate", line="corporate")
    far = customer(bank, "E", org_unit="/HQ/U02/B01")
    owned(bank, a, "personal.yu")
    owned(bank, corp, "corp.lu")
    owned(bank, far, "manager.far", who="admin")

    report = get(bank, "head.sun", RESPONSIBILITY)
    summary = {(s["org_unit"], s["business_line"]): s for s in report["summary"]}
    assert set(summary) == {("/HQ/U01/B01", "corporate"), ("/HQ/U01/B01", "personal")}
    personal = summary[("/HQ/U01/B01", "personal")]
    assert (personal["owned"], personal["unowned"], personal["assignment_rate"]) == (
        1,
        2,
        "0.3333",
    )
    assert summary[("/HQ/U01/B01", "corporate")]["assignment_rate"] == "1.0000"
    assert report["total_summary"] == {
        "org_unit": "/HQ/U01/B01",
        "business_line": "all",
        "owned": 2,
        "unowned": 2,
        "assignment_rate": "0.5000",
    }
    everything = get(bank, "admin", RESPONSIBILITY)["total_summary"]
    assert (everything["owned"], everything["unowned"]) == (3, 2)


def test_the_business_line_filter_keeps_one_line(bank: Api) -> None:
    corp = customer(bank, "Mill", kind="corporate", line="corporate")
    person = customer(bank, "Liu")
    customer(bank, "Unowned Farm", kind="corporate", line="corporate")
    owned(bank, corp, "corp.lu")
    owned(bank, person, "personal.yu")
    report = get(bank, "admin", RESPONSIBILITY, business_line="corporate")
    assert [r["customer_id"] for r in report["items"]] == [corp]
    assert [(s["business_line"], s["owned"], s["unowned"]) for s in report["summary"]] == [
        ("corporate", 1, 1)
    ]
    problem(bank.as_("admin").get(RESPONSIBILITY, params={"business_line": "space"}), 422)


def test_reports_are_scoped_by_role(bank: Api) -> None:
    near = customer(bank, "Near")
    other = customer(bank, "Other Outlet", org_unit="/HQ/U01/B02")
    far = customer(bank, "Far", org_unit="/HQ/U02/B01")
    owned(bank, near, "manager.li")
    owned(bank, other, "manager.zhou", who="admin")
    owned(bank, far, "manager.far", who="admin")

    def ids(who: str, **params: Any) -> set[str]:
        return {r["customer_id"] for r in get(bank, who, RESPONSIBILITY, **params)["items"]}

    assert ids("head.sun") == {near}
    assert ids("president.zhao") == {near, other}
    assert ids("president.zhao", org_unit="/HQ/U01/B02") == {other}
    assert ids("approver.qian") == {near, other}
    assert ids("auditor.chen") == ids("admin") == {near, other, far}
    for who in ("manager.li", "teller.wang"):
        problem(bank.as_(who).get(RESPONSIBILITY), 403)
        problem(bank.as_(who).get(MAINTAINERS), 403)
        problem(bank.as_(who).get(RESPONSIBILITY, params={"format": "csv"}), 403)
    problem(bank.as_("head.sun").get(RESPONSIBILITY, params={"org_unit": "/HQ/U01"}), 403)
    problem(bank.as_("head.sun").get(MAINTAINERS, params={"org_unit": "/HQ/U02"}), 403)


def test_the_responsibility_csv_has_a_bom_headers_and_defused_formulas(bank: Api) -> None:
    evil = customer(bank, '=HYPERLINK("http://x")', deposits="99.50")
    plain = customer(bank, "Plain")
    owned(bank, evil, "personal.yu")
    owned(bank, plain, "teller.wang")
    resp = bank.as_("head.sun").get(RESPONSIBILITY, params={"format": "csv", "limit": 1})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    header, *body = lines
    assert header[0] == "org_unit (机构)" and "deposit_balance (存款余额)" in header
    assert len(body) == 2  # every row, limit ignored
    row = dict(zip(header, body[0], strict=True))
    assert row["customer_id (客户号)"] == evil
    assert row["customer_name (客户名称)"] == '\'=HYPERLINK("http://x")'
    assert row["deposit_balance (存款余额)"] == "99.50"
    assert row["post (岗位)"] == "客户经理"
    assert row["first_responsible (第一负责人)"] == "personal.yu (personal.yu)"
    assert row["credit_rating (信用等级)"] == "" and row["team_members (团队成员)"] == ""


# -- book summary -------------------------------------------------------------------------------
def test_the_book_summary_counts_tiers_and_sums_exactly(bank: Api) -> None:
    unit = "/HQ/U01/B02"
    book = [
        customer(
            bank, "P1", org_unit=unit, value_tier="high", wealth_layer="layer_2", deposits="0.10"
        ),
        customer(
            bank,
            "P2",
            org_unit=unit,
            value_tier="high",
            vip_level="gold",
            deposits="0.20",
            loans="1.01",
        ),
        customer(
            bank,
            "P3",
            org_unit=unit,
            value_tier="middle",
            deposits="9999999999999.99",
            loans="0.02",
        ),
        customer(bank, "P4", org_unit=unit),
    ]
    for customer_id in book:
        owned(bank, customer_id, "manager.zhou", who="admin")
    owned(bank, customer(bank, "Elsewhere", deposits="5.00"), "teller.wang")
    url = "/api/v1/staff/manager.zhou/book/summary"
    summary = get(bank, "manager.zhou", url)
    assert summary == {
        "staff_id": "manager.zhou",
        "name": "manager.zhou",
        "org_unit": unit,
        "customers": 4,
        "by_value_tier": {"high": 2, "middle": 1, "none": 1},
        "by_wealth_layer": {"layer_2": 1, "none": 3},
        "by_vip_level": {"gold": 1, "none": 3},
        "deposits_total": "10000000000000.29",
        "loans_total": "1.03",
        "without_figures": 1,
    }
    for reader in ("president.zhao", "auditor.chen", "approver.qian", "admin"):
        assert get(bank, reader, url) == summary
    empty = get(bank, "manager.li", "/api/v1/staff/manager.li/book/summary")
    assert empty["customers"] == 0 and empty["deposits_total"] == "0.00"
    assert empty["by_value_tier"] == {}
    problem(bank.as_("manager.li").get(url), 404)  # another manager's book
    problem(bank.as_("head.sun").get(url), 404)  # a head of another outlet
    problem(bank.as_("admin").get("/api/v1/staff/nobody/book/summary"), 404)


# -- 分层维护人员名单 ---------------------------------------------------------------------------
def test_the_maintainer_lists_per_unit_and_layer(bank: Api) -> None:
    for _ in range(2):
        owned(bank, customer(bank, "W", wealth_layer="layer_2"), "wealth.ma")
    owned(bank, customer(bank, "X", wealth_layer="layer_2"), "head.sun")
    owned(bank, customer(bank, "Y", wealth_layer="layer_3"), "lobby.gao")
    owned(bank, customer(bank, "Z", wealth_layer="layer_4"), "teller.wang")
    owned(bank, customer(bank, "No Layer"), "teller.wang")
    customer(bank, "Unowned", wealth_layer="layer_4")
    far = customer(bank, "Far", org_unit="/HQ/U02/B01", wealth_layer="layer_1")
    owned(bank, far, "manager.far", who="admin")

    report = get(bank, "head.sun", MAINTAINERS)
    lists = {(i["org_unit"], i["wealth_layer"]): i for i in report["items"]}
    assert list(lists) == [
        ("/HQ/U01/B01", "layer_2"),
        ("/HQ/U01/B01", "layer_3"),
        ("/HQ/U01/B01", "layer_4"),
    ]
    layer_2 = lists[("/HQ/U01/B01", "layer_2")]
    assert layer_2["customers"] == 3 and layer_2["wealth_layer_label"] == "20万-200万"
    assert layer_2["org_unit_name"] == "Outlet B01"
    assert [(m["staff_id"], m["customers"], m["post"]) for m in layer_2["maintainers"]] == [
        ("wealth.ma", 2, "wealth_manager"),
        ("head.sun", 1, "unit_head"),
    ]
    assert layer_2["maintainers"][0]["roles"] == ["wealth_manager"]
    assert [m["staff_id"] for m in lists[("/HQ/U01/B01", "layer_3")]["maintainers"]] == [
        "lobby.gao"
    ]
    assert lists[("/HQ/U01/B01", "layer_4")]["customers"] == 1  # owned customers only

    everything = get(bank, "admin", MAINTAINERS)["items"]
    assert ("/HQ/U02/B01", "layer_1") in {(i["org_unit"], i["wealth_layer"]) for i in everything}

    resp = bank.as_("head.sun").get(MAINTAINERS, params={"format": "csv"})
    assert resp.status_code == 200 and resp.content.startswith(b"\xef\xbb\xbf")
    header, *body = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert header[0] == "org_unit (机构)"
    assert body[0][2] == "layer_2" and body[0][4] == "wealth.ma" and body[0][-1] == "2"
    assert len(body) == 4


def test_the_responsibility_table_names_the_serving_team(bank: Api) -> None:
    credit = test_teams.owned(bank, loans="50000.00")
    members = [("personal.yu", "first_responsible"), ("manager.li", "member")]
    assert test_teams.put_team(bank, "head.sun", credit, *members).status_code == 200
    rows = {r["customer_id"]: r for r in get(bank, "head.sun", RESPONSIBILITY)["items"]}
    assert rows[credit]["first_responsible"]["staff_id"] == "personal.yu"
    assert rows[credit]["team_members"] == [
        {"staff_id": "manager.li", "name": "manager.li", "role": "member"}
    ]
    resp = bank.as_("head.sun").get(RESPONSIBILITY, params={"format": "csv"})
    lines = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    header, *body = lines
    by_id = {dict(zip(header, line, strict=True))["customer_id (客户号)"]: line for line in body}
    row = dict(zip(header, by_id[credit], strict=True))
    assert row["team_members (团队成员)"] == "manager.li (manager.li, member)"
