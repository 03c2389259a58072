"""Group membership 集团客户: ``group_member`` links announced as ``customer.group_changed``."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from crmkit.auth import Caller
from crmkit.errors import Conflict
from crmkit.events import validate_payload
from services.customer.app import create_app
from services.customer.schemas import CustomerCreate, RelationshipIn, RelationshipType
from services.customer.service import add_relationship, create_customer
from tests.conftest import Databases
from tests.customer.conftest import Api, credit_code, firm, person, resident_id, test_settings

CUSTOMERS = "/api/v1/customers"
GROUP_CHANGED = "customer.group_changed"


def create(api: Api, body: dict[str, Any]) -> str:
    resp = api.as_("head.sun").post(CUSTOMERS, json=body)
    assert resp.status_code == 201, resp.text
    created: str = resp.json()["id"]
    return created


def firm_id(api: Api, serial: int, name: str) -> str:
    """A corporate customer with its own credit code (``serial``: three digits)."""
    return create(api, firm(name=name, credit_code=credit_code(f"91350100M000{serial}Y4")))


def link(
    api: Api, member: str, parent: str, kind: str = "group_member", who: str = "head.sun"
) -> Any:
    return api.as_(who).post(
        f"{CUSTOMERS}/{member}/relationships", json={"to_customer_id": parent, "type": kind}
    )


def linked(api: Api, member: str, parent: str, kind: str = "group_member") -> int:
    """Link ``member`` to ``parent``; the id of the new link."""
    resp = link(api, member, parent, kind)
    assert resp.status_code == 201, resp.text
    (made,) = [
        r
        for r in resp.json()
        if (r["other_customer_id"], r["direction"], r["type"]) == (parent, "outgoing", kind)
    ]
    return int(made["id"])


def unlink(api: Api, member: str, relationship_id: int, who: str = "head.sun") -> Any:
    return api.as_(who).request("DELETE", f"{CUSTOMERS}/{member}/relationships/{relationship_id}")


def recorded(api: Api, event_type: str = GROUP_CHANGED) -> list[dict[str, Any]]:
    """The payloads of ``event_type`` in the outbox, oldest first (each keyed by its customer)."""
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    outbox = runtime.tables.outbox
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.key, outbox.c.envelope)
            .where(outbox.c.event_type == event_type)
            .order_by(outbox.c.seq)
        ).all()
    found = []
    for key, envelope in rows:
        data = json.loads(envelope)["data"]
        assert key == data["customer_id"]  # keyed by the member
        found.append(data)
    return found


def test_joining_and_leaving_a_group_is_announced(api: Api) -> None:
    parent = firm_id(api, 100, "Minjiang Holdings 闽江集团")
    member = firm_id(api, 200, "Minjiang Logistics 闽江物流")
    link_id = linked(api, member, parent)
    assert recorded(api) == [{"customer_id": member, "group_id": parent, "previous_group_id": None}]
    for payload in recorded(api):
        validate_payload(GROUP_CHANGED, 1, payload)

    # Only the member's side ends it; another's link id is no link of this customer.
    assert unlink(api, parent, link_id).status_code == 404
    assert unlink(api, member, 999_999).status_code == 404
    assert unlink(api, member, link_id, who="manager.zhou").status_code == 404  # out of scope
    assert len(recorded(api)) == 1
    resp = unlink(api, member, link_id)
    assert resp.status_code == 200, resp.text
    assert resp.json() == []
    assert recorded(api)[1:] == [
        {"customer_id": member, "group_id": None, "previous_group_id": parent}
    ]
    changes = api.as_("head.sun").get(f"{CUSTOMERS}/{member}/changes").json()
    assert [c["action"] for c in changes][-2:] == ["relationship_added", "relationship_removed"]

    # It may join again (another group's parent too): a new event each time.
    other = firm_id(api, 300, "Fuzhou Textile Group 福纺集团")
    linked(api, member, other)
    assert recorded(api)[-1] == {
        "customer_id": member,
        "group_id": other,
        "previous_group_id": None,
    }


def test_other_relationships_announce_nothing(api: Api) -> None:
    employer = firm_id(api, 100, "Minjiang Holdings 闽江集团")
    supplier = firm_id(api, 200, "Minjiang Logistics 闽江物流")
    employee = create(api, person())
    payroll = linked(api, employee, employer, "payroll_employer")
    linked(api, supplier, employer, "upstream")
    linked(api, supplier, employer, "related_party")
    assert unlink(api, employee, payroll).status_code == 200
    assert recorded(api) == []


def test_a_customer_belongs_to_one_group_of_one_level(api: Api) -> None:
    parent = firm_id(api, 100, "Minjiang Holdings 闽江集团")
    member = firm_id(api, 200, "Minjiang Logistics 闽江物流")
    other = firm_id(api, 300, "Fuzhou Textile Group 福纺集团")
    linked(api, member, parent)
    # A second group: 409 naming the group it is in.
    resp = link(api, member, other)
    assert resp.status_code == 409, resp.text
    assert resp.json()["group_id"] == parent
    # The same link again is a conflict too.
    assert link(api, member, parent).status_code == 409
    # A member is no group's parent, and a parent joins no group.
    resp = link(api, other, member)
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == "to_customer_id"
    resp = link(api, parent, other)
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == "type"
    assert len(recorded(api)) == 1


def merge_pair(api: Api, name: str, serial: int) -> tuple[str, str]:
    """A survivor and a duplicate record of one person (the duplicate without an identity)."""
    survivor = create(api, person(name=name, id_number=resident_id(serial=serial), phone=None))
    duplicate = create(
        api,
        person(
            name=name,
            segment="target",
            id_number=None,
            phone=f"139000{serial:05d}",
            data_source="lobby referral",
            lawful_basis="consent",
        ),
    )
    return survivor, duplicate


def merge(api: Api, survivor: str, duplicate: str) -> None:
    version = api.as_("head.sun").get(f"{CUSTOMERS}/{survivor}").json()["version"]
    resp = api.as_("head.sun").post(
        f"{CUSTOMERS}/{survivor}/merge", json={"duplicate_id": duplicate, "version": version}
    )
    assert resp.status_code == 200, resp.text


def test_a_merge_announces_the_groups_it_changes(api: Api) -> None:
    group = firm_id(api, 100, "Minjiang Holdings 闽江集团")
    # A duplicate that is a member: the survivor joins its group, the duplicate leaves it.
    survivor, duplicate = merge_pair(api, "Li Ming", 201)
    linked(api, duplicate, group)
    before = len(recorded(api))
    merge(api, survivor, duplicate)
    assert sorted(recorded(api)[before:], key=lambda e: str(e["customer_id"])) == sorted(
        [
            {"customer_id": survivor, "group_id": group, "previous_group_id": None},
            {"customer_id": duplicate, "group_id": None, "previous_group_id": group},
        ],
        key=lambda e: str(e["customer_id"]),
    )
    # A duplicate that is a group's parent: its members move to the survivor's group.
    survivor, duplicate = merge_pair(api, "Wang Fang", 301)
    member = create(api, person(name="Li Hua", id_number=resident_id(serial=302)))
    linked(api, member, duplicate)
    before = len(recorded(api))
    merge(api, survivor, duplicate)
    assert recorded(api)[before:] == [
        {"customer_id": member, "group_id": survivor, "previous_group_id": duplicate}
    ]


HEAD = Caller("head.sun", "Sun Li", frozenset({"outlet_head"}), "/HQ/U01/B01")


@pytest.mark.postgres
def test_of_concurrent_groups_for_one_member_one_is_taken(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(test_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        runtime = app.state.runtime
        ctx = app.state.customer_context
        with runtime.session_factory() as session:
            member = create_customer(session, ctx, CustomerCreate(**firm()), HEAD).id
            parents = [
                create_customer(
                    session,
                    ctx,
                    CustomerCreate(
                        **firm(name=f"Group {n}", credit_code=credit_code(f"91350100M000{n}Y4"))
                    ),
                    HEAD,
                ).id
                for n in (301, 302, 303, 304)
            ]
        barrier = threading.Barrier(len(parents))
        outcomes: list[str] = []

        def join(parent: str) -> None:
            with runtime.session_factory() as session:
                cmd = RelationshipIn(to_customer_id=parent, type=RelationshipType.group_member)
                barrier.wait()
                try:
                    add_relationship(session, member, cmd, HEAD)
                    outcomes.append("joined")
                except Conflict:
                    outcomes.append("conflict")

        threads = [threading.Thread(target=join, args=(p,)) for p in parents]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["conflict"] * 3 + ["joined"]
        api = Api(client, {}, dev_keys[0])
        (link,) = api.as_("head.sun").get(f"{CUSTOMERS}/{member}/relationships").json()
        assert link["other_customer_id"] in parents
        # One event, for the group taken.
        assert recorded(api) == [
            {
                "customer_id": member,
                "group_id": link["other_customer_id"],
                "previous_group_id": None,
            }
        ]
