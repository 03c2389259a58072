"""Who may see and change which customers: endpoint by endpoint, role by role (``access.py``).

The read-only tables run against one seeded world per module; tests that change ownership or
move customers get a fresh database each.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmkit import devauth
from crmkit.consumer import RawRecord
from crmkit.events import EventSpec, build_envelope
from services.assignment.events import (
    OWNERSHIP_ASSIGNED,
    OWNERSHIP_RELEASED,
    OWNERSHIP_TRANSFERRED,
)
from services.customer.app import create_app
from services.customer.models import Reveal
from tests.conftest import TEST_BACKEND, Databases
from tests.customer import conftest as customer_conftest
from tests.customer.conftest import Api, _As, credit_code, firm, person, resident_id

CUSTOMERS = "/api/v1/customers"
CLIENT = "client:customer.financials"
STAFF = [
    "admin",
    "president.zhao",
    "head.sun",
    "manager.li",
    "manager.zhou",
    "teller.wang",
    "approver.qian",
    "auditor.chen",
]
CALLERS = [*STAFF, CLIENT]


def caller(api: Api, user: str) -> _As:
    """A seeded staff member, or a client token with the scope after ``client:``."""
    if user.startswith("client:"):
        return api.as_client(user.removeprefix("client:"))
    return api.as_(user)


def staff(api: Api, subject: str, roles: list[str], org_unit: str) -> _As:
    """A staff member who is not seeded (a wealth manager, an ops clerk, odd org units)."""
    token = devauth.sign(
        {"sub": subject, "name": subject, "roles": roles, "org_unit": org_unit}, api.private_pem
    )
    return _As(api.client, {"Authorization": f"Bearer {token}"})


def create(who: _As, body: dict[str, Any]) -> str:
    resp = who.post(CUSTOMERS, json=body)
    assert resp.status_code == 201, resp.text
    customer_id: str = resp.json()["id"]
    return customer_id


def listed(who: _As, path: str = CUSTOMERS, **params: Any) -> list[str]:
    resp = who.get(path, params={"limit": 500, **params})
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


def assert_problem(resp: Any, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == status


def reveal_rows(api: Api, customer_id: str) -> list[Reveal]:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        return list(
            session.scalars(
                select(Reveal).where(Reveal.customer_id == customer_id).order_by(Reveal.id)
            ).all()
        )


def reveal_count(api: Api) -> int:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        return int(session.execute(select(func.count()).select_from(Reveal)).scalar_one())


# -- the seeded world ---------------------------------------------------------------------------

# label: (creator, body). Every person has a resident id and a mobile number of their own.
SEED: dict[str, tuple[str, dict[str, Any]]] = {
    "li_person": (
        "manager.li",
        person(
            name="Li Person",
            id_number=resident_id(serial=101),
            phone="139 0000 0101",
            org_unit="/HQ/U01/B01",
        ),
    ),
    "li_firm": (
        "manager.li",
        firm(
            name="Li Firm Co., Ltd.",
            credit_code=credit_code("91350100M000101Y4"),
            org_unit="/HQ/U01/B01",
            contacts=[{"role": "decision_maker", "name": "Boss Wu", "phone": "137 0000 1111"}],
        ),
    ),
    "zhou_person": (
        "manager.zhou",
        person(
            name="Zhou Person",
            id_number=resident_id(serial=102),
            phone="139 0000 0102",
            org_unit="/HQ/U01/B02",
        ),
    ),
    "zhao_b01": (
        "president.zhao",
        person(
            name="Zhao In B01",
            id_number=resident_id(serial=103),
            phone="139 0000 0103",
            org_unit="/HQ/U01/B01",
        ),
    ),
    "zhao_b02": (
        "president.zhao",
        person(
            name="Zhao In B02",
            id_number=resident_id(serial=104),
            phone="139 0000 0104",
            org_unit="/HQ/U01/B02",
        ),
    ),
    "zhao_unit": (
        "president.zhao",
        person(
            name="Zhao In U01",
            id_number=resident_id(serial=105),
            phone="139 0000 0105",
            org_unit="/HQ/U01",
        ),
    ),
    "other_branch": (
        "admin",
        person(
            name="Other Branch",
            id_number=resident_id(serial=106),
            phone="139 0000 0106",
            org_unit="/HQ/U02/B01",
        ),
    ),
}
LABELS = list(SEED)
U01 = set(LABELS) - {"other_branch"}
B01 = {"li_person", "li_firm", "zhao_b01"}
LOST_CONTACT = {"li_firm"}  # the firm has no mobile of its own

# What each caller may read (list, get, changes, relationships, financials) and change.
VISIBLE: dict[str, set[str]] = {
    "admin": set(LABELS),
    "auditor.chen": set(LABELS),
    "president.zhao": U01,
    "approver.qian": U01,
    "head.sun": B01,
    "manager.li": {"li_person", "li_firm"},  # entered by them, nobody assigned yet
    "manager.zhou": {"zhou_person"},
    "teller.wang": set(),
    CLIENT: set(),
}
WRITABLE: dict[str, set[str]] = {
    "admin": set(LABELS),
    "president.zhao": U01,
    "head.sun": B01,
    "manager.li": {"li_person", "li_firm"},
    "manager.zhou": {"zhou_person"},
    "auditor.chen": set(),
    "approver.qian": set(),
    "teller.wang": set(),
    CLIENT: set(),
}
REVEALERS = {
    "admin",
    "president.zhao",
    "head.sun",
    "manager.li",
    "manager.zhou",
    "approver.qian",
    "auditor.chen",
}


@dataclass
class World:
    api: Api
    ids: dict[str, str]

    def clear_values(self) -> list[str]:
        """Every personal value entered in clear, in the forms it was typed and normalised."""
        out: list[str] = []
        for _, body in SEED.values():
            for name in ("id_number", "phone"):
                if body.get(name):
                    out += [body[name], body[name].replace(" ", "")]
            for contact in body.get("contacts", []):
                out += [contact["phone"], contact["phone"].replace(" ", "")]
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, dev_keys: tuple[str, Path]) -> Iterator[World]:
    dbs = Databases(TEST_BACKEND, tmp_path_factory.mktemp("access"))
    try:
        settings = customer_conftest.test_settings(dbs, dev_keys[1])
        with TestClient(create_app(settings)) as client:
            api = Api(client, {}, dev_keys[0])
            ids = {label: create(api.as_(user), body) for label, (user, body) in SEED.items()}
            yield World(api, ids)
    finally:
        dbs.drop_all()


# -- POST /customers ----------------------------------------------------------------------------

CREATE_TABLE = [
    ("manager.li", "/HQ/U01/B01", 201),
    ("manager.li", "/HQ/U01/B01/S1", 201),
    ("manager.li", "/HQ/U01/B02", 403),
    ("manager.li", "/HQ/U01", 403),
    ("manager.li", "/HQ/U01/B01X", 403),  # a sibling whose name starts alike is not a child
    ("manager.zhou", "/HQ/U01/B02", 201),
    ("manager.zhou", "/HQ/U01/B01", 403),
    ("head.sun", "/HQ/U01/B01", 201),
    ("head.sun", "/HQ/U01/B02", 403),
    ("president.zhao", "/HQ/U01", 201),
    ("president.zhao", "/HQ/U01/B01", 201),
    ("president.zhao", "/HQ/U01/B02", 201),
    ("president.zhao", "/HQ/U02/B01", 403),
    ("president.zhao", "/HQ", 403),
    ("teller.wang", "/HQ/U01/B01", 403),
    ("approver.qian", "/HQ/U01/B01", 403),
    ("auditor.chen", "/HQ/U01/B01", 403),
    ("admin", "/HQ/U02/B01", 201),
    (CLIENT, "/HQ/U01/B01", 403),
]


@pytest.mark.parametrize(("user", "org_unit", "expected"), CREATE_TABLE)
def test_create_is_allowed_in_the_callers_subtree_only(
    api: Api, user: str, org_unit: str, expected: int
) -> None:
    resp = caller(api, user).post(CUSTOMERS, json=person(org_unit=org_unit))
    if expected == 201:
        assert resp.status_code == 201, resp.text
        assert resp.json()["org_unit"] == org_unit
        assert listed(api.as_("admin")) == [resp.json()["id"]]
    else:
        assert_problem(resp, expected)
        assert listed(api.as_("admin")) == []


# -- reading: GET by id and what hangs off a customer -------------------------------------------

READ_PATHS = ["", "/changes", "/relationships", "/financials"]


@pytest.mark.parametrize("suffix", READ_PATHS, ids=lambda s: s or "record")
@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("user", CALLERS)
def test_reads_follow_the_read_scope(world: World, user: str, label: str, suffix: str) -> None:
    resp = caller(world.api, user).get(f"{CUSTOMERS}/{world.ids[label]}{suffix}")
    if label in VISIBLE[user]:
        assert resp.status_code == 200, resp.text
        if not suffix:
            assert resp.json()["id"] == world.ids[label]
    else:
        # Not "forbidden": whether a customer outside the scope exists is not disclosed.
        assert_problem(resp, 404)
        unknown = caller(world.api, user).get(f"{CUSTOMERS}/{_unknown_id()}{suffix}")
        assert_problem(unknown, 404)
        assert resp.json()["type"] == unknown.json()["type"] == "urn:crm:problem:not-found"


def _unknown_id() -> str:
    return "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize("user", CALLERS)
def test_lists_show_each_caller_only_their_scope(world: World, user: str) -> None:
    who = caller(world.api, user)
    expected = {world.ids[label] for label in VISIBLE[user]}
    ids = listed(who)
    assert len(ids) == len(expected)
    assert set(ids) == expected
    lost = listed(who, f"{CUSTOMERS}/lost-contact")
    assert set(lost) == {world.ids[label] for label in VISIBLE[user] & LOST_CONTACT}


def test_a_manager_sees_their_book_not_their_outlet(world: World) -> None:
    """manager.li works in B01 like head.sun, but the president's B01 customer is not theirs."""
    li = world.api.as_("manager.li")
    assert_problem(li.get(f"{CUSTOMERS}/{world.ids['zhao_b01']}"), 404)
    assert world.api.as_("head.sun").get(f"{CUSTOMERS}/{world.ids['zhao_b01']}").status_code == 200
    assert world.ids["zhao_b01"] not in listed(li, org_unit="/HQ/U01/B01")


