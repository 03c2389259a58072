"""Upgrades do not migrate customers by force 升级不强制迁移: a tier rise raises a proposal, the
customer's choice is recorded, and the income stays attributed to the first developer."""

from __future__ import annotations

import itertools
from typing import Any

from crmkit.consumer import RawRecord
from crmkit.events import Envelope, build_envelope
from services.assignment import upgrades
from services.customer.events import CUSTOMER_TIER_CHANGED
from tests.assignment import test_rules
from tests.assignment.test_claims import claim, owner
from tests.assignment.test_ownership import assign, events, problem
from tests.assignment.test_rules import customer
from tests.customer.conftest import Api

PROPOSALS = "/api/v1/upgrade-proposals"
_offsets = itertools.count(5000)
bank = test_rules.bank  # the fixture: the test org with every kind of holder the rules name


def tier_event(customer_id: str, *changes: tuple[str, str | None, str | None], **after: Any) -> Any:
    """A ``customer.tier_changed`` envelope: ``changes`` as (dimension, old, new), ``after`` the
    tiers after it (those not given are none)."""
    data = {
        "customer_id": customer_id,
        "policy_version": "2026-01-01",
        "as_of": "2026-11-27",
        "changes": [
            {"dimension": d, "old": old, "new": new, "reason": "aum"} for d, old, new in changes
        ],
        "value_tier": after.get("value_tier"),
        "wealth_layer": after.get("wealth_layer"),
        "vip_level": after.get("vip_level"),
    }
    return build_envelope(
        CUSTOMER_TIER_CHANGED, data, source="customer", key=customer_id, actor="x"
    )


def deliver(api: Api, *envelopes: Envelope) -> None:
    records = [RawRecord("crm.customer", 7, next(_offsets), e.to_bytes()) for e in envelopes]
    api.client.app.state.runtime.applier.apply_batch(records)  # type: ignore[attr-defined]


def proposals(api: Api, who: str = "admin", **params: Any) -> list[dict[str, Any]]:
    resp = api.as_(who).get(PROPOSALS, params=params)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def choose(api: Api, who: str, proposal_id: str, choice: str, **extra: Any) -> Any:
    return api.as_(who).post(f"{PROPOSALS}/{proposal_id}/choice", json={"choice": choice, **extra})


def attributed(api: Api, customer_id: str, who: str = "admin") -> Any:
    return api.as_(who).get(f"{PROPOSALS}/attributions/{customer_id}")


def claimed_customer(api: Api, who: str = "manager.li", **tiers: Any) -> str:
    customer_id = customer(api, **tiers)
    assert claim(api, who, customer_id).status_code == 201
    return customer_id


def test_a_rise_raises_one_proposal(bank: Api) -> None:
    customer_id = claimed_customer(bank, value_tier="general")
    rise = tier_event(customer_id, ("value_tier", "general", "high"), value_tier="high")
    deliver(bank, rise)
    (proposal,) = proposals(bank)
    assert (proposal["customer_id"], proposal["from_staff_id"], proposal["status"]) == (
        customer_id,
        "manager.li",
        "open",
    )
    assert proposal["changes"] == [
        {"dimension": "value_tier", "old": "general", "new": "high", "reason": "aum"}
    ]
    # The assignment rules suggest the head of the business unit for a high-tier customer.
    assert (proposal["suggested_rule"], proposal["suggested_staff_id"]) == ("high_tier", "head.sun")
    assert proposal["suggested_roles"] == ["outlet_head", "branch_president"]
    assert proposal["org_unit"] == "/HQ/U01/B01" and proposal["rule_policy_version"] == "2026-01-01"
    assert proposal["choice"] is None and proposal["decided_at"] is None
    # Nothing moved by force.
    assert owner(bank, customer_id) == "manager.li"
    assert events(bank, "ownership.transferred") == []
    # Redelivered, or a further rise while one is open (in the same batch too): still one.
    layer = ("wealth_layer", None, "layer_2")
    deliver(bank, rise, tier_event(customer_id, layer, value_tier="high", wealth_layer="layer_2"))
    deliver(bank, tier_event(customer_id, ("vip_level", None, "gold"), value_tier="high"))
    assert [p["id"] for p in proposals(bank)] == [proposal["id"]]
    got = bank.as_("head.sun").get(f"{PROPOSALS}/{proposal['id']}")
    assert got.status_code == 200 and got.json() == proposal
    # The attribution was kept when the proposal was raised: the claimant developed it.
    body = attributed(bank, customer_id).json()
    assert (body["staff_id"], body["reason"], body["org_unit"]) == (
        "manager.li",
        "claimed",
        "/HQ/U01/B01",
    )


