"""Searching customers: list filters, cursor pagination and lost-contact customers 失联客户."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crmkit.consumer import RawRecord
from crmkit.events import build_envelope
from services.assignment.events import OWNERSHIP_ASSIGNED
from services.customer.app import create_app
from tests.conftest import TEST_BACKEND, Databases
from tests.customer import conftest as customer_conftest
from tests.customer.conftest import Api, _As, firm, person, resident_id

CUSTOMERS = "/api/v1/customers"
LOST = f"{CUSTOMERS}/lost-contact"

# label: (body, figures recorded for it or None)
SEED: dict[str, tuple[dict[str, Any], dict[str, str] | None]] = {
    "zhang": (
        person(
            name="Zhang San 张三",
            id_number=resident_id(serial=201),
            market_segment="public_institution",
        ),
        {"deposits": "1200000", "aum": "1200000"},  # high, layer_2, platinum
    ),
    "lisi": (
        person(
            name="李四 Li Si",
            id_number=resident_id(serial=202),
            phone=None,
            org_unit="/HQ/U01/B02",
            market_segment="tertiary_industry",
        ),
        {"deposits": "150000", "aum": "180000"},  # middle, layer_3, potential gold
    ),
    "wang": (
        person(
            kind="farm_household",
            name="王五 Wang Wu",
            id_number=resident_id(serial=203),
            phone="139 0000 0203",
            org_unit="/HQ/U02/B01",
            business_line="agricultural",
            market_segment="farm",
        ),
        {"deposits": "50", "aum": "50"},  # general
    ),
    "firm": (firm(market_segment="manufacturing"), None),
    "target": (
        person(
            name="Zhao Liu 赵六",
            segment="target",
            id_number=None,
            phone=None,
            data_source="met at the township fair",
            lawful_basis="consent",
        ),
        None,
    ),
    "dormant": (
        person(name="Qian Qi 钱七", id_number=resident_id(serial=204), phone="139 0000 0204"),
        {"loans": "600000"},  # middle by loans
    ),
}
ALL = set(SEED)


@dataclass
class World:
    api: Api
    ids: dict[str, str]

    def labels(self, ids: list[str]) -> set[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id[i] for i in ids}


def assign(api: Api, customer_id: str, staff_id: str) -> None:
    envelope = build_envelope(
        OWNERSHIP_ASSIGNED,
        {
            "customer_id": customer_id,
            "staff_id": staff_id,
            "role": "owner",
            "org_unit": "/HQ/U01/B02",
            "effective_at": datetime.now(UTC).isoformat(),
        },
        source="assignment",
        key=customer_id,
        actor="head.sun",
    )
    record = RawRecord("crm.assignment", 0, 0, envelope.to_bytes())
    api.client.app.state.runtime.applier.apply_batch([record])  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, dev_keys: tuple[str, Path]) -> Iterator[World]:
    dbs = Databases(TEST_BACKEND, tmp_path_factory.mktemp("search"))
    try:
        settings = customer_conftest.test_settings(dbs, dev_keys[1])
        with TestClient(create_app(settings)) as client:
            api = Api(client, {}, dev_keys[0])
            admin = api.as_("admin")
            ids: dict[str, str] = {}
            for label, (body, figures) in SEED.items():
                resp = admin.post(CUSTOMERS, json=body)
                assert resp.status_code == 201, resp.text
                ids[label] = resp.json()["id"]
                if figures is not None:
                    put = admin.put(
                        f"{CUSTOMERS}/{ids[label]}/financials",
                        json={"business_date": "2026-11-20", **figures},
                    )
                    assert put.status_code == 200, put.text
            url = f"{CUSTOMERS}/{ids['dormant']}"
            version = admin.get(url).json()["version"]
            dormant = admin.patch(url, json={"status": "dormant", "version": version})
            assert dormant.status_code == 200, dormant.text
            assign(api, ids["lisi"], "manager.zhou")
            yield World(api, ids)
    finally:
        dbs.drop_all()


def search(who: _As, path: str = CUSTOMERS, **params: Any) -> list[dict[str, Any]]:
    resp = who.get(path, params={"limit": 500, **params})
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


FILTERS: list[tuple[dict[str, Any], set[str]]] = [
    ({}, ALL),
    ({"kind": "individual"}, {"zhang", "lisi", "target", "dormant"}),
    ({"kind": "farm_household"}, {"wang"}),
    ({"kind": "corporate"}, {"firm"}),
    ({"kind": "institution"}, set()),
    ({"segment": "target"}, {"target"}),
    ({"segment": "stock"}, ALL - {"target"}),
    ({"status": "active"}, {"zhang", "lisi", "wang", "firm"}),
    ({"status": "dormant"}, {"dormant"}),
    ({"status": "target"}, {"target"}),
    ({"status": "closed"}, set()),
    ({"value_tier": "high"}, {"zhang"}),
    ({"value_tier": "middle"}, {"lisi", "dormant"}),
    ({"value_tier": "general"}, {"wang"}),
    ({"wealth_layer": "layer_2"}, {"zhang"}),
    ({"wealth_layer": "layer_3"}, {"lisi"}),
    ({"wealth_layer": "layer_1"}, set()),
    ({"vip_level": "platinum"}, {"zhang"}),
    ({"vip_level": "gold"}, set()),
    ({"potential_vip": "gold"}, {"lisi"}),
    ({"potential_vip": "diamond"}, set()),
    ({"org_unit": "/HQ"}, ALL),
    ({"org_unit": "/HQ/U01"}, ALL - {"wang"}),
    ({"org_unit": "/HQ/U01/B01"}, {"zhang", "firm", "target", "dormant"}),
    ({"org_unit": "/HQ/U01/B01/"}, {"zhang", "firm", "target", "dormant"}),
    ({"org_unit": "/HQ/U01/B02"}, {"lisi"}),
    ({"org_unit": "/HQ/U02"}, {"wang"}),
    ({"org_unit": "/HQ/U01/B0"}, set()),  # a prefix of a name is not a subtree
    ({"org_unit": "/HQ/U0_"}, set()),  # "_" is a character of a path, not a wildcard
    ({"org_unit": "/hq/u01"}, set()),  # paths are case-sensitive on every database
    ({"market_segment": "farm"}, {"wang"}),
    ({"market_segment": "manufacturing"}, {"firm"}),
    ({"market_segment": "township"}, set()),
    ({"owner": "manager.zhou"}, {"lisi"}),
    ({"owner": "manager.li"}, set()),
    ({"lost_contact": "true"}, {"lisi", "firm", "target"}),
    ({"lost_contact": "false"}, {"zhang", "wang", "dormant"}),
    ({"q": "张"}, {"zhang"}),
    ({"q": "张三"}, {"zhang"}),
    ({"q": "zhang"}, {"zhang"}),
    ({"q": "ZHANG SAN"}, {"zhang"}),
    ({"q": "San 张"}, {"zhang"}),
    ({"q": "李四"}, {"lisi"}),
    ({"q": "li si"}, {"lisi"}),
    ({"q": "LI-SI"}, {"lisi"}),
    ({"q": "li"}, {"lisi", "target"}),  # Li Si and Zhao Liu
    ({"q": "FARM"}, {"firm"}),
    ({"q": "hengda farm"}, {"firm"}),
    ({"q": "钱七"}, {"dormant"}),
    ({"q": "nobody"}, set()),
    ({"q": "50%"}, set()),  # "%" is no wildcard
    (
        {"kind": "individual", "org_unit": "/HQ/U01/B01", "lost_contact": "false"},
        {"zhang", "dormant"},
    ),
    ({"value_tier": "middle", "status": "dormant"}, {"dormant"}),
    ({"q": "li", "lost_contact": "true", "org_unit": "/HQ/U01/B02"}, {"lisi"}),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS, ids=[str(p) or "all" for p, _ in FILTERS])
def test_list_filters(world: World, params: dict[str, Any], expected: set[str]) -> None:
    items = search(world.api.as_("admin"), **params)
    assert len(items) == len(expected)
    assert world.labels([item["id"] for item in items]) == expected


def test_summaries_carry_tiers_owners_and_masked_phones(world: World) -> None:
    items = {item["id"]: item for item in search(world.api.as_("admin"))}
    zhang = items[world.ids["zhang"]]
    assert (zhang["value_tier"], zhang["wealth_layer"], zhang["vip_level"]) == (
        "high",
        "layer_2",
        "platinum",
    )
    assert zhang["phone"] == "138****5678" and zhang["lost_contact"] is False
    assert items[world.ids["lisi"]]["owners"] == ["manager.zhou"]
    assert items[world.ids["lisi"]]["phone"] is None
    assert items[world.ids["zhang"]]["owners"] == []
    assert items[world.ids["target"]]["value_tier"] is None


def test_filters_never_widen_the_callers_scope(world: World) -> None:
    zhou = world.api.as_("manager.zhou")
    assert world.labels([i["id"] for i in search(zhou)]) == {"lisi"}
    assert world.labels([i["id"] for i in search(zhou, owner="manager.zhou")]) == {"lisi"}
    assert search(zhou, q="张") == []
    assert search(zhou, org_unit="/HQ/U01/B01") == []
    assert search(world.api.as_("head.sun"), org_unit="/HQ/U01/B02") == []
    assert search(world.api.as_("teller.wang"), q="zhang") == []
    assert world.labels([i["id"] for i in search(zhou, LOST)]) == {"lisi"}


BAD_PARAMS = [
    {"kind": "alien"},
    {"segment": "potential"},
    {"status": "gone"},
    {"value_tier": "top"},
    {"wealth_layer": "layer_5"},
    {"vip_level": "bronze"},
    {"potential_vip": "silver"},
    {"org_unit": "HQ/U01"},
    {"org_unit": "/HQ/U01;drop"},
    {"lost_contact": "maybe"},
    {"limit": "0"},
    {"limit": "501"},
    {"q": "x" * 101},
]


@pytest.mark.parametrize("params", BAD_PARAMS, ids=str)
def test_invalid_filters_are_422_problems(world: World, params: dict[str, str]) -> None:
    resp = world.api.as_("admin").get(CUSTOMERS, params=params)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in resp.json()["errors"]} == set(params)


# -- cursor pagination --------------------------------------------------------------------------


def seed_many(api: Api, count: int) -> list[str]:
    admin = api.as_("admin")
    ids = []
    for i in range(count):
        unit = "/HQ/U01/B01" if i % 2 == 0 else "/HQ/U01/B02"
        body = person(
            name=f"Customer {i:02d}", id_number=resident_id(serial=300 + i), org_unit=unit
        )
        resp = admin.post(CUSTOMERS, json=body)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    return ids


def walk(who: _As, limit: int, path: str = CUSTOMERS, **params: Any) -> list[list[str]]:
    """Every page of a list, following next_cursor until there is none."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        resp = who.get(path, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["limit"] == limit
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor does not advance"


