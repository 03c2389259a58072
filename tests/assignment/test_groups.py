"""Group customers 集团客户: the groups kept from ``customer.group_changed``, the ``group`` team
case with one accountable leader for the whole group, and the group rule of the assignment
rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit import devauth
from crmkit.auth import Caller
from crmkit.outbox import EventRecorder
from services.assignment import api as assignment_api
from services.assignment import teams
from services.assignment.app import create_app
from services.assignment.models import CustomerProfile
from services.assignment.models_teams import TeamMember
from services.assignment.schemas_teams import GroupLeaderIn
from services.customer.events import CUSTOMER_GROUP_CHANGED
from tests.assignment.conftest import STAFF, UNITS, assignment_settings, race
from tests.assignment.test_ownership import assign, events, problem
from tests.assignment.test_rules import _record, customer, placed, plan, staff
from tests.conftest import Databases
from tests.customer.conftest import Api

TEAMS = "/api/v1/teams"
VIOLATIONS = f"{TEAMS}/violations"
# The first day of the policies that know groups (teams and rules 2026-12-01), and a day before.
GROUPS_IN_FORCE = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
BEFORE_GROUPS = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def enter_org(api: Api) -> None:
    """The org tree and staff of the ``org`` fixture, on any database."""
    for path, name, kind in UNITS:
        body = {"path": path, "name": name, "type": kind}
        assert api.as_("admin").post("/api/v1/org-units", json=body).status_code == 201
    for staff_id, roles, unit, capacity in STAFF:
        extra = {} if capacity is None else {"capacity": capacity}
        staff(api, staff_id, roles, unit, **extra)


@pytest.fixture
def bank(org: Api) -> Api:
    """The test org with leaders, managers and the union's president."""
    add_leaders(org)
    return org


def add_leaders(org: Api) -> None:
    """Leaders of the union and the head office, and a manager of regular grade with a token."""
    staff(org, "president.zhao", ["branch_president"], "/HQ/U01")
    staff(org, "leader.he", ["head_office_leader"], "/HQ")
    staff(org, "personal.yu", ["customer_manager"], "/HQ/U01/B01", grade="regular")
    claims = {"sub": "personal.yu", "name": "personal.yu", "roles": ["customer_manager"]}
    org.tokens["personal.yu"] = devauth.sign({**claims, "org_unit": "/HQ/U01/B01"}, org.private_pem)