def test_rises_by_each_dimension_and_order() -> None:
    assert upgrades.is_rise("value_tier", "general", "middle")
    assert upgrades.is_rise("wealth_layer", "layer_3", "layer_1")
    assert upgrades.is_rise("vip_level", None, "gold")
    assert upgrades.is_rise("vip_level", "platinum", "diamond")
    assert not upgrades.is_rise("value_tier", "high", "middle")
    assert not upgrades.is_rise("wealth_layer", "layer_1", "layer_4")
    assert not upgrades.is_rise("vip_level", "gold", None)
    assert not upgrades.is_rise("vip_level", "gold", "gold")
    assert not upgrades.is_rise("potential_vip", None, "gold")


def test_a_fall_or_a_customer_without_owner_raises_none(bank: Api) -> None:
    falling = claimed_customer(bank, value_tier="high")
    unowned = customer(bank, value_tier="general")
    deliver(
        bank,
        tier_event(falling, ("value_tier", "high", "middle"), value_tier="middle"),
        tier_event(falling, ("vip_level", "gold", None), value_tier="middle"),
        tier_event(falling, ("potential_vip", None, "gold"), value_tier="middle"),
        tier_event(unowned, ("value_tier", "general", "high"), value_tier="high"),
    )
    assert proposals(bank) == []
    # A VIP level from none is a rise for an owned customer (a VIP never goes to a teller).
    deliver(
        bank,
        tier_event(falling, ("vip_level", None, "gold"), value_tier="middle", vip_level="gold"),
    )
    (proposal,) = proposals(bank)
    assert proposal["customer_id"] == falling and proposal["suggested_rule"] == "middle_deposit"
    assert "teller" not in proposal["suggested_roles"]


def test_the_customer_stays_with_their_manager(bank: Api) -> None:
    customer_id = claimed_customer(bank, wealth_layer="layer_3")
    deliver(
        bank,
        tier_event(customer_id, ("wealth_layer", "layer_3", "layer_2"), wealth_layer="layer_2"),
    )
    (proposal,) = proposals(bank)
    assert (proposal["suggested_rule"], proposal["suggested_staff_id"]) == (
        "wealth_layer_2",
        "wealth.ma",
    )
    resp = choose(bank, "head.sun", proposal["id"], "stay", note="the customer trusts Li")
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert (done["status"], done["choice"], done["decided_by"], done["note"]) == (
        "stayed",
        "stay",
        "head.sun",
        "the customer trusts Li",
    )
    assert done["to_staff_id"] is None and done["decided_at"] is not None
    assert owner(bank, customer_id) == "manager.li"
    assert events(bank, "ownership.transferred") == []
    err = problem(choose(bank, "head.sun", proposal["id"], "move", to_staff_id="wealth.ma"), 409)
    assert err["proposal_status"] == "stayed"
    assert owner(bank, customer_id) == "manager.li"
    # Closed, a later rise may raise a new proposal.
    deliver(
        bank,
        tier_event(
            customer_id, ("vip_level", None, "gold"), wealth_layer="layer_2", vip_level="gold"
        ),
    )
    assert [p["status"] for p in proposals(bank, customer_id=customer_id)] == ["stayed", "open"]
    assert [p["status"] for p in proposals(bank, status="open")] == ["open"]


