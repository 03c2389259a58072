"""The visit record report (附件5 客户经理拜访记录表): JSON and CSV columns, the org subtree and
the period, the current versions only, who reads it."""

from __future__ import annotations

import csv
import io
from typing import Any

from services.visits.records import REPORT_COLUMNS
from tests.customer.conftest import Api
from tests.visits.conftest import known_customer
from tests.visits.test_visits import problem, record

REPORT = "/api/v1/reports/visits"
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


def report(api: Api, who: str, **params: Any) -> dict[str, Any]:
    resp = api.as_(who).get(REPORT, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def seeded(api: Api) -> dict[str, str]:
    """Four visits: three in B01 (one corrected), one in B02, one of them on 31 October."""
    b01 = known_customer(api, org_unit="/HQ/U01/B01", owner="manager.li", name="Wang Wu")
    b02 = known_customer(api, org_unit="/HQ/U01/B02", owner="manager.zhou", name="Zhao Liu")
    zhou = [{"staff_id": "manager.zhou", "role": "lead"}]
    ids = {
        # 16:30 UTC on 31 October is 00:30 on 1 November in Shanghai: in November.
        "first": record(api, "manager.li", b01, visited_at="2026-10-31T16:30:00Z")["id"],
        "phone": record(
            api,
            "manager.li",
            b01,
            visited_at="2026-11-15T02:00:00Z",
            channel="phone",
            visit_type="phone",
            purpose='=HYPERLINK("http://x")',
        )["id"],
        "b02": record(
            api, "manager.zhou", b02, visited_at="2026-11-20T02:00:00Z", participants=zhou
        )["id"],
        # 15:59 UTC on 31 October is 23:59 that day in Shanghai: out of November.
        "october": record(api, "manager.li", b01, visited_at="2026-10-31T15:59:00Z")["id"],
    }
    ids["corrected"] = record(
        api,
        "manager.li",
        b01,
        visited_at="2026-11-15T02:00:00Z",
        channel="phone",
        visit_type="post_sale",
        product_followed_up="LOAN-AGRI-01",
        purpose='=HYPERLINK("http://x")',
        corrects=ids["phone"],
        correction_reason="it was a post-sale call",
    )["id"]
    return ids


def test_the_json_report_by_org_unit_and_period(api: Api) -> None:
    ids = seeded(api)
    body = report(api, "president.zhao", org_unit="/HQ/U01", **NOVEMBER)
    assert body["org_unit"] == "/HQ/U01"
    assert (body["from_date"], body["to_date"]) == ("2026-11-01", "2026-11-30")
    # By org unit, then time; the corrected record in its current version only.
    assert [row["visit_id"] for row in body["items"]] == [
        ids["first"],
        ids["corrected"],
        ids["b02"],
    ]
    assert body["total"] == 3
    assert body["by_visit_type"] == {"maintenance": 2, "post_sale": 1}
    first = body["items"][0]
    assert first["visit_date"] == "2026-11-01" and first["visited_at"] == "2026-10-31T16:30:00Z"
    assert first["customer_name"] == "Wang Wu"
    assert first["participants"] == [{"staff_id": "manager.li", "role": "lead"}]
    assert first["opportunities"] == ["LOAN-AGRI-01", "WM-2026-07"]
    assert first["next_contact_on"] == "2026-12-20"
    corrected = body["items"][1]
    assert corrected["revision"] == 2 and corrected["corrects"] == ids["phone"]
    assert corrected["product_followed_up"] == "LOAN-AGRI-01"

    b01 = report(api, "head.sun", **NOVEMBER)  # by default the caller's own unit
    assert b01["org_unit"] == "/HQ/U01/B01"
    assert [row["visit_id"] for row in b01["items"]] == [ids["first"], ids["corrected"]]
    october = report(api, "admin", org_unit="/HQ", **{"from": "2026-10-31", "to": "2026-10-31"})
    assert [row["visit_id"] for row in october["items"]] == [ids["october"]]
    paged = report(api, "admin", org_unit="/HQ", limit=1, offset=2, **NOVEMBER)
    assert paged["total"] == 3 and [r["visit_id"] for r in paged["items"]] == [ids["b02"]]


def test_the_report_is_read_by_heads_of_the_subtree_auditors_and_administrators(
    api: Api,
) -> None:
    seeded(api)
    assert report(api, "auditor.chen", org_unit="/HQ/U01", **NOVEMBER)["total"] == 3
    for who, unit in (
        ("head.sun", "/HQ/U01"),  # above the head's outlet
        ("manager.li", "/HQ/U01/B01"),
        ("teller.wang", "/HQ/U01/B01"),
    ):
        resp = api.as_(who).get(REPORT, params={"org_unit": unit, **NOVEMBER})
        assert "visit report" in problem(resp, 403)["detail"], who
    backwards = api.as_("admin").get(REPORT, params={"from": "2026-11-30", "to": "2026-11-01"})
    problem(backwards, 422)


def test_the_csv_has_the_form_columns_a_bom_and_defused_formulas(api: Api) -> None:
    ids = seeded(api)
    resp = api.as_("president.zhao").get(
        REPORT, params={"org_unit": "/HQ/U01", "format": "csv", "limit": 1, **NOVEMBER}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"].startswith('attachment; filename="visits-')
    raw = resp.content.decode("utf-8")
    assert raw.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(raw.removeprefix("\ufeff"))))
    header, lines = rows[0], rows[1:]
    assert header == [label for _, label in REPORT_COLUMNS]
    assert header[:3] == ["visit_date (拜访日期)", "visited_at (拜访时间 UTC)", "org_unit (机构)"]
    assert "participants (参加访问的人员及分工)" in header
    assert "next_contact_on (下次约见时间)" in header
    assert len(lines) == 3  # every row of the period, whatever the limit
    column = {name: n for n, (name, _) in enumerate(REPORT_COLUMNS)}
    by_id = {line[column["visit_id"]]: line for line in lines}
    first = by_id[ids["first"]]
    assert first[column["visit_date"]] == "2026-11-01"
    assert first[column["customer_name"]] == "Wang Wu"
    assert first[column["participants"]] == "manager.li (lead)"
    assert first[column["opportunities"]] == "LOAN-AGRI-01; WM-2026-07"
    assert first[column["satisfaction"]] == "satisfied"
    corrected = by_id[ids["corrected"]]
    assert corrected[column["visit_type"]] == "post_sale"
    assert corrected[column["purpose"]] == '\'=HYPERLINK("http://x")'  # stays text
    assert corrected[column["revision"]] == "2"


def test_the_csv_of_a_refused_caller_is_403_before_any_byte(api: Api) -> None:
    resp = api.as_("manager.li").get(REPORT, params={"format": "csv"})
    problem(resp, 403)
