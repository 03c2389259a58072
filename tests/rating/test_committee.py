"""The credit committee 贷审会 over HTTP: opening the meeting, members' votes, quorum, the
two-thirds rule both ways and the chair's sign-off, with their events.

The rule in integers: "for" votes reach two thirds of the votes cast when for * 3 >= cast * 2."""

from __future__ import annotations

from typing import Any

from crmkit import devauth
from tests.customer.conftest import Api
from tests.rating.conftest import events_of
from tests.rating.test_approvals import (
    LIMITS,
    approve,
    contract_valid,
    ok,
    problem,
    proposed_limit,
    review,
    steps_of,
)

MEMBERS = ["committee.wu", "committee.zheng", "committee.feng"]
CHAIR = "committee.wu"


def member_token(api: Api, staff_id: str, roles: tuple[str, ...] = ("credit_committee",)) -> None:
    """A token for a committee member beyond the seeded three (tokens name anyone)."""
    claims = {"sub": staff_id, "name": staff_id, "roles": list(roles), "org_unit": "/HQ/U01"}
    api.tokens[staff_id] = devauth.sign(claims, api.private_pem)


def referred_limit(api: Api, total: str = "6000000.00") -> dict[str, Any]:
    """A limit above the committee line, proposed by manager.li, reviewed by approver.hq."""
    limit = proposed_limit(api, total)
    referred = ok(review(api, limit["id"]))
    assert referred["status"] == "committee"
    return referred


def open_meeting(
    api: Api, limit_id: str, members: list[str] | None = None, chair: str = CHAIR,
    who: str = "approver.qian",
) -> Any:  # fmt: skip
    body = {"members": members if members is not None else MEMBERS, "chair": chair}
    return api.as_(who).post(f"{LIMITS}/{limit_id}/committee", json=body)


def vote(api: Api, limit_id: str, member: str, choice: str, opinion: str = "Seen.") -> Any:
    body = {"vote": choice, "opinion": opinion}
    return api.as_(member).post(f"{LIMITS}/{limit_id}/committee/votes", json=body)


def sign_off(api: Api, limit_id: str, who: str = CHAIR, minutes: str = "Minutes.") -> Any:
    return api.as_(who).post(f"{LIMITS}/{limit_id}/committee/sign-off", json={"minutes": minutes})


def test_the_committee_approves_with_two_thirds_for_and_the_chair_signs(api: Api) -> None:
    limit = referred_limit(api)
    meeting = ok(open_meeting(api, limit["id"]), 201)
    assert (meeting["chair"], meeting["members"], meeting["status"]) == (CHAIR, MEMBERS, "open")
    ok(vote(api, limit["id"], "committee.wu", "for", "Strong cash flow."), 201)
    ok(vote(api, limit["id"], "committee.zheng", "for"), 201)
    tally = ok(vote(api, limit["id"], "committee.feng", "against", "Too concentrated."), 201)
    assert (tally["votes_for"], tally["votes_against"], tally["votes_abstain"]) == (2, 1, 0)
    # 2 of 3 votes cast are "for": 2 * 3 = 6 ≥ 2 * 3 = 6, two thirds exactly → approved.
    decided = ok(sign_off(api, limit["id"], minutes="Meeting 2026-12 No. 3: approved 2:1."))
    assert (decided["status"], decided["decided_by"], decided["by_committee"]) == (
        "approved",
        CHAIR,
        True,
    )
    assert decided["decision_note"] == (
        "credit committee: 2 for, 1 against, 0 abstaining of 3 members"
    )
    assert decided["start_date"] is not None and decided["expiry_date"] is not None
    committee = decided["committee"]
    assert (committee["status"], committee["decision"], committee["signed_by"]) == (
        "decided",
        "approved",
        CHAIR,
    )
    assert committee["minutes"] == "Meeting 2026-12 No. 3: approved 2:1."
    assert [v["member"] for v in committee["votes"]] == MEMBERS
    [approved] = contract_valid(api, "credit_limit.approved")
    assert (approved["decided_by"], approved["by_committee"], approved["total_amount"]) == (
        CHAIR,
        True,
        "6000000.00",
    )
    assert contract_valid(api, "credit_limit.voted") == [
        {"customer_id": limit["customer_id"], "credit_limit_id": limit["id"], "member": m,
         "vote": v}
        for m, v in zip(MEMBERS, ["for", "for", "against"], strict=True)
    ]  # fmt: skip
    assert [s["step"] for s in steps_of(api, limit["id"])] == [
        "propose",
        "review",
        "refer",
        "committee_open",
        "vote",
        "vote",
        "vote",
        "sign_off",
        "approve",
    ]
    # Over: no more votes, no second sign-off.
    problem(vote(api, limit["id"], "committee.feng", "for"), 409)
    problem(sign_off(api, limit["id"]), 409)