def test_a_move_transfers_and_the_attribution_stays_with_the_first_developer(bank: Api) -> None:
    customer_id = claimed_customer(bank, value_tier="middle")  # manager.li developed it
    # Maintained by someone else since (a transfer by the head).
    transfer = {"mode": "transfer", "from_staff_id": "manager.li", "reason": "transfer"}
    resp = assign(bank, "head.sun", customer_id, "personal.yu", **transfer)
    assert resp.status_code == 200, resp.text
    deliver(bank, tier_event(customer_id, ("value_tier", "middle", "high"), value_tier="high"))
    (proposal,) = proposals(bank)
    assert (proposal["from_staff_id"], proposal["suggested_staff_id"]) == (
        "personal.yu",
        "head.sun",
    )
    resp = choose(bank, "president.zhao", proposal["id"], "move", note="wants the outlet head")
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert (done["status"], done["choice"], done["to_staff_id"]) == ("moved", "move", "head.sun")
    assert owner(bank, customer_id) == "head.sun"
    moved = [e for e in events(bank, "ownership.transferred") if e["reason"] == "customer_choice"]
    assert [(e["customer_id"], e["from_staff_id"], e["to_staff_id"]) for e in moved] == [
        (customer_id, "personal.yu", "head.sun")
    ]
    history = bank.as_("admin").get(f"/api/v1/customers/{customer_id}/owner-history").json()
    assert [(s["staff_id"], s["reason"]) for s in history] == [
        ("manager.li", "claimed"),
        ("personal.yu", "transfer"),
        ("head.sun", "customer_choice"),
    ]
    # The income stays attributed to the employee who first developed the customer.
    for reader in ("admin", "head.sun", "manager.li", "auditor.chen"):
        resp = attributed(bank, customer_id, reader)
        assert resp.status_code == 200, (reader, resp.text)
        assert (resp.json()["staff_id"], resp.json()["reason"]) == ("manager.li", "claimed")
    problem(choose(bank, "admin", proposal["id"], "stay"), 409)


def test_a_move_to_a_named_maintainer_and_refused_moves(bank: Api) -> None:
    customer_id = claimed_customer(bank, value_tier="general")
    deliver(bank, tier_event(customer_id, ("value_tier", "general", "high"), value_tier="high"))
    (proposal,) = proposals(bank)
    pid = proposal["id"]
    # Not a head of the subtree, or a receiver outside the head's subtree: refused.
    problem(choose(bank, "manager.li", pid, "stay"), 403)
    problem(choose(bank, "head.sun", pid, "move", to_staff_id="manager.far"), 403)
    problem(choose(bank, "head.sun", pid, "move", to_staff_id="manager.li"), 422)  # the owner
    problem(choose(bank, "head.sun", pid, "move", to_staff_id="nobody.here"), 422)
    problem(choose(bank, "head.sun", pid, "maybe"), 422)
    # Nothing of the refused choices was kept.
    again = bank.as_("admin").get(f"{PROPOSALS}/{pid}").json()
    assert (again["status"], again["choice"], again["decided_by"]) == ("open", None, None)
    assert owner(bank, customer_id) == "manager.li"
    resp = choose(bank, "head.sun", pid, "move", to_staff_id="wealth.ma")
    assert resp.status_code == 200, resp.text
    assert owner(bank, customer_id) == "wealth.ma"
    assert attributed(bank, customer_id, "manager.li").json()["staff_id"] == "manager.li"