def test_cursor_pages_cover_every_customer_once_in_a_stable_order(api: Api) -> None:
    created = seed_many(api, 25)
    admin = api.as_("admin")
    pages = walk(admin, 10)
    assert [len(p) for p in pages] == [10, 10, 5]
    walked = [customer_id for page in pages for customer_id in page]
    assert len(set(walked)) == 25
    assert set(walked) == set(created)
    everything = search(admin)
    assert walked == [item["id"] for item in everything]
    order = [(item["created_at"], item["id"]) for item in everything]
    assert order == sorted(order)
    assert walked == created  # entered one after the other: oldest first
    assert walk(admin, 10) == pages


def test_a_page_that_ends_the_list_has_no_next_cursor(api: Api) -> None:
    seed_many(api, 24)
    admin = api.as_("admin")
    assert [len(p) for p in walk(admin, 12)] == [12, 12]
    b02 = walk(admin, 4, org_unit="/HQ/U01/B02")
    assert [len(p) for p in b02] == [4, 4, 4]
    assert [i for p in b02 for i in p] == [i["id"] for i in search(admin, org_unit="/HQ/U01/B02")]
    empty = admin.get(CUSTOMERS, params={"kind": "institution", "limit": 5}).json()
    assert empty == {"items": [], "limit": 5, "next_cursor": None}