def test_the_committee_rejects_below_two_thirds_for(api: Api) -> None:
    limit = referred_limit(api)
    ok(open_meeting(api, limit["id"]), 201)
    ok(vote(api, limit["id"], "committee.wu", "for"), 201)
    ok(vote(api, limit["id"], "committee.zheng", "against"), 201)
    ok(vote(api, limit["id"], "committee.feng", "abstain"), 201)
    # 1 of 3 votes cast is "for": 1 * 3 = 3 < 2 * 3 = 6 → rejected (an abstention is no "for").
    decided = ok(sign_off(api, limit["id"]))
    assert (decided["status"], decided["by_committee"]) == ("rejected", True)
    assert contract_valid(api, "credit_limit.rejected") == [
        {
            "customer_id": limit["customer_id"],
            "credit_limit_id": limit["id"],
            "reason": "the credit committee did not approve (1 for, 1 against, 1 abstaining; "
            "approval needs at least 2/3 of the votes cast for)",
            "decided_by": CHAIR,
            "by_committee": True,
        }
    ]
    assert events_of(api, "credit_limit.approved") == []


def test_three_of_four_votes_for_approve_and_two_of_four_do_not(api: Api) -> None:
    member_token(api, "committee.ma")
    members = [*MEMBERS, "committee.ma"]
    approved = referred_limit(api)
    ok(open_meeting(api, approved["id"], members), 201)
    for member, choice in zip(members, ["for", "for", "for", "against"], strict=True):
        ok(vote(api, approved["id"], member, choice), 201)
    # 3 * 3 = 9 ≥ 2 * 4 = 8 → approved.
    assert ok(sign_off(api, approved["id"]))["status"] == "approved"

    rejected = referred_limit(api)
    ok(open_meeting(api, rejected["id"], members), 201)
    for member, choice in zip(members, ["for", "for", "against", "abstain"], strict=True):
        ok(vote(api, rejected["id"], member, choice), 201)
    # 2 * 3 = 6 < 2 * 4 = 8 → rejected.
    assert ok(sign_off(api, rejected["id"]))["status"] == "rejected"


def test_no_decision_without_a_quorum(api: Api) -> None:
    limit = referred_limit(api)
    ok(open_meeting(api, limit["id"]), 201)
    ok(vote(api, limit["id"], "committee.wu", "for"), 201)
    ok(vote(api, limit["id"], "committee.zheng", "for"), 201)
    err = problem(sign_off(api, limit["id"]), 409)
    assert err["detail"] == (
        "the committee has no quorum: 2 votes were cast; the quorum needs at least 3"
    )
    assert err["votes_cast"] == 2
    # The meeting stays open: the third vote makes the quorum.
    ok(vote(api, limit["id"], "committee.feng", "for"), 201)
    assert ok(sign_off(api, limit["id"]))["status"] == "approved"


def test_the_quorum_needs_two_thirds_of_the_members_named(api: Api) -> None:
    for staff_id in ("committee.ma", "committee.lu"):
        member_token(api, staff_id)
    members = [*MEMBERS, "committee.ma", "committee.lu"]
    limit = referred_limit(api)
    ok(open_meeting(api, limit["id"], members), 201)
    for member in MEMBERS:
        ok(vote(api, limit["id"], member, "for"), 201)
    # 3 of 5 voted: 3 * 3 = 9 < 2 * 5 = 10 → no quorum although 3 votes were cast.
    err = problem(sign_off(api, limit["id"]), 409)
    assert "3 of the 5 members named voted; the quorum needs at least 2/3 of them" in err["detail"]
    ok(vote(api, limit["id"], "committee.ma", "against"), 201)
    # 4 of 5: 12 ≥ 10, quorate; 3 for of 4 cast: 9 ≥ 8 → approved.
    assert ok(sign_off(api, limit["id"]))["status"] == "approved"


