"""Leads tellers identify in the visits service (``lead.identified``) become target-list
entries: collected in the outlet's area for the line, distributed to the manager they were
referred to, linked to the register entry, once, in the consumer's transaction."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmkit.consumer import RawRecord
from crmkit.crypto import generate_key
from crmkit.events import build_envelope
from crmkit.settings import KafkaSettings
from services.assignment import leads
from services.assignment.app import create_app as create_assignment
from services.assignment.handlers_visits import entry_of, source_tag
from services.assignment.models_leads import Lead, LeadStageChange
from services.visits.app import create_app as create_visits
from services.visits.events import LEAD_IDENTIFIED
from tests.assignment.conftest import STAFF, UNITS, assignment_settings
from tests.assignment.test_leads import area
from tests.assignment.test_ownership import events
from tests.assignment.test_rules import staff
from tests.conftest import Databases
from tests.customer.conftest import Api, resident_id
from tests.integration.conftest import wait_until
from tests.visits.conftest import visits_settings

DEAD_LETTERS = "/api/v1/admin/assignment/dead-letters"
_offsets = itertools.count()


def identified(**fields: Any) -> dict[str, Any]:
    """A ``lead.identified`` payload as the visits service sends it."""
    return {
        "lead_id": str(uuid.uuid4()),
        "org_unit": "/HQ/U01/B01",
        "identified_on": "2026-11-30",
        "identified_at": "2026-11-30T02:15:00+00:00",
        "teller_id": "teller.wang",
        "customer_id": None,
        "name": "Wang Qiang",
        "id_number_masked": "110101********4578",
        "kind": "individual",
        "business_line": "personal",
        "reasons": ["funds", "other_bank"],
        "preliminary_value": "high",
        "potential_vip": True,
        "current_bank": "Another Bank",
        "referred_to": "manager.li",
        "referred_role": "customer_manager",
        **fields,
    }


def record_of(data: dict[str, Any]) -> RawRecord:
    envelope = build_envelope(
        LEAD_IDENTIFIED, data, source="visits", key=data["lead_id"], actor=data["teller_id"]
    )
    return RawRecord("crm.visits", 0, next(_offsets), envelope.to_bytes())


def deliver(api: Api, record: RawRecord) -> None:
    api.client.app.state.runtime.applier.apply_batch([record])  # type: ignore[attr-defined]


def entries(api: Api) -> list[Lead]:
    with api.client.app.state.runtime.session_factory() as session:  # type: ignore[attr-defined]
        return list(session.scalars(select(Lead).order_by(Lead.created_at)))


@pytest.fixture
def outlets(org: Api) -> dict[str, str]:
    """B01 has an urban and a rural area; B02 none (its union has one); union 02 none at all."""
    return {
        "urban_b01": area(org, "head.sun", "Old town 老城区", "urban", "/HQ/U01/B01")["id"],
        "rural_b01": area(org, "head.sun", "Hexi village 河西村", "rural", "/HQ/U01/B01")["id"],
        "union_u01": area(org, "admin", "County seat", "urban", "/HQ/U01")["id"],
    }


def test_a_referred_lead_becomes_an_entry_of_its_manager(api: Api, outlets: dict[str, str]) -> None:
    data = identified()
    deliver(api, record_of(data))
    [entry] = entries(api)
    assert (entry.name, entry.kind, entry.area_id) == (
        "Wang Qiang",
        "individual",
        outlets["urban_b01"],
    )
    assert (entry.org_unit, entry.business_line, entry.current_bank) == (
        "/HQ/U01/B01",
        "personal",
        "Another Bank",
    )
    assert (entry.stage, entry.marketer_id, entry.distribution_basis) == (
        "distributed",
        "manager.li",
        "named",
    )
    assert (entry.created_by, entry.distributed_by, entry.info_status) == (
        "teller.wang",
        "teller.wang",
        "partial",
    )
    assert (entry.source, entry.source_ref) == ("teller", data["lead_id"])
    assert entry.notes is not None and entry.notes.startswith(source_tag(data["lead_id"]))
    assert "funds, other_bank" in entry.notes and "potential VIP" in entry.notes
    assert "110101********4578" in entry.notes and entry.contact is None
    [distributed] = events(api, "lead.distributed")
    assert (distributed["lead_id"], distributed["marketer_id"], distributed["basis"]) == (
        entry.id,
        "manager.li",
        "named",
    )
    assert [e["to_stage"] for e in events(api, "lead.stage_changed")] == ["distributed"]

    # Read through the target-list API as any entry: the manager sees it as theirs.
    mine = api.as_("manager.li").get("/api/v1/target-lists").json()["items"]
    assert [x["id"] for x in mine] == [entry.id]


def test_the_lead_id_links_the_entry_once(api: Api, outlets: dict[str, str]) -> None:
    data = identified()
    record = record_of(data)
    deliver(api, record)
    deliver(api, record)  # redelivered: the inbox drops it
    deliver(api, record_of(data))  # the same lead in another event: the entry exists
    assert len(entries(api)) == 1
    with api.client.app.state.runtime.session_factory() as session:  # type: ignore[attr-defined]
        found = entry_of(session, data["lead_id"])
        assert found is not None and found.id == entries(api)[0].id
        assert entry_of(session, str(uuid.uuid4())) is None
    assert len(events(api, "lead.distributed")) == 1


@pytest.mark.parametrize(
    ("fields", "area_key"),
    [
        ({"business_line": "personal"}, "urban_b01"),
        ({"kind": "farm_household", "business_line": "agricultural"}, "rural_b01"),
        ({"kind": "corporate", "business_line": "corporate"}, "urban_b01"),
        # A line none of B01's areas routes a corporate lead to: the first area by name.
        ({"kind": "corporate", "business_line": "personal"}, "rural_b01"),
        # B02 has no area: the union's.
        ({"org_unit": "/HQ/U01/B02", "referred_to": None, "referred_role": None}, "union_u01"),
    ],
)
def test_the_area_follows_the_outlet_and_the_line(
    api: Api, outlets: dict[str, str], fields: dict[str, Any], area_key: str
) -> None:
    deliver(api, record_of(identified(**fields)))
    [entry] = entries(api)
    assert entry.area_id == outlets[area_key]
    assert entry.business_line == leads.line_for(entry.area_kind, entry.kind)


def test_a_referral_nobody_can_take_stays_collected(api: Api, outlets: dict[str, str]) -> None:
    staff(api, "gone.li", ["customer_manager"], "/HQ/U01/B01")
    version = api.as_("admin").get("/api/v1/staff/gone.li").json()["version"]
    resp = api.as_("admin").patch(
        "/api/v1/staff/gone.li", json={"status": "leaving"}, headers={"If-Match": f'"{version}"'}
    )
    assert resp.status_code == 200, resp.text
    deliver(api, record_of(identified(referred_to="nobody.here")))
    deliver(api, record_of(identified(referred_to="gone.li", name="Li Na")))
    deliver(api, record_of(identified(referred_to=None, referred_role=None, name="Zhao Lei")))
    by_name = {e.name: e for e in entries(api)}
    assert {e.stage for e in by_name.values()} == {"collected"}
    assert {e.marketer_id for e in by_name.values()} == {None}
    assert "nobody.here, who is not active staff" in (by_name["Wang Qiang"].notes or "")
    assert "gone.li, who is not active staff" in (by_name["Li Na"].notes or "")
    assert "referred" not in (by_name["Zhao Lei"].notes or "")
    assert events(api, "lead.distributed") == []


def test_an_outlet_without_any_area_dead_letters_the_lead_for_a_replay(org: Api) -> None:
    applier = org.client.app.state.runtime.applier  # type: ignore[attr-defined]
    data = identified(org_unit="/HQ/U02/B01", referred_to=None, referred_role=None)
    applier.apply_with_retries(record_of(data), max_attempts=1, backoff_s=0)
    assert entries(org) == []
    dead = org.as_("admin").get(f"{DEAD_LETTERS}").json()["items"]
    assert [d["event_type"] for d in dead] == ["lead.identified"]
    assert "no service area is contracted to /HQ/U02/B01" in dead[0]["reason"]
    # Once an area is contracted, the replay makes the entry.
    union = area(org, "admin", "U02 town", "urban", "/HQ/U02")["id"]
    replay = org.as_("admin").post(f"{DEAD_LETTERS}/{dead[0]['id']}/replay")
    assert replay.status_code == 200, replay.text
    assert replay.json()["applied"] is True
    [entry] = entries(org)
    assert (entry.area_id, entry.org_unit, entry.stage) == (union, "/HQ/U02", "collected")


def test_the_entry_and_its_distribution_commit_with_the_event(
    api: Api, outlets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the entry was made leaves neither the entry nor the inbox entry: the
    event is applied again, whole."""

    def broken(*args: Any, **kwargs: Any) -> Lead:
        raise RuntimeError("the distribution failed")

    monkeypatch.setattr(leads, "distribute", broken)
    record = record_of(identified())
    with pytest.raises(RuntimeError):
        deliver(api, record)
    assert entries(api) == []
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(LeadStageChange)) == 0
        inbox = runtime.tables.inbox
        assert session.scalar(select(func.count()).select_from(inbox)) == 0
    monkeypatch.undo()
    deliver(api, record)
    [entry] = entries(api)
    assert entry.marketer_id == "manager.li"