# -- PATCH --------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("user", CALLERS)
def test_updates_follow_the_write_scope(world: World, user: str, label: str) -> None:
    url = f"{CUSTOMERS}/{world.ids[label]}"
    version = world.api.as_("admin").get(url).json()["version"]
    archive = f"A-{user}-{label}"
    resp = caller(world.api, user).patch(url, json={"archive_number": archive, "version": version})
    after = world.api.as_("admin").get(url).json()
    if label in WRITABLE[user]:
        assert resp.status_code == 200, resp.text
        assert after["archive_number"] == archive and after["version"] == version + 1
        return
    # Read-only roles are told they may not change it; callers who cannot read it learn nothing.
    assert_problem(resp, 403 if label in VISIBLE[user] else 404)
    assert after["version"] == version and after["archive_number"] != archive


MOVE_TABLE = [
    ("manager.li", "/HQ/U01/B02", 403),
    ("head.sun", "/HQ/U01/B02", 403),
    ("head.sun", "/HQ/U01/B01/S1", 200),
    ("president.zhao", "/HQ/U01/B02", 200),
    ("president.zhao", "/HQ/U02/B01", 403),
    ("admin", "/HQ/U02/B01", 200),
]


@pytest.mark.parametrize(("user", "target", "expected"), MOVE_TABLE)
def test_a_customer_moves_only_within_the_callers_subtree(
    api: Api, user: str, target: str, expected: int
) -> None:
    customer_id = create(api.as_("manager.li"), person())
    url = f"{CUSTOMERS}/{customer_id}"
    resp = api.as_(user).patch(url, json={"org_unit": target, "version": 1})
    after = api.as_("admin").get(url).json()
    if expected == 200:
        assert resp.status_code == 200, resp.text
        assert after["org_unit"] == target
    else:
        assert_problem(resp, expected)
        assert after["org_unit"] == "/HQ/U01/B01" and after["version"] == 1


