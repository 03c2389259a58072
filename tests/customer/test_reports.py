"""The customer reports over HTTP: segmentation statistics 附件1 / 附件2, register 客户名册表.

One small population is built through the API (tiers decided by core banking's snapshots,
ownership by assignment events through the consumer), then each report is read as admin, a
branch president and customer managers, and every count and sum is checked in its cell.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from crmkit.consumer import RawRecord
from crmkit.events import build_envelope
from services.assignment.events import OWNERSHIP_ASSIGNED
from services.customer.domain import business_today
from tests.customer.conftest import Api, credit_code, firm, person, resident_id

CUSTOMERS = "/api/v1/customers"
SEGMENTATION = "/api/v1/reports/segmentation"
REGISTER = "/api/v1/reports/register"
BOM = b"\xef\xbb\xbf"
LATEST = "2026-09-30"
EARLIER = "2026-06-30"

_offsets = itertools.count()


# -- building the population --------------------------------------------------------------------
def create(api: Api, user: str, body: dict[str, Any]) -> str:
    resp = api.as_(user).post(CUSTOMERS, json=body)
    assert resp.status_code == 201, resp.text
    customer_id: str = resp.json()["id"]
    return customer_id


def snapshot(api: Api, customer_id: str, business_date: str = LATEST, **figures: Any) -> None:
    """Core banking's figures for a day, through the feed's client token."""
    resp = api.as_client("customer.financials").put(
        f"{CUSTOMERS}/{customer_id}/financials",
        json={"business_date": business_date, **figures},
    )
    assert resp.status_code == 200, resp.text


def assign(api: Api, customer_id: str, staff_id: str, role: str = "owner") -> None:
    """An ``ownership.assigned`` event from the assignment service, applied by the consumer."""
    envelope = build_envelope(
        OWNERSHIP_ASSIGNED,
        {
            "customer_id": customer_id,
            "staff_id": staff_id,
            "role": role,
            "org_unit": "/HQ/U01",
            "effective_at": datetime.now(UTC).isoformat(),
        },
        source="assignment",
        key=customer_id,
        actor="head.sun",
    )
    record = RawRecord("crm.assignment", 0, next(_offsets), envelope.to_bytes())
    api.client.app.state.runtime.applier.apply_batch([record])  # type: ignore[attr-defined]


def version_of(api: Api, customer_id: str) -> int:
    resp = api.as_("admin").get(f"{CUSTOMERS}/{customer_id}")
    assert resp.status_code == 200, resp.text
    version: int = resp.json()["version"]
    return version


@dataclass
class World:
    """The ids of the population, by role in the tests."""

    api: Api
    ids: dict[str, str]

    def __getitem__(self, label: str) -> str:
        return self.ids[label]


def target(**overrides: Any) -> dict[str, Any]:
    body = person(segment="target", id_number=None, lawful_basis="consent")
    body.update(overrides)
    return body


@pytest.fixture
def world(api: Api) -> World:
    """Stock and target customers in /HQ/U01/B01, /HQ/U01/B02 and /HQ/U02/B05.

    Stock (tier from the newest snapshot): hi_dep personal high (1,000,000.00 deposits, a wealth
    product; an earlier 5,000,000.00 snapshot must not count), hi_loan corporate high (loans
    2,000,000.00), mid_farm agricultural middle (100,000.00), gen_shop personal general in B02
    (99,999.99), inst corporate middle in /HQ/U02 (300,000.00), unrated (no snapshot), invalid
    (50.00), closed (left out of the statistics), dup (merged into hi_loan).
    Targets: t_other (another bank's, identity, phone and address), t_fair (phone only), t_firm
    (another bank's, a formula-like name), t_erased (erased on request).
    Owners: hi_dep and mid_farm manager.li (manager.zhou on mid_farm's team), hi_loan manager.zhou.
    """
    ids: dict[str, str] = {}
    ids["hi_dep"] = create(
        api,
        "manager.li",
        person(
            name="Chen Hua 陈华",
            id_number=resident_id(serial=201),
            addresses=[{"type": "home", "text": "8 Orchard Road, Xindian Township"}],
            relationship_evaluation="long-standing, good",
            cooperation_direction="wealth management",
            importance="key",
            importance_review_date="2026-07-01",
            archive_number="A-0201",
        ),
    )
    snapshot(api, ids["hi_dep"], EARLIER, deposits="5000000.00")
    snapshot(api, ids["hi_dep"], LATEST, deposits="1000000.00", products=["wealth"])
    ids["hi_loan"] = create(
        api, "manager.li", firm(name="Hengda Machinery", credit_code=credit_code())
    )
    snapshot(api, ids["hi_loan"], deposits="50000.00", loans="2000000.00")
    ids["mid_farm"] = create(
        api,
        "manager.li",
        person(
            kind="farm_household",
            business_line="agricultural",
            name="Liu Farm 刘家农户",
            id_number=resident_id("19750101", 202),
        ),
    )
    snapshot(api, ids["mid_farm"], deposits="100000.00")
    ids["gen_shop"] = create(
        api,
        "manager.zhou",
        {
            "kind": "individual_business",
            "name": "Wang Noodle Shop",
            "org_unit": "/HQ/U01/B02",
            "business_line": "personal",
            "credit_code": credit_code("91350100M000102Y4"),
            "operator_id_number": resident_id(serial=203),
        },
    )
    snapshot(api, ids["gen_shop"], deposits="99999.99", products=["e_banking"])
    ids["inst"] = create(
        api,
        "admin",
        {
            "kind": "institution",
            "name": "County Water Bureau",
            "org_unit": "/HQ/U02/B05",
            "business_line": "corporate",
            "credit_code": credit_code("12350100M000103Y4"),
        },
    )
    snapshot(api, ids["inst"], deposits="300000.00")
    ids["unrated"] = create(
        api, "manager.li", person(name="Zhao Unrated", id_number=resident_id(serial=204))
    )
    ids["invalid"] = create(
        api, "manager.li", person(name="Sun Small", id_number=resident_id(serial=205))
    )
    snapshot(api, ids["invalid"], deposits="50.00")
    ids["closed"] = create(
        api, "manager.li", person(name="Qian Closed", id_number=resident_id(serial=206))
    )
    snapshot(api, ids["closed"], deposits="200000.00")
    closing = api.as_("manager.li").patch(
        f"{CUSTOMERS}/{ids['closed']}",
        json={"status": "closed", "version": version_of(api, ids["closed"])},
    )
    assert closing.status_code == 200, closing.text
    ids["dup"] = create(api, "manager.li", firm(name="Hengda Machinery Co.", credit_code=None))
    snapshot(api, ids["dup"], "2026-03-31", deposits="500000.00")
    merged = api.as_("president.zhao").post(
        f"{CUSTOMERS}/{ids['hi_loan']}/merge",
        json={"duplicate_id": ids["dup"], "version": version_of(api, ids["hi_loan"])},
    )
    assert merged.status_code == 200, merged.text

    ids["t_other"] = create(
        api,
        "manager.li",
        target(
            name="Ma Prospect",
            id_number=resident_id(serial=207),
            addresses=[{"type": "home", "text": "3 Mill Lane"}],
            data_source="other_bank: staff contact at the county branch of bank X",
        ),
    )
    ids["t_fair"] = create(
        api,
        "manager.li",
        target(
            kind="farm_household",
            business_line="agricultural",
            name="He Fair",
            data_source="met at the township fair",
        ),
    )
    ids["t_firm"] = create(
        api,
        "manager.li",
        firm(
            segment="target",
            name='=HYPERLINK("http://x.example")',
            credit_code=credit_code("91350100M000104Y4"),
            addresses=[{"type": "registered", "text": "1 Industrial Park"}],
            data_source="Other_Bank: supplier list",
            lawful_basis="public_information",
        ),
    )
    ids["t_erased"] = create(
        api,
        "manager.li",
        target(
            name="Erased Person",
            id_number=resident_id(serial=208),
            addresses=[{"type": "home", "text": "9 Gone Street"}],
            data_source="other_bank: a colleague",
        ),
    )
    erased = api.as_("admin").post(
        f"{CUSTOMERS}/{ids['t_erased']}/erasure",
        json={"reason": "data subject request", "request_reference": "PIPL-2026-001"},
    )
    assert erased.status_code == 200, erased.text

    assign(api, ids["hi_dep"], "manager.li")
    assign(api, ids["mid_farm"], "manager.li")
    assign(api, ids["mid_farm"], "manager.zhou", role="team_member")
    assign(api, ids["hi_loan"], "manager.zhou")
    return World(api, ids)


# -- reading the reports ------------------------------------------------------------------------
def segmentation(world: World, user: str, **params: Any) -> dict[str, Any]:
    resp = world.api.as_(user).get(SEGMENTATION, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def groups(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {block["group"]: block for block in report["groups"]}


def cell(block: dict[str, Any], customer_class: str, tier: str) -> dict[str, Any]:
    for cls in block["classes"]:
        if cls["customer_class"] == customer_class:
            if tier == "total":
                total: dict[str, Any] = cls["total"]
                return total
            for tier_cell in cls["tiers"]:
                if tier_cell["value_tier"] == tier:
                    found: dict[str, Any] = tier_cell
                    return found
    raise AssertionError(f"no cell {customer_class}/{tier}")


def invalid_of(block: dict[str, Any], customer_class: str) -> int:
    counts = {cls["customer_class"]: cls["invalid_count"] for cls in block["classes"]}
    count: int = counts[customer_class]
    return count


def figures(data: dict[str, Any]) -> tuple[int, str, str, int, int, int]:
    return (
        data["customers"],
        data["deposits"],
        data["loans"],
        data["deposit_customers"],
        data["loan_customers"],
        data["fee_business_customers"],
    )


EMPTY = (0, "0.00", "0.00", 0, 0, 0)


def csv_rows(content: bytes) -> list[list[str]]:
    assert content.startswith(BOM)
    return list(csv.reader(io.StringIO(content[len(BOM) :].decode("utf-8"))))


# -- 附件1 stock --------------------------------------------------------------------------------
def test_stock_cells_hold_counts_and_newest_balances(world: World) -> None:
    report = segmentation(world, "admin", segment="stock")
    by_group = groups(report)
    assert list(by_group) == ["/HQ/U01/B01", "/HQ/U01/B02", "/HQ/U02/B05"]
    b01 = by_group["/HQ/U01/B01"]
    # hi_dep: the 2026-09-30 snapshot counts, not the earlier 5,000,000.00.
    assert figures(cell(b01, "personal", "high")) == (1, "1000000.00", "0.00", 1, 0, 1)
    assert figures(cell(b01, "personal", "unrated")) == (1, "0.00", "0.00", 0, 0, 0)
    assert figures(cell(b01, "personal", "middle")) == EMPTY
    assert figures(cell(b01, "personal", "general")) == EMPTY
    # hi_loan: the merged duplicate's older snapshot moved over but is not the newest.
    assert figures(cell(b01, "corporate", "high")) == (1, "50000.00", "2000000.00", 1, 1, 0)
    assert figures(cell(b01, "corporate", "middle")) == EMPTY
    assert figures(cell(b01, "agricultural", "middle")) == (1, "100000.00", "0.00", 1, 0, 0)
    assert figures(cell(b01, "personal", "total")) == (2, "1000000.00", "0.00", 1, 0, 1)
    assert figures(b01["total"]) == (4, "1150000.00", "2000000.00", 3, 1, 1)
    assert [c["customer_class_zh"] for c in b01["classes"]] == ["公司类", "个人类", "三农类"]
    assert [t["value_tier_zh"] for t in b01["classes"][0]["tiers"]] == [
        "高端",
        "中端",
        "一般",
        "未评定",
    ]
    b02 = by_group["/HQ/U01/B02"]
    assert figures(cell(b02, "personal", "general")) == (1, "99999.99", "0.00", 1, 0, 1)
    assert figures(b02["total"]) == (1, "99999.99", "0.00", 1, 0, 1)
    b05 = by_group["/HQ/U02/B05"]
    assert figures(cell(b05, "corporate", "middle")) == (1, "300000.00", "0.00", 1, 0, 0)
    assert figures(report["total"]) == (6, "1549999.99", "2000000.00", 5, 1, 2)
    assert b01["total"]["target"] is None and report["total"]["target"] is None


def test_invalid_customers_are_counted_apart_and_left_out_of_every_figure(world: World) -> None:
    report = segmentation(world, "admin", segment="stock")
    b01 = groups(report)["/HQ/U01/B01"]
    assert invalid_of(b01, "personal") == 1
    assert invalid_of(b01, "corporate") == 0 and invalid_of(b01, "agricultural") == 0
    assert b01["invalid_count"] == 1 and report["invalid_count"] == 1
    # The invalid customer has 50.00 of deposits (a deposit customer) and a general tier stored:
    # neither shows in the general cell nor in the deposit-customer count.
    assert figures(cell(b01, "personal", "general")) == EMPTY
    assert cell(b01, "personal", "total")["deposit_customers"] == 1
    invalid = world.api.as_("admin").get(f"{CUSTOMERS}/{world['invalid']}").json()["tiers"]
    assert invalid["invalid"] is True and invalid["value_tier"] == "general"


def test_merged_erased_and_closed_records_are_not_counted(world: World) -> None:
    stock = segmentation(world, "admin", segment="stock")
    # closed (200,000.00, would be personal middle) and dup (500,000.00, corporate) are absent.
    assert figures(cell(groups(stock)["/HQ/U01/B01"], "personal", "middle")) == EMPTY
    assert stock["total"]["customers"] == 6
    targets = segmentation(world, "admin", segment="target")
    assert targets["total"]["customers"] == 3  # t_erased is not counted


def test_the_header_carries_the_policy_in_force_and_the_as_of_date(world: World) -> None:
    before = business_today().isoformat()
    header = segmentation(world, "admin", segment="stock")["header"]
    assert header["as_of"] in {before, business_today().isoformat()}
    assert header["title"].startswith("附件1 存量客户细分统计表")
    assert header["segment"] == "stock" and header["group_by"] == "org_unit"
    assert header["policy_version"] == "2026-01-01"
    assert header["policy_effective_from"] == "2026-01-01"
    assert header["thresholds"] == {
        "high": {"deposits_at_least": "1000000.00", "loans_at_least": "2000000.00"},
        "middle": {"deposits_at_least": "100000.00", "loans_at_least": "500000.00"},
    }
    assert header["thresholds_by_kind"] == {}
    assert header["tiers_assessed_under"] == ["2026-01-01"]
    assert header["org_unit"] is None


def test_notes_say_how_classes_and_invalid_customers_are_counted(world: World) -> None:
    notes = " ".join(segmentation(world, "admin", segment="stock")["notes"])
    assert "business line" in notes and "三农类" in notes
    assert "invalid_count" in notes
    assert "other_bank" not in notes


# -- scope ----------------------------------------------------------------------------------------
def test_each_caller_counts_only_what_they_may_read(world: World) -> None:
    li = segmentation(world, "manager.li", segment="stock")
    assert list(groups(li)) == ["/HQ/U01/B01"]
    li_b01 = groups(li)["/HQ/U01/B01"]
    # hi_dep and mid_farm are his; unrated and invalid are unassigned and his by entry;
    # hi_loan now belongs to manager.zhou.
    assert figures(li["total"]) == (3, "1100000.00", "0.00", 2, 0, 1)
    assert figures(cell(li_b01, "corporate", "high")) == EMPTY
    assert li["invalid_count"] == 1

    zhou = segmentation(world, "manager.zhou", segment="stock")
    assert list(groups(zhou)) == ["/HQ/U01/B01", "/HQ/U01/B02"]
    zhou_b01 = groups(zhou)["/HQ/U01/B01"]
    assert figures(cell(zhou_b01, "corporate", "high")) == (1, "50000.00", "2000000.00", 1, 1, 0)
    assert figures(cell(zhou_b01, "agricultural", "middle"))[0] == 1  # as a team member
    assert figures(zhou["total"]) == (3, "249999.99", "2000000.00", 3, 1, 1)
    assert zhou["invalid_count"] == 0

    zhao = segmentation(world, "president.zhao", segment="stock")
    assert list(groups(zhao)) == ["/HQ/U01/B01", "/HQ/U01/B02"]
    assert figures(zhao["total"]) == (5, "1249999.99", "2000000.00", 4, 1, 2)
    assert zhao["invalid_count"] == 1

    admin = segmentation(world, "admin", segment="stock")
    assert admin["total"]["customers"] == 6


def test_org_unit_narrows_the_report_within_the_callers_scope(world: World) -> None:
    b02 = segmentation(world, "admin", segment="stock", org_unit="/HQ/U01/B02")
    assert list(groups(b02)) == ["/HQ/U01/B02"]
    assert b02["header"]["org_unit"] == "/HQ/U01/B02"
    assert figures(b02["total"]) == (1, "99999.99", "0.00", 1, 0, 1)
    outside = segmentation(world, "president.zhao", segment="stock", org_unit="/HQ/U02")
    assert outside["groups"] == [] and figures(outside["total"]) == EMPTY
    # "_" is a character of the path, not a pattern matching /HQ/U01.
    pattern = segmentation(world, "admin", segment="stock", org_unit="/HQ/U0_")
    assert pattern["groups"] == []
    assert register(world, "admin", org_unit="/HQ/U0_")["total"] == 0


def test_group_by_manager_uses_the_owner_and_puts_the_rest_under_unassigned(world: World) -> None:
    report = segmentation(world, "admin", segment="stock", group_by="manager")
    by_group = groups(report)
    assert list(by_group) == ["manager.li", "manager.zhou", "unassigned"]
    assert figures(by_group["manager.li"]["total"]) == (2, "1100000.00", "0.00", 2, 0, 1)
    # mid_farm counts once, under its owner, not again under its team member.
    assert figures(by_group["manager.zhou"]["total"]) == (1, "50000.00", "2000000.00", 1, 1, 0)
    unassigned = by_group["unassigned"]
    assert figures(unassigned["total"]) == (3, "399999.99", "0.00", 2, 0, 1)
    assert unassigned["invalid_count"] == 1
    assert figures(cell(unassigned, "corporate", "middle")) == (1, "300000.00", "0.00", 1, 0, 0)
    assert figures(report["total"]) == (6, "1549999.99", "2000000.00", 5, 1, 2)
    assert any("第一责任人" in note for note in report["notes"])


def test_callers_who_read_no_customers_are_refused(world: World) -> None:
    for path, params in (
        (SEGMENTATION, {"segment": "stock"}),
        (REGISTER, {}),
        (REGISTER, {"format": "csv"}),
    ):
        for who in (world.api.as_("teller.wang"), world.api.as_client("customer.financials")):
            resp = who.get(path, params=params)
            assert resp.status_code == 403, resp.text
            assert resp.headers["content-type"].startswith("application/problem+json")
        anonymous = world.api.client.get(path, params=params)
        assert anonymous.status_code == 401


def test_bad_parameters_are_reported_by_field(api: Api) -> None:
    resp = api.as_("admin").get(
        SEGMENTATION, params={"segment": "prospect", "group_by": "x", "org_unit": "HQ"}
    )
    assert resp.status_code == 422
    assert {e["field"] for e in resp.json()["errors"]} == {"segment", "group_by", "org_unit"}
    assert api.as_("admin").get(SEGMENTATION).status_code == 422  # segment is required
    page = api.as_("admin").get(REGISTER, params={"limit": 0, "offset": -1})
    assert {e["field"] for e in page.json()["errors"]} == {"limit", "offset"}


# -- 附件2 target ---------------------------------------------------------------------------------
def test_the_target_report_adds_other_banks_willingness_and_collection(world: World) -> None:
    report = segmentation(world, "admin", segment="target")
    assert report["header"]["title"].startswith("附件2 目标客户细分统计表")
    b01 = groups(report)["/HQ/U01/B01"]
    assert cell(b01, "personal", "unrated")["target"] == {
        "other_bank_customers": 1,
        "willing_to_establish_credit": None,
        "info_collected": 1,
        "info_collected_pct": "100.00",
    }
    assert cell(b01, "agricultural", "unrated")["target"] == {
        "other_bank_customers": 0,
        "willing_to_establish_credit": None,
        "info_collected": 0,
        "info_collected_pct": "0.00",
    }
    # t_firm: another bank's (the prefix is read case-blind), no mobile phone: not collected.
    assert cell(b01, "corporate", "unrated")["target"]["other_bank_customers"] == 1
    assert cell(b01, "corporate", "unrated")["target"]["info_collected"] == 0
    assert cell(b01, "corporate", "high")["target"]["info_collected_pct"] is None
    assert b01["total"]["target"] == {
        "other_bank_customers": 2,
        "willing_to_establish_credit": None,
        "info_collected": 1,
        "info_collected_pct": "33.33",
    }
    assert report["total"]["customers"] == 3
    notes = " ".join(report["notes"])
    assert "other_bank" in notes and "willingness flag" in notes


# -- CSV ----------------------------------------------------------------------------------------
def test_stock_csv_has_a_bom_english_headers_and_a_row_per_cell(world: World) -> None:
    resp = world.api.as_("admin").get(SEGMENTATION, params={"segment": "stock", "format": "csv"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert "segmentation-stock-" in resp.headers["content-disposition"]
    rows = csv_rows(resp.content)
    assert rows[0] == [
        "group (组别)",
        "customer_class (客户类别)",
        "value_tier (客户价值)",
        "customers (户数)",
        "deposits (存款余额)",
        "loans (贷款余额)",
        "deposit_customers (存款客户)",
        "loan_customers (贷款客户)",
        "fee_business_customers (中间业务客户)",
        "invalid_customers (无效客户)",
    ]
    body = rows[1:]
    # 3 groups x (3 classes x (4 tiers + total) + group total) + the overall total.
    assert len(body) == 3 * (3 * 5 + 1) + 1
    keyed = {(r[0], r[1], r[2]): r[3:] for r in body}
    assert keyed[("/HQ/U01/B01", "personal", "high")] == [
        "1",
        "1000000.00",
        "0.00",
        "1",
        "0",
        "1",
        "",
    ]
    assert keyed[("/HQ/U01/B01", "personal", "total")] == [
        "2",
        "1000000.00",
        "0.00",
        "1",
        "0",
        "1",
        "1",
    ]
    assert keyed[("total", "total", "total")] == [
        "6",
        "1549999.99",
        "2000000.00",
        "5",
        "1",
        "2",
        "1",
    ]


def test_target_csv_carries_the_extra_columns(world: World) -> None:
    resp = world.api.as_("manager.li").get(
        SEGMENTATION, params={"segment": "target", "format": "csv"}
    )
    rows = csv_rows(resp.content)
    assert rows[0][-4:] == [
        "other_bank_customers (他行存量客户)",
        "willing_to_establish_credit (有授信意向客户)",
        "info_collected (已采集信息客户)",
        "info_collected_pct (信息采集面%)",
    ]
    keyed = {(r[0], r[1], r[2]): r[3:] for r in rows[1:]}
    assert keyed[("/HQ/U01/B01", "personal", "unrated")] == [
        "1",
        "0.00",
        "0.00",
        "0",
        "0",
        "0",
        "",
        "1",
        "",
        "1",
        "100.00",
    ]
    assert keyed[("total", "total", "total")][-4:] == ["2", "", "1", "33.33"]


# -- 客户名册表 register --------------------------------------------------------------------------
def register(world: World, user: str, **params: Any) -> dict[str, Any]:
    resp = world.api.as_(user).get(REGISTER, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_register_rows_carry_the_columns_of_001_with_phones_masked(world: World) -> None:
    page = register(world, "admin", limit=500)
    rows = {row["customer_id"]: row for row in page["items"]}
    assert rows[world["hi_dep"]] == {
        "customer_id": world["hi_dep"],
        "name": "Chen Hua 陈华",
        "kind": "individual",
        "segment": "stock",
        "status": "active",
        "org_unit": "/HQ/U01/B01",
        "owner": "manager.li",
        "address": "8 Orchard Road, Xindian Township",
        "contact": "138****5678",
        "deposits": "1000000.00",
        "loans": "0.00",
        "balances_as_of": LATEST,
        "relationship_evaluation": "long-standing, good",
        "cooperation_direction": "wealth management",
        "importance": "key",
        "importance_review_date": "2026-07-01",
        "archive_number": "A-0201",
    }
    unrated = rows[world["unrated"]]
    assert unrated["deposits"] is None and unrated["balances_as_of"] is None
    assert unrated["owner"] is None
    assert rows[world["mid_farm"]]["owner"] == "manager.li"  # the owner, not the team member
    assert rows[world["hi_loan"]]["owner"] == "manager.zhou"
    assert rows[world["closed"]]["status"] == "closed"
    assert world["dup"] not in rows and world["t_erased"] not in rows
    assert page["total"] == 11 == len(rows)
    resp = world.api.as_("admin").get(REGISTER, params={"limit": 500})
    assert "13812345678" not in resp.text


def test_register_pages_are_stable_and_cover_everyone_once(world: World) -> None:
    seen: list[str] = []
    for offset in (0, 4, 8):
        page = register(world, "admin", limit=4, offset=offset)
        assert page["total"] == 11 and page["limit"] == 4 and page["offset"] == offset
        seen += [row["customer_id"] for row in page["items"]]
    assert len(seen) == 11 == len(set(seen))
    everyone = register(world, "admin", limit=500)["items"]
    assert seen == [row["customer_id"] for row in everyone]
    orgs = [row["org_unit"] for row in everyone]
    assert orgs == sorted(orgs)
    assert register(world, "admin", limit=4, offset=12)["items"] == []


def test_register_filters_and_scope(world: World) -> None:
    li = register(world, "manager.li", limit=500)
    li_ids = {row["customer_id"] for row in li["items"]}
    assert li_ids == {
        world[label]
        for label in (
            "hi_dep",
            "mid_farm",
            "unrated",
            "invalid",
            "closed",
            "t_other",
            "t_fair",
            "t_firm",
        )
    }
    zhou_book = register(world, "admin", owner="manager.zhou", limit=500)
    assert {row["customer_id"] for row in zhou_book["items"]} == {
        world["hi_loan"],
        world["mid_farm"],
    }
    targets = register(world, "president.zhao", segment="target", limit=500)
    assert {row["customer_id"] for row in targets["items"]} == {
        world["t_other"],
        world["t_fair"],
        world["t_firm"],
    }
    b02 = register(world, "admin", org_unit="/HQ/U01/B02")
    assert [row["customer_id"] for row in b02["items"]] == [world["gen_shop"]]


def test_register_csv_streams_every_row_with_a_bom_and_defused_formulas(world: World) -> None:
    resp = world.api.as_("president.zhao").get(REGISTER, params={"format": "csv", "limit": 1})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert "content-length" not in resp.headers  # streamed, not one prepared body
    rows = csv_rows(resp.content)
    assert rows[0][:4] == [
        "customer_id (客户编号)",
        "name (客户名称)",
        "kind (客户类型)",
        "segment (存量/目标)",
    ]
    assert rows[0][8:10] == ["contact (联系方式)", "deposits (存款额)"]
    body = {r[0]: r for r in rows[1:]}
    # Every row in the president's subtree despite limit=1: all but inst.
    assert len(body) == 10 and world["inst"] not in body
    hi_dep = body[world["hi_dep"]]
    assert hi_dep[1] == "Chen Hua 陈华" and hi_dep[8] == "138****5678"
    assert hi_dep[9:12] == ["1000000.00", "0.00", LATEST]
    assert body[world["unrated"]][9:12] == ["", "", ""]
    assert body[world["t_firm"]][1] == '\'=HYPERLINK("http://x.example")'
    assert b"13812345678" not in resp.content