def test_only_named_members_vote_once_and_only_the_chair_signs(api: Api) -> None:
    limit = referred_limit(api)
    ok(open_meeting(api, limit["id"]), 201)
    # A member of the committee not named for this limit, and an approver: neither votes.
    member_token(api, "committee.ma")
    err = problem(vote(api, limit["id"], "committee.ma", "for"), 403)
    assert "not a member named to the committee" in err["detail"]
    problem(vote(api, limit["id"], "approver.qian", "for"), 403)
    ok(vote(api, limit["id"], "committee.zheng", "against"), 201)
    err = problem(vote(api, limit["id"], "committee.zheng", "for"), 409)
    assert err["detail"] == "you voted already (against); a member votes once"
    ok(vote(api, limit["id"], "committee.wu", "for"), 201)
    ok(vote(api, limit["id"], "committee.feng", "for"), 201)
    err = problem(sign_off(api, limit["id"], who="committee.zheng"), 403)
    assert err["detail"] == "only the chair (committee.wu) signs the committee's minutes off"
    problem(sign_off(api, limit["id"], who="approver.qian"), 403)
    assert len(events_of(api, "credit_limit.voted")) == 3
    assert ok(sign_off(api, limit["id"]))["status"] == "approved"


def test_a_named_member_without_the_committee_role_may_not_vote(api: Api) -> None:
    limit = referred_limit(api)
    member_token(api, "staff.gao", roles=("customer_manager",))
    ok(open_meeting(api, limit["id"], [*MEMBERS, "staff.gao"]), 201)
    err = problem(vote(api, limit["id"], "staff.gao", "for"), 403)
    assert "you need the role credit_committee" in err["detail"]


def test_who_opens_the_meeting_and_whom_it_names(api: Api) -> None:
    limit = referred_limit(api)
    # Not an approver of the customer's subtree.
    problem(open_meeting(api, limit["id"], who="manager.li"), 403)
    problem(open_meeting(api, limit["id"], who="committee.wu"), 403)
    # Too few members; a chair who is not a member; the proposer as a member.
    err = problem(open_meeting(api, limit["id"], MEMBERS[:2]), 422)
    assert err["errors"] == [{"field": "members", "reason": "at least 3 members"}]
    err = problem(open_meeting(api, limit["id"], chair="committee.ma"), 422)
    assert err["errors"] == [{"field": "chair", "reason": "not among the members"}]
    err = problem(open_meeting(api, limit["id"], [*MEMBERS, "manager.li"]), 422)
    assert "the proposer manager.li may not sit on the committee" in err["detail"]
    # No meeting yet: nothing to vote on.
    problem(vote(api, limit["id"], "committee.wu", "for"), 404)
    # Named twice, counted once; the administrator may open it.
    meeting = ok(open_meeting(api, limit["id"], [*MEMBERS, "committee.wu"], who="admin"), 201)
    assert meeting["members"] == MEMBERS
    problem(open_meeting(api, limit["id"]), 409)
    assert (
        ok(api.as_("auditor.chen").get(f"{LIMITS}/{limit['id']}/committee"))["id"]
        == (meeting["id"])
    )


def test_only_a_referred_limit_goes_before_the_committee(api: Api) -> None:
    limit = proposed_limit(api, "100000.00")
    err = problem(open_meeting(api, limit["id"]), 409)
    assert "only a limit referred to the credit committee goes before it" in err["detail"]
    ok(review(api, limit["id"]))
    problem(open_meeting(api, limit["id"]), 409)
    problem(api.as_("auditor.chen").get(f"{LIMITS}/{limit['id']}/committee"), 404)
    assert ok(approve(api, limit["id"], "president.zhao"))["by_committee"] is False