def test_a_moved_customer_leaves_the_old_outlet_but_stays_in_its_creators_book(api: Api) -> None:
    customer_id = create(api.as_("manager.li"), person())
    url = f"{CUSTOMERS}/{customer_id}"
    moved = api.as_("president.zhao").patch(url, json={"org_unit": "/HQ/U01/B02", "version": 1})
    assert moved.status_code == 200, moved.text
    assert_problem(api.as_("head.sun").get(url), 404)
    assert api.as_("manager.li").get(url).status_code == 200  # unassigned: still theirs
    assert_problem(api.as_("manager.zhou").get(url), 404)  # the outlet is not a book


# -- reveal -------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["li_person", "zhou_person", "other_branch"])
@pytest.mark.parametrize("user", CALLERS)
def test_reveal_is_role_bound_scoped_and_audited(world: World, user: str, label: str) -> None:
    customer_id = world.ids[label]
    before = reveal_rows(world.api, customer_id)
    reason = f"KYC refresh by {user}"
    resp = caller(world.api, user).post(
        f"{CUSTOMERS}/{customer_id}/reveal",
        json={"fields": ["phone", "id_number"], "reason": reason},
    )
    after = reveal_rows(world.api, customer_id)
    if user not in REVEALERS:
        assert_problem(resp, 403)
        assert len(after) == len(before)
        return
    if label not in VISIBLE[user]:
        assert_problem(resp, 404)
        assert len(after) == len(before)
        return
    assert resp.status_code == 200, resp.text
    body = SEED[label][1]
    assert resp.json()["customer_id"] == customer_id
    assert resp.json()["values"] == {
        "id_number": body["id_number"],
        "phone": body["phone"].replace(" ", ""),
    }
    assert len(after) == len(before) + 1
    audit = after[-1]
    assert audit.id == resp.json()["audit_id"]
    assert audit.actor == user
    assert audit.fields == ["id_number", "phone"]
    assert audit.reason == reason
    assert set(audit.roles) == set(devauth.seeded_users()[user].roles)