def test_a_move_without_a_suggestion_names_the_maintainer(bank: Api) -> None:
    # Union 02 has no head for a high-tier customer: the rules suggest nobody.
    customer_id = customer(bank, org_unit="/HQ/U02/B01", value_tier="general")
    assert assign(bank, "admin", customer_id, "manager.far", reason="marketed").status_code == 200
    deliver(bank, tier_event(customer_id, ("value_tier", "general", "high"), value_tier="high"))
    (proposal,) = proposals(bank)
    assert (proposal["suggested_rule"], proposal["suggested_staff_id"]) == ("high_tier", None)
    err = problem(choose(bank, "admin", proposal["id"], "move"), 422)
    assert err["errors"][0]["field"] == "to_staff_id"
    assert proposals(bank)[0]["status"] == "open"
    assert attributed(bank, customer_id).json()["reason"] == "marketed"


def test_who_reads_proposals_and_attributions(bank: Api) -> None:
    near = claimed_customer(bank, value_tier="general")
    far = customer(bank, org_unit="/HQ/U02/B01", value_tier="general")
    assert assign(bank, "admin", far, "manager.far").status_code == 200
    deliver(
        bank,
        tier_event(near, ("value_tier", "general", "high"), value_tier="high"),
        tier_event(far, ("value_tier", "general", "middle"), value_tier="middle"),
    )
    everything = proposals(bank)
    assert [p["customer_id"] for p in everything] == [near, far]
    near_id = everything[0]["id"]
    far_id = everything[1]["id"]
    page = bank.as_("admin").get(PROPOSALS, params={"limit": 1, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 1)
    assert [p["id"] for p in page["items"]] == [far_id]
    # Heads read their subtree, the owner their own, others nothing.
    assert [p["id"] for p in proposals(bank, "head.sun")] == [near_id]
    assert [p["id"] for p in proposals(bank, "president.zhao")] == [near_id]
    assert [p["id"] for p in proposals(bank, "manager.li")] == [near_id]
    assert proposals(bank, "manager.zhou") == []
    assert bank.as_("manager.li").get(f"{PROPOSALS}/{near_id}").status_code == 200
    problem(bank.as_("manager.zhou").get(f"{PROPOSALS}/{near_id}"), 404)
    problem(bank.as_("head.sun").get(f"{PROPOSALS}/{far_id}"), 404)
    problem(choose(bank, "head.sun", far_id, "stay"), 404)
    problem(bank.as_("admin").get(f"{PROPOSALS}/no-such-proposal"), 404)
    # Attributions: administrators, heads and auditors of the subtree, the owner.
    assert attributed(bank, far, "auditor.chen").json()["staff_id"] == "manager.far"
    problem(attributed(bank, far, "head.sun"), 404)
    problem(attributed(bank, near, "manager.zhou"), 404)
    problem(attributed(bank, "00000000-0000-0000-0000-000000000000"), 404)
    never_owned = customer(bank)
    err = problem(attributed(bank, never_owned), 404)
    assert "never had an owner" in err["detail"]
    problem(bank.as_("manager.li").get(PROPOSALS, params={"status": "pending"}), 422)


def test_the_attribution_is_derived_from_the_first_development_and_kept(bank: Api) -> None:
    customer_id = customer(bank)
    assert assign(bank, "admin", customer_id, "teller.wang", reason="rule").status_code == 200
    # Placed by a rule only: the first owner is shown, not kept, as nobody developed it yet.
    shown = attributed(bank, customer_id).json()
    assert (shown["staff_id"], shown["reason"]) == ("teller.wang", "rule")
    marketed = {"mode": "transfer", "from_staff_id": "teller.wang", "reason": "marketed"}
    assert assign(bank, "admin", customer_id, "manager.zhou", **marketed).status_code == 200
    first = attributed(bank, customer_id).json()
    assert (first["staff_id"], first["reason"]) == ("manager.zhou", "marketed")
    # Kept once: later owners, even a claimant, never change it.
    claimed = {"mode": "transfer", "from_staff_id": "manager.zhou", "reason": "claimed"}
    assert assign(bank, "admin", customer_id, "manager.li", **claimed).status_code == 200
    assert attributed(bank, customer_id).json() == first
    assert attributed(bank, customer_id, "manager.zhou").json() == first  # the developer reads it