def test_a_teller_lead_reaches_the_target_list_over_the_broker(
    databases: Databases,
    dev_keys: tuple[str, Path],
    kafka_settings: KafkaSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The teller flags a walk-in in the visits service; the assignment service, reading the
    visits topic, gives the manager it was referred to a target-list entry."""
    monkeypatch.setenv("CRM_VISITS_FIELD_ENCRYPTION_KEYS", f"t1:{generate_key()}")
    monkeypatch.setenv("CRM_VISITS_FIELD_ACTIVE_KEY_ID", "t1")
    monkeypatch.setenv("CRM_VISITS_FIELD_INDEX_KEY", generate_key())
    settings = assignment_settings(databases, dev_keys[1])
    settings.kafka, settings.embedded_workers = kafka_settings, True
    visits = visits_settings(databases, dev_keys[1])
    visits.kafka, visits.embedded_workers = kafka_settings, True
    with (
        TestClient(create_assignment(settings)) as a,
        TestClient(create_visits(visits)) as v,
    ):
        assignment, register = Api(a, {}, dev_keys[0]), Api(v, {}, dev_keys[0])
        admin = assignment.as_("admin")
        for path, name, kind in UNITS:
            unit_body = {"path": path, "name": name, "type": kind}
            assert admin.post("/api/v1/org-units", json=unit_body).status_code == 201
        for staff_id, roles, unit, _ in STAFF:
            member: dict[str, Any] = {"id": staff_id, "name": staff_id, "roles": roles}
            assert admin.post("/api/v1/staff", json={**member, "org_unit": unit}).status_code == 201
        area_id = area(assignment, "head.sun", "Old town", "urban", "/HQ/U01/B01")["id"]

        national_id = resident_id("19850612", 123, "110101")
        walk_in = {
            "name": "Wang Qiang",
            "national_id": national_id,
            "phone": "13812345678",
            "reasons": ["funds"],
            "preliminary_value": "high",
            "referred_to": "manager.li",
        }
        resp = register.as_("teller.wang").post("/api/v1/leads", json=walk_in)
        assert resp.status_code == 201, resp.text
        tag = source_tag(resp.json()["id"])

        def entry() -> list[dict[str, Any]]:
            listed = assignment.as_("manager.li").get("/api/v1/target-lists").json()["items"]
            return [x for x in listed if (x["notes"] or "").startswith(tag)]

        wait_until(lambda: bool(entry()), 30, "the assignment service to apply lead.identified")
        [made] = entry()
        assert (made["area_id"], made["stage"], made["marketer_id"]) == (
            area_id,
            "distributed",
            "manager.li",
        )
        assert "110101********" in made["notes"] and national_id not in made["notes"]
        assert "13812345678" not in str(made)