def test_reveal_of_contact_phones_is_audited_and_masked_elsewhere(world: World) -> None:
    customer_id = world.ids["li_firm"]
    url = f"{CUSTOMERS}/{customer_id}"
    masked = world.api.as_("manager.li").get(url).json()["contacts"]
    assert [c["phone"] for c in masked] == ["137****1111"]
    resp = world.api.as_("head.sun").post(
        f"{url}/reveal", json={"fields": ["contact_phones"], "reason": "call the decision maker"}
    )
    assert resp.status_code == 200, resp.text
    values = resp.json()["values"]["contact_phones"]
    assert [(v["name"], v["phone"]) for v in values] == [("Boss Wu", "13700001111")]
    audit = reveal_rows(world.api, customer_id)[-1]
    assert (audit.actor, audit.fields) == ("head.sun", ["contact_phones"])


def test_a_reveal_needs_a_reason(world: World) -> None:
    resp = world.api.as_("manager.li").post(
        f"{CUSTOMERS}/{world.ids['li_person']}/reveal", json={"fields": ["phone"], "reason": ""}
    )
    assert_problem(resp, 422)


def test_personal_data_is_masked_in_every_response(world: World) -> None:
    """Clear id numbers and phones appear in reveal responses only."""
    clear = world.clear_values()
    for user in STAFF:
        who = world.api.as_(user)
        texts = [
            who.get(CUSTOMERS, params={"limit": 500}).text,
            who.get(f"{CUSTOMERS}/lost-contact").text,
        ]
        for label in VISIBLE[user]:
            url = f"{CUSTOMERS}/{world.ids[label]}"
            texts += [who.get(url).text, who.get(f"{url}/changes").text]
        for text in texts:
            for value in clear:
                assert value not in text, f"{value} in clear in a response to {user}"
    teller = world.api.as_("teller.wang")
    number = resident_id(serial=101)
    found = teller.post(f"{CUSTOMERS}/lookup", json={"id_number": number})
    assert found.status_code == 200
    assert found.json()["id_number"] == number[:6] + "********" + number[-4:]
    assert found.json()["phone"] == "139****0101"
    for value in clear:
        assert value not in found.text