def test_customers_entered_while_paging_appear_on_a_later_page(api: Api) -> None:
    seed_many(api, 12)
    admin = api.as_("admin")
    first = admin.get(CUSTOMERS, params={"limit": 5}).json()
    late = seed_many_named(api, "Late Comer", 400)
    seen = [item["id"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = admin.get(CUSTOMERS, params={"limit": 5, "cursor": cursor}).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 13
    assert seen[-1] == late


def seed_many_named(api: Api, name: str, serial: int) -> str:
    resp = api.as_("admin").post(
        CUSTOMERS, json=person(name=name, id_number=resident_id(serial=serial))
    )
    assert resp.status_code == 201, resp.text
    customer_id: str = resp.json()["id"]
    return customer_id


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


BAD_CURSORS = [
    "not-a-cursor",
    "!!!!",
    _b64("garbage"),
    _b64("yesterday|00000000-0000-4000-8000-000000000000"),
    # A cursor this service never issues: a timestamp without a zone.
    _b64("2026-11-01T00:00:00|00000000-0000-4000-8000-000000000000"),
]


@pytest.mark.parametrize(
    "cursor", BAD_CURSORS, ids=["text", "no-base64", "no-separator", "no-date", "naive-time"]
)
@pytest.mark.parametrize("path", [CUSTOMERS, LOST])
def test_a_bad_cursor_is_a_422_problem(api: Api, path: str, cursor: str) -> None:
    seed_many(api, 2)
    resp = api.as_("admin").get(path, params={"cursor": cursor})
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["errors"] == [{"field": "cursor", "reason": "not a cursor"}]


# -- lost-contact customers 失联客户 --------------------------------------------------------------


def test_lost_contact_lists_customers_without_a_phone(api: Api) -> None:
    admin = api.as_("admin")
    reachable = seed_many_named(api, "Reachable", 501)
    silent = admin.post(
        CUSTOMERS, json=person(name="Silent", id_number=resident_id(serial=502), phone=None)
    ).json()
    unstated = person(name="Unstated", id_number=resident_id(serial=503), org_unit="/HQ/U01/B02")
    del unstated["phone"]
    quiet = admin.post(CUSTOMERS, json=unstated).json()
    company = admin.post(CUSTOMERS, json=firm()).json()
    assert silent["lost_contact"] is True and silent["phone"] is None
    assert quiet["lost_contact"] is True
    assert company["lost_contact"] is True
    lost = {i["id"] for i in search(admin, LOST)}
    assert lost == {silent["id"], quiet["id"], company["id"]}
    assert reachable not in lost
    assert {i["id"] for i in search(admin, LOST, org_unit="/HQ/U01/B02")} == {quiet["id"]}
    assert all(i["lost_contact"] for i in search(admin, LOST))
    assert [len(p) for p in walk(admin, 2, LOST)] == [2, 1]
    assert {i["id"] for i in search(admin, lost_contact="true")} == lost


def test_lost_contact_follows_the_callers_scope(api: Api) -> None:
    mine = api.as_("manager.li").post(CUSTOMERS, json=person(phone=None)).json()
    theirs = (
        api.as_("manager.zhou")
        .post(
            CUSTOMERS,
            json=person(id_number=resident_id(serial=504), phone=None, org_unit="/HQ/U01/B02"),
        )
        .json()
    )
    assert [i["id"] for i in search(api.as_("manager.li"), LOST)] == [mine["id"]]
    assert [i["id"] for i in search(api.as_("manager.zhou"), LOST)] == [theirs["id"]]
    assert [i["id"] for i in search(api.as_("head.sun"), LOST)] == [mine["id"]]
    assert search(api.as_("teller.wang"), LOST) == []


def test_clearing_the_phone_makes_a_customer_lost_contact_and_a_new_one_restores_it(
    api: Api,
) -> None:
    admin = api.as_("admin")
    customer_id = seed_many_named(api, "Zhang Phone", 505)
    url = f"{CUSTOMERS}/{customer_id}"
    assert customer_id not in {i["id"] for i in search(admin, LOST)}

    cleared = admin.patch(url, json={"phone": None, "version": 1})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["phone"] is None and cleared.json()["lost_contact"] is True
    assert [i["id"] for i in search(admin, LOST)] == [customer_id]
    assert [i["id"] for i in search(admin, lost_contact="true")] == [customer_id]
    assert admin.get(f"{url}/changes").json()[-1]["changes"] == {"phone": "changed"}

    bad = admin.patch(url, json={"phone": "010-12345678", "version": 2})
    assert bad.status_code == 422
    assert admin.get(url).json()["lost_contact"] is True

    restored = admin.patch(url, json={"phone": "186 0000 1234", "version": 2})
    assert restored.status_code == 200, restored.text
    assert restored.json()["phone"] == "186****1234" and restored.json()["lost_contact"] is False
    assert search(admin, LOST) == []