def on_day(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    """Teams and assignment runs read the policies in force at ``when``."""
    monkeypatch.setattr(teams, "utcnow", lambda: when)
    monkeypatch.setattr(assignment_api, "business_today", lambda: when.date())


@pytest.fixture
def groups_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    on_day(monkeypatch, GROUPS_IN_FORCE)


def group_changed(api: Api, member: str, group_id: str | None, previous: str | None = None) -> None:
    """A ``customer.group_changed`` through the service's own consumer path."""
    data = {"customer_id": member, "group_id": group_id, "previous_group_id": previous}
    record = _record(CUSTOMER_GROUP_CHANGED, data, member)
    api.client.app.state.runtime.applier.apply_batch([record])  # type: ignore[attr-defined]


def owned(api: Api, owner: str = "personal.yu", **kwargs: Any) -> str:
    customer_id = customer(api, **kwargs)
    resp = assign(api, "admin", customer_id, owner)
    assert resp.status_code == 200, resp.text
    return customer_id


def group(api: Api, members: int = 1, **kwargs: Any) -> tuple[str, list[str]]:
    """A group's parent and its ``members``, each owned by personal.yu."""
    parent = owned(api, kind="corporate", line="corporate")
    ids = [owned(api, kind="corporate", line="corporate", **kwargs) for _ in range(members)]
    for member in ids:
        group_changed(api, member, parent)
    return parent, ids


def group_of(api: Api, customer_id: str) -> str | None:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        profile = session.get(CustomerProfile, customer_id)
        return profile.group_id if profile is not None else None


def put_team(api: Api, who: str, customer_id: str, *members: tuple[str, str]) -> Any:
    body = {"members": [{"staff_id": s, "role": r} for s, r in members]}
    return api.as_(who).put(f"{TEAMS}/{customer_id}", json=body)


def listed(api: Api, who: str = "admin", **params: Any) -> dict[str, dict[str, Any]]:
    resp = api.as_(who).get(VIOLATIONS, params=params)
    assert resp.status_code == 200, resp.text
    return {v["customer_id"]: v for v in resp.json()["items"]}


def team(api: Api, customer_id: str) -> dict[str, Any]:
    resp = api.as_("admin").get(f"{TEAMS}/{customer_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def leader_of(api: Api, customer_id: str) -> str | None:
    seats = team(api, customer_id)["members"]
    return next((m["staff_id"] for m in seats if m["role"] == "accountable_leader"), None)


def set_group_leader(api: Api, who: str, group_id: str, staff_id: str) -> Any:
    return api.as_(who).post(f"{TEAMS}/groups/{group_id}/leader", json={"staff_id": staff_id})


FIRST = ("personal.yu", "first_responsible")


# -- the groups kept ----------------------------------------------------------------------------
def test_group_changes_are_kept_in_the_profile_and_cleared(
    bank: Api, groups_in_force: None
) -> None:
    parent = customer(bank, kind="corporate", line="corporate")
    member = customer(bank, kind="corporate", line="corporate")  # a plain one: no profile yet
    group_changed(bank, member, parent)
    assert (group_of(bank, member), group_of(bank, parent)) == (parent, None)
    # The parent is a group customer by its member; both name the group.
    assert (team(bank, parent)["group_id"], team(bank, parent)["group_members"]) == (parent, 1)
    assert (team(bank, member)["group_id"], team(bank, member)["group_members"]) == (parent, 0)
    # Redelivered: the same state.
    group_changed(bank, member, parent)
    assert group_of(bank, member) == parent
    # It leaves: its group is cleared and the parent heads no group any more.
    group_changed(bank, member, None, parent)
    assert group_of(bank, member) is None
    assert (team(bank, parent)["group_id"], team(bank, parent)["group_members"]) == (None, 0)
    assert team(bank, member)["cases"] == []


def test_a_group_change_of_a_customer_not_known_yet_is_not_dropped(bank: Api) -> None:
    with pytest.raises(LookupError, match="not known"):
        group_changed(bank, str(uuid.uuid4()), str(uuid.uuid4()))


# -- the group case -----------------------------------------------------------------------------
def test_group_customers_need_an_accountable_leader(bank: Api, groups_in_force: None) -> None:
    parent, (member,) = group(bank)
    got = listed(bank)
    assert {c: (v["cases"], v["missing"]) for c, v in got.items()} == {
        parent: (["group"], ["accountable_leader"]),
        member: (["group"], ["accountable_leader", "same_group_leader"]),
    }
    assert (got[member]["group_id"], got[member]["group_leader"]) == (parent, None)
    assert set(listed(bank, case="group")) == {parent, member}
    # Beside the owner, a leader: no team of managers is required for the group case alone.
    err = problem(put_team(bank, "admin", parent, FIRST), 422)
    assert (err["cases"], err["detail"]) == (
        ["group"],
        "the team does not meet the team policy: accountable_leader",
    )
    problem(put_team(bank, "admin", parent, FIRST, ("personal.yu", "accountable_leader")), 422)
    not_a_leader = ("manager.zhou", "accountable_leader")
    problem(put_team(bank, "admin", parent, FIRST, not_a_leader), 422)
    resp = put_team(bank, "admin", parent, FIRST, ("president.zhao", "accountable_leader"))
    assert resp.status_code == 200, resp.text
    assert (resp.json()["missing"], resp.json()["group_leader"]) == ([], "president.zhao")
    assert parent not in listed(bank)
    # A member whose team names another leader than its group's is refused, naming the leader.
    err = problem(put_team(bank, "admin", member, FIRST, ("leader.he", "accountable_leader")), 422)
    assert err["group_leader"] == "president.zhao"
    assert err["errors"] == [
        {
            "field": "members",
            "reason": "every member of a group gets the accountable leader of its group's "
            "parent (group_leader)",
        }
    ]
    resp = put_team(bank, "admin", member, FIRST, ("president.zhao", "accountable_leader"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["compliant"] is True
    assert listed(bank) == {}


def test_a_case_of_managers_still_needs_its_team(bank: Api, groups_in_force: None) -> None:
    # A member with credit exposure needs a team of two managers as well as the leader.
    parent, (member,) = group(bank, loans="50000.00")
    got = listed(bank)
    assert (got[member]["cases"], got[parent]["cases"]) == (["credit_exposure", "group"], ["group"])
    assert got[member]["missing"] == ["team", "accountable_leader", "same_group_leader"]
    assert got[parent]["missing"] == ["accountable_leader"]  # no team of managers for a group
    leader = ("president.zhao", "accountable_leader")
    assert problem(put_team(bank, "admin", member, FIRST, leader), 422)["detail"].endswith(
        "managers"
    )
    resp = put_team(bank, "admin", member, FIRST, ("manager.li", "member"), leader)
    assert resp.status_code == 200, resp.text
    # The parent has no leader yet: the member's team is taken, the violation stays listed.
    assert listed(bank)[member]["missing"] == ["same_group_leader"]


def test_before_the_policy_of_groups_no_group_case_exists(
    bank: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_day(monkeypatch, BEFORE_GROUPS)  # team policy 2026-01-01
    parent, (member,) = group(bank)
    assert listed(bank) == {}
    assert (team(bank, member)["cases"], team(bank, member)["policy_version"]) == ([], "2026-01-01")
    # The group is known all the same.
    assert (team(bank, parent)["cases"], team(bank, parent)["group_members"]) == ([], 1)


def test_a_member_with_another_leader_is_listed_with_the_groups_leader(
    bank: Api, groups_in_force: None
) -> None:
    parent = owned(bank, kind="corporate", line="corporate")
    member = owned(bank, kind="corporate", line="corporate", vip_level="diamond")  # great value
    leader_he = ("leader.he", "accountable_leader")
    pair = (FIRST, ("manager.li", "member"))
    assert put_team(bank, "admin", member, *pair, leader_he).status_code == 200
    assert member not in listed(bank)
    group_changed(bank, member, parent)  # the member joins the group afterwards
    zhao = ("president.zhao", "accountable_leader")
    assert put_team(bank, "admin", parent, FIRST, zhao).status_code == 200
    violation = listed(bank)[member]
    assert (violation["cases"], violation["missing"]) == (
        ["great_value", "group"],
        ["same_group_leader"],
    )
    assert (violation["accountable_leader"], violation["group_id"]) == ("leader.he", parent)
    assert violation["group_leader"] == "president.zhao"
    assert parent not in listed(bank)
    # Seen by the heads of its subtree and by its owner.
    assert set(listed(bank, "head.sun")) == {member}
    assert set(listed(bank, "personal.yu")) == {member}
    # The group's leader leaves: the parent lacks a leader, the member no longer has the group's.
    left = {"status": "left", "version": 1}
    assert bank.as_("admin").patch("/api/v1/staff/president.zhao", json=left).status_code == 200
    got = listed(bank)
    assert got[parent]["missing"] == ["accountable_leader"]
    assert (got[member]["missing"], got[member]["group_leader"]) == (["same_group_leader"], None)


# -- one leader for the whole group -------------------------------------------------------------
def test_the_groups_leader_is_set_on_every_member_at_once(bank: Api, groups_in_force: None) -> None:
    parent, members = group(bank, members=2)
    far = owned(bank, owner="manager.zhou", org_unit="/HQ/U01/B02", kind="corporate")
    group_changed(bank, far, parent)
    # One member has another leader already; it is replaced.
    great = ("leader.he", "accountable_leader")
    assert put_team(bank, "admin", members[0], FIRST, great).status_code == 200
    before = len(events(bank, "ownership.assigned"))

    # Who may: administrators and heads whose subtree holds the whole group.
    err = problem(set_group_leader(bank, "manager.li", parent, "president.zhao"), 403)
    assert "/HQ/U01/B01" in err["detail"]
    err = problem(set_group_leader(bank, "head.sun", parent, "president.zhao"), 403)
    assert "/HQ/U01/B02" in err["detail"] and "/HQ/U01/B01" not in err["detail"]
    problem(set_group_leader(bank, "admin", members[1], "president.zhao"), 404)  # no group
    problem(set_group_leader(bank, "admin", str(uuid.uuid4()), "president.zhao"), 404)
    err = problem(set_group_leader(bank, "admin", parent, "manager.zhou"), 422)
    assert err["errors"][0]["field"] == "staff_id" and "not a leader" in err["detail"]
    problem(set_group_leader(bank, "admin", parent, "personal.yu"), 422)  # a manager, no leader
    left = {"status": "left", "version": 1}
    assert bank.as_("admin").patch("/api/v1/staff/leader.he", json=left).status_code == 200
    err = problem(set_group_leader(bank, "admin", parent, "leader.he"), 422)
    assert err["errors"] == [{"field": "staff_id", "reason": "staff leader.he is left"}]
    # A leader who owns a customer of the group cannot also be its leader.
    assert (
        bank.as_("admin")
        .post(
            "/api/v1/assignments",
            json={
                "customer_id": far,
                "mode": "transfer",
                "staff_id": "head.sun",
                "from_staff_id": "manager.zhou",
                "reason": "transfer",
            },
        )
        .status_code
        == 200
    )
    err = problem(set_group_leader(bank, "admin", parent, "head.sun"), 409)
    assert err["serving_otherwise"] == [far]
    assert len(events(bank, "ownership.assigned")) == before  # nothing announced

    resp = set_group_leader(bank, "president.zhao", parent, "president.zhao")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    group_ids = [parent, *sorted([*members, far])]
    assert (body["group_id"], body["staff_id"], body["customers"]) == (
        parent,
        "president.zhao",
        group_ids,
    )
    assert body["changed"] == group_ids
    assert body["released"] == [{"customer_id": members[0], "staff_id": "leader.he"}]
    for customer_id in group_ids:
        assert leader_of(bank, customer_id) == "president.zhao"
    assert all("same_group_leader" not in v["missing"] for v in listed(bank).values())
    # Announced as when a team is set: one assignment per customer, one release.
    added = [e for e in events(bank, "ownership.assigned") if e["role"] == "team_member"]
    assert sorted(
        (e["_key"], e["staff_id"], e["team_role"]) for e in added if e["staff_id"] != "leader.he"
    ) == sorted((c, "president.zhao", "accountable_leader") for c in group_ids)
    released = [e for e in events(bank, "ownership.released") if e["role"] == "team_member"]
    assert [(e["_key"], e["staff_id"], e["team_role"]) for e in released] == [
        (members[0], "leader.he", "accountable_leader")
    ]
    # The member's other seats stay; the same leader again changes and announces nothing.
    again = set_group_leader(bank, "admin", parent, "president.zhao")
    assert (again.status_code, again.json()["changed"], again.json()["released"]) == (200, [], [])
    assert len([e for e in events(bank, "ownership.assigned") if e["role"] == "team_member"]) == (
        len(added)
    )


# -- the assignment rules -----------------------------------------------------------------------
def test_a_group_customer_is_placed_with_a_head_office_or_union_leader(
    bank: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = customer(bank, kind="corporate", line="corporate")
    member = customer(bank, kind="corporate", line="corporate")
    plain = customer(bank, kind="corporate", line="corporate")
    group_changed(bank, member, parent)

    on_day(monkeypatch, BEFORE_GROUPS)  # rules 2026-01-01: groups are not a condition yet
    run = plan(bank, "president.zhao")
    assert run["policy_version"] == "2026-01-01"
    assert {placed(run)[c][0] for c in (parent, member, plain)} == {"general_deposit"}

    on_day(monkeypatch, GROUPS_IN_FORCE)
    run = plan(bank, "president.zhao")
    assert run["policy_version"] == "2026-12-01"
    got = placed(run)
    # The member and the parent go by the high-value and group rule to the union's president.
    assert got[member] == ("high_value", "president.zhao")
    assert got[parent] == ("high_value", "president.zhao")
    assert got[plain][0] == "general_deposit"
    # The member left: no longer a group customer.
    group_changed(bank, member, None, parent)
    got = placed(plan(bank, "president.zhao"))
    assert got[member][0] == got[parent][0] == "general_deposit"


ADMIN = Caller("admin", "Admin", frozenset({"admin"}), "/HQ")


def _leading(group_id: str, staff_id: str) -> Callable[[Session, EventRecorder], str]:
    def call(session: Session, recorder: EventRecorder) -> str:
        teams.set_group_leader(session, recorder, group_id, GroupLeaderIn(staff_id=staff_id), ADMIN)
        return "ok"

    return call


@pytest.mark.postgres
def test_concurrent_leaders_of_one_group_leave_it_one_leader(
    pg_databases: Databases, dev_keys: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    on_day(monkeypatch, GROUPS_IN_FORCE)
    app = create_app(assignment_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        runtime = app.state.runtime
        api = Api(client, {}, dev_keys[0])
        enter_org(api)
        add_leaders(api)
        parent, members = group(api, members=3)
        rivals = ["president.zhao", "leader.he", "head.sun"] * 2
        outcomes = race(runtime, [_leading(parent, s) for s in rivals])
        assert sum(outcomes.values()) == len(rivals)
        assert outcomes["ok"] >= 1
        with runtime.session_factory() as session:
            leaders = session.execute(
                select(TeamMember.customer_id, TeamMember.staff_id).where(
                    TeamMember.role == "accountable_leader"
                )
            ).all()
        # One leader per customer of the group, the same for all: the last to commit.
        assert sorted(c for c, _ in leaders) == sorted([parent, *members])
        assert len({s for _, s in leaders}) == 1
        # Each announcement matched: what was assigned and not released is what stands.
        added = [e for e in events(api, "ownership.assigned") if e["role"] == "team_member"]
        gone = [e for e in events(api, "ownership.released") if e["role"] == "team_member"]
        standing = {(e["customer_id"], e["staff_id"]) for e in added}
        assert len(added) - len(gone) == len(leaders)
        assert {tuple(row) for row in leaders} <= standing