def test_a_phone_change_is_logged_without_its_value(api: Api) -> None:
    manager = api.as_("manager.li")
    customer_id = create(manager, person())
    url = f"{CUSTOMERS}/{customer_id}"
    changed = manager.patch(url, json={"phone": "+86 186 0000 9999", "version": 1})
    assert changed.status_code == 200, changed.text
    assert changed.json()["phone"] == "186****9999"
    changes = manager.get(f"{url}/changes")
    assert changes.json()[-1]["changes"] == {"phone": "changed"}
    for text in (changed.text, changes.text, manager.get(url).text, manager.get(CUSTOMERS).text):
        assert "18600009999" not in text and "13812345678" not in text


# -- identity lookup ----------------------------------------------------------------------------

LOOKUP_TABLE = [
    # A teller serves any customer at the counter: the lookup spans the bank.
    ("teller.wang", "li_person", 200),
    ("teller.wang", "zhou_person", 200),
    ("teller.wang", "other_branch", 200),
    ("teller.wang", "li_firm", 200),
    ("admin", "other_branch", 200),
    # Everybody else stays in their read scope.
    ("manager.li", "li_person", 200),
    ("manager.li", "li_firm", 200),
    ("manager.li", "zhou_person", 404),
    ("manager.li", "zhao_b01", 404),
    ("manager.zhou", "li_person", 404),
    ("head.sun", "zhao_b01", 200),
    ("head.sun", "zhou_person", 404),
    ("president.zhao", "zhou_person", 200),
    ("president.zhao", "other_branch", 404),
    ("approver.qian", "other_branch", 404),
    ("auditor.chen", "other_branch", 200),
    (CLIENT, "li_person", 403),
]


@pytest.mark.parametrize(("user", "label", "expected"), LOOKUP_TABLE)
def test_lookup_by_identity_is_scoped_and_audited(
    world: World, user: str, label: str, expected: int
) -> None:
    body = SEED[label][1]
    query = {"credit_code": body["credit_code"]} if "credit_code" in body else {}
    query = query or {"id_number": body["id_number"]}
    customer_id = world.ids[label]
    before = reveal_rows(world.api, customer_id)
    resp = caller(world.api, user).post(f"{CUSTOMERS}/lookup", json=query)
    after = reveal_rows(world.api, customer_id)
    if expected != 200:
        assert_problem(resp, expected)
        return
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == customer_id
    assert len(after) == len(before) + 1
    audit = after[-1]
    assert audit.actor == user.removeprefix("client:")
    assert audit.fields == []
    assert audit.reason == "lookup by identity"


def test_lookup_needs_a_valid_identity(world: World) -> None:
    teller = world.api.as_("teller.wang")
    count = reveal_count(world.api)
    assert_problem(teller.post(f"{CUSTOMERS}/lookup", json={}), 422)
    bad = resident_id(serial=101)[:-1] + ("0" if resident_id(serial=101)[-1] != "0" else "1")
    assert_problem(teller.post(f"{CUSTOMERS}/lookup", json={"id_number": bad}), 422)
    unknown = teller.post(f"{CUSTOMERS}/lookup", json={"id_number": resident_id(serial=999)})
    assert_problem(unknown, 404)
    assert reveal_count(world.api) == count


def test_a_teller_finds_by_identity_but_not_by_id(world: World) -> None:
    teller = world.api.as_("teller.wang")
    customer_id = world.ids["other_branch"]
    assert_problem(teller.get(f"{CUSTOMERS}/{customer_id}"), 404)
    found = teller.post(f"{CUSTOMERS}/lookup", json={"id_number": resident_id(serial=106)})
    assert found.status_code == 200 and found.json()["id"] == customer_id
    assert listed(teller) == []


# -- financials ---------------------------------------------------------------------------------

FINANCIALS_WRITERS = [
    ("admin", 200),
    ("ops-only", 200),
    (CLIENT, 200),
    ("client:customer.read", 403),
    ("manager.li", 403),
    ("head.sun", 403),
    ("president.zhao", 403),
    ("approver.qian", 403),
    ("auditor.chen", 403),
    ("teller.wang", 403),
]


@pytest.mark.parametrize(("user", "expected"), FINANCIALS_WRITERS)
def test_only_core_banking_and_operations_record_financials(
    world: World, user: str, expected: int
) -> None:
    who = (
        staff(world.api, "ops.he", ["ops"], "/HQ")
        if user == "ops-only"
        else caller(world.api, user)
    )
    url = f"{CUSTOMERS}/{world.ids['li_person']}/financials"
    day = f"2026-10-{FINANCIALS_WRITERS.index((user, expected)) + 1:02d}"
    resp = who.put(url, json={"business_date": day, "deposits": "12345.67"})
    history = world.api.as_("admin").get(url, params={"since": day, "until": day}).json()
    if expected == 200:
        assert resp.status_code == 200, resp.text
        assert resp.json()["snapshot"]["business_date"] == day
        assert [s["deposits"] for s in history["items"]] == ["12345.67"]
    else:
        assert_problem(resp, expected)
        assert history["total"] == 0


# -- relationships ------------------------------------------------------------------------------


def test_relationships_hide_the_name_of_a_customer_outside_the_scope(api: Api) -> None:
    ours = create(api.as_("manager.li"), person())
    theirs = create(
        api.as_("manager.zhou"),
        firm(org_unit="/HQ/U01/B02", name="Zhou Group Holdings"),
    )
    link = {"to_customer_id": theirs, "type": "payroll_employer"}
    # manager.li cannot link to a customer they cannot read (and learns nothing about it).
    assert_problem(api.as_("manager.li").post(f"{CUSTOMERS}/{ours}/relationships", json=link), 404)
    made = api.as_("president.zhao").post(f"{CUSTOMERS}/{ours}/relationships", json=link)
    assert made.status_code == 201, made.text
    for user in ("manager.li", "head.sun"):
        rows = api.as_(user).get(f"{CUSTOMERS}/{ours}/relationships").json()
        assert [(r["other_customer_id"], r["other_name"]) for r in rows] == [
            (theirs, "(outside your scope)")
        ]
    rows = api.as_("president.zhao").get(f"{CUSTOMERS}/{ours}/relationships").json()
    assert [(r["direction"], r["other_name"]) for r in rows] == [
        ("outgoing", "Zhou Group Holdings")
    ]
    incoming = api.as_("manager.zhou").get(f"{CUSTOMERS}/{theirs}/relationships").json()
    assert [(r["direction"], r["other_name"]) for r in incoming] == [
        ("incoming", "(outside your scope)")
    ]
    assert_problem(api.as_("manager.zhou").get(f"{CUSTOMERS}/{ours}/relationships"), 404)


# -- org subtrees are paths ---------------------------------------------------------------------


def test_a_subtree_is_a_path_prefix_not_a_pattern(api: Api) -> None:
    """Org-unit paths may hold ``_`` (the schema allows it); it must not match any character."""
    customer_id = create(api.as_("admin"), person(org_unit="/HQ/U01/B01"))
    odd = staff(api, "president.odd", ["branch_president"], "/HQ/U0_")
    assert listed(odd) == []
    assert_problem(odd.get(f"{CUSTOMERS}/{customer_id}"), 404)


# -- the ownership read model (assignment events) -----------------------------------------------

_offsets = itertools.count()


def ownership_event(spec: EventSpec, data: dict[str, Any]) -> RawRecord:
    payload = {"effective_at": datetime.now(UTC).isoformat(), **data}
    envelope = build_envelope(
        spec, payload, source="assignment", key=data["customer_id"], actor="head.sun"
    )
    return RawRecord("crm.assignment", 0, next(_offsets), envelope.to_bytes())


def apply(api: Api, *records: RawRecord) -> None:
    api.client.app.state.runtime.applier.apply_batch(list(records))  # type: ignore[attr-defined]


def assigned(customer_id: str, staff_id: str, role: str = "owner") -> RawRecord:
    return ownership_event(
        OWNERSHIP_ASSIGNED,
        {"customer_id": customer_id, "staff_id": staff_id, "role": role, "org_unit": "/HQ/U01"},
    )


def transferred(customer_id: str, from_staff: str, to_staff: str) -> RawRecord:
    return ownership_event(
        OWNERSHIP_TRANSFERRED,
        {
            "customer_id": customer_id,
            "from_staff_id": from_staff,
            "to_staff_id": to_staff,
            "org_unit": "/HQ/U01",
            "reason": "handover",
        },
    )


def released(customer_id: str, staff_id: str, role: str = "owner") -> RawRecord:
    return ownership_event(
        OWNERSHIP_RELEASED, {"customer_id": customer_id, "staff_id": staff_id, "role": role}
    )


def sees(who: _As, customer_id: str) -> bool:
    """Whether the caller reads the customer, asserting the list agrees with GET by id."""
    status: int = who.get(f"{CUSTOMERS}/{customer_id}").status_code
    assert status in {200, 404}
    assert (customer_id in listed(who)) == (status == 200)
    return status == 200


def owners(api: Api, customer_id: str) -> set[str]:
    items = api.as_("admin").get(CUSTOMERS, params={"limit": 500}).json()["items"]
    return next(set(item["owners"]) for item in items if item["id"] == customer_id)


def test_assignment_moves_a_customer_between_books(api: Api) -> None:
    li, zhou = api.as_("manager.li"), api.as_("manager.zhou")
    customer_id = create(li, person())
    assert sees(li, customer_id) and not sees(zhou, customer_id)
    assert listed(api.as_("admin"), owner="manager.zhou") == []

    first = assigned(customer_id, "manager.zhou")
    apply(api, first)
    assert sees(zhou, customer_id)
    assert not sees(li, customer_id)  # assigned: the creator's claim ends
    assert sees(api.as_("head.sun"), customer_id)  # the outlet keeps its subtree
    assert owners(api, customer_id) == {"manager.zhou"}
    assert listed(api.as_("admin"), owner="manager.zhou") == [customer_id]
    assert listed(zhou, owner="manager.zhou") == [customer_id]
    assert listed(li, owner="manager.zhou") == []
    url = f"{CUSTOMERS}/{customer_id}"
    assert zhou.patch(url, json={"archive_number": "Z-1", "version": 1}).status_code == 200
    assert_problem(li.patch(url, json={"archive_number": "L-1", "version": 2}), 404)
    reveal = {"fields": ["phone"], "reason": "call about the loan"}
    assert zhou.post(f"{url}/reveal", json=reveal).status_code == 200
    assert_problem(li.post(f"{url}/reveal", json=reveal), 404)
    assert zhou.post(f"{CUSTOMERS}/lookup", json={"id_number": resident_id()}).status_code == 200
    assert_problem(li.post(f"{CUSTOMERS}/lookup", json={"id_number": resident_id()}), 404)

    apply(api, transferred(customer_id, "manager.zhou", "manager.li"))
    assert sees(li, customer_id) and not sees(zhou, customer_id)
    assert owners(api, customer_id) == {"manager.li"}
    assert listed(api.as_("admin"), owner="manager.zhou") == []
    assert listed(api.as_("admin"), owner="manager.li") == [customer_id]

    apply(api, first)  # redelivered: the inbox knows it, the transfer stands
    assert sees(li, customer_id) and not sees(zhou, customer_id)
    assert owners(api, customer_id) == {"manager.li"}


def test_a_new_owner_replaces_the_previous_one(api: Api) -> None:
    customer_id = create(api.as_("manager.li"), person())
    apply(api, assigned(customer_id, "manager.zhou"))
    apply(api, assigned(customer_id, "manager.li"))
    assert owners(api, customer_id) == {"manager.li"}
    assert sees(api.as_("manager.li"), customer_id)
    assert not sees(api.as_("manager.zhou"), customer_id)


def test_team_members_see_the_customer_beside_its_owner(api: Api) -> None:
    wu = staff(api, "wm.wu", ["wealth_manager"], "/HQ/U01/B01")
    zhou, li = api.as_("manager.zhou"), api.as_("manager.li")
    customer_id = create(li, person())
    apply(api, assigned(customer_id, "manager.zhou"), assigned(customer_id, "wm.wu", "team_member"))
    assert sees(zhou, customer_id) and sees(wu, customer_id) and not sees(li, customer_id)
    assert owners(api, customer_id) == {"manager.zhou", "wm.wu"}
    assert listed(api.as_("admin"), owner="wm.wu") == [customer_id]

    apply(api, released(customer_id, "wm.wu", "team_member"))
    assert not sees(wu, customer_id) and sees(zhou, customer_id)
    assert owners(api, customer_id) == {"manager.zhou"}

    apply(api, assigned(customer_id, "wm.wu", "team_member"))
    apply(api, transferred(customer_id, "manager.zhou", "wm.wu"))  # the team member takes over
    assert sees(wu, customer_id) and not sees(zhou, customer_id)
    assert owners(api, customer_id) == {"wm.wu"}
    apply(api, assigned(customer_id, "manager.zhou", "team_member"))
    items = api.as_("admin").get(CUSTOMERS, params={"limit": 500}).json()["items"]
    row = next(item for item in items if item["id"] == customer_id)
    assert row["owners"] == ["wm.wu", "manager.zhou"]  # the owner first, then the team


def test_a_released_owner_loses_the_customer_and_the_subtree_keeps_it(api: Api) -> None:
    customer_id = create(api.as_("president.zhao"), person())
    apply(api, assigned(customer_id, "manager.zhou"))
    assert sees(api.as_("manager.zhou"), customer_id)
    apply(api, released(customer_id, "manager.zhou"))
    assert owners(api, customer_id) == set()
    assert not sees(api.as_("manager.zhou"), customer_id)
    assert sees(api.as_("head.sun"), customer_id)
    assert sees(api.as_("president.zhao"), customer_id)
    assert listed(api.as_("admin"), owner="manager.zhou") == []


def test_the_creator_does_not_regain_a_customer_once_it_was_assigned(api: Api) -> None:
    """access.py: "A record nobody has been assigned *yet* stays with the staff member who
    entered it." Once assigned, the record is no longer one nobody has been assigned yet: when
    its owner is released it waits in the outlet (head.sun) for a new owner, it does not fall
    back into the book of whoever typed it in."""
    li = api.as_("manager.li")
    handed_over = create(li, person())
    apply(api, assigned(handed_over, "manager.zhou"))
    apply(api, released(handed_over, "manager.zhou"))
    taken_back = create(li, person(id_number=resident_id(serial=458), name="Second"))
    apply(api, assigned(taken_back, "manager.li"))
    apply(api, released(taken_back, "manager.li"))
    assert owners(api, handed_over) == owners(api, taken_back) == set()
    assert sees(api.as_("head.sun"), handed_over) and sees(api.as_("head.sun"), taken_back)
    assert not sees(li, handed_over)
    assert not sees(li, taken_back)
