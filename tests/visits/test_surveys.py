"""Satisfaction surveys 满意度调查: the sample reproducible from its seed, stratification in
proportion, the mode by tier, scoring, results by branch and manager, and access."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from crmkit import devauth
from crmkit.events import validate_payload
from services.visits.schemas_surveys import AnswerIn
from services.visits.surveys import Candidate, allocate, draw, score
from tests.customer.conftest import Api
from tests.visits.conftest import events_of, known_customer, owned_by

ONE_TO_TEN = [{"text": "How satisfied are you with our service?", "scale": {"min": 0, "max": 10}}]


def start(api: Api, user: str = "president.zhao", **extra: Any) -> Any:
    body = {
        "name": "Q4 satisfaction",
        "org_unit": "/HQ/U01",
        "sample_size": 5,
        "questions": ONE_TO_TEN,
        **extra,
    }
    return api.as_(user).post("/api/v1/surveys", json=body)


def respond(
    api: Api, survey_id: str, customer_id: str, *values: int, user: str = "president.zhao"
) -> Any:
    answers = [{"question": n, "value": v} for n, v in enumerate(values, start=1)]
    return api.as_(user).post(
        f"/api/v1/surveys/{survey_id}/responses",
        json={"customer_id": customer_id, "answers": answers},
    )


def sampled_ids(survey: dict[str, Any]) -> list[str]:
    return [s["customer_id"] for s in survey["sample"]]


def mint(api: Api, sub: str, roles: list[str], org_unit: str) -> str:
    claims = {"sub": sub, "name": sub, "roles": roles, "org_unit": org_unit}
    api.tokens[sub] = devauth.sign(claims, api.private_pem)
    return sub


# -- the draw, pure -----------------------------------------------------------------------------
def test_proportional_allocation_by_largest_remainders() -> None:
    # 7 of 20: high 7*3/20 = 1 r1, middle 7*5/20 = 1 r15, general 7*12/20 = 4 r4: 6 given,
    # the 7th goes to the largest remainder (middle).
    sizes = {"high": 3, "middle": 5, "general": 12, "unrated": 0}
    assert allocate(sizes, 7) == {"high": 1, "middle": 2, "general": 4, "unrated": 0}
    # 10 of 20 divides exactly: half of each.
    assert allocate({"high": 4, "middle": 6, "general": 10}, 10) == {
        "high": 2,
        "middle": 3,
        "general": 5,
    }
    # A tie of remainders goes to the stratum listed first.
    assert allocate({"high": 1, "middle": 1}, 1) == {"high": 1, "middle": 0}
    # More than the population asked: everyone.
    assert allocate({"high": 2, "middle": 3}, 50) == {"high": 2, "middle": 3}
    assert allocate({"high": 0}, 3) == {"high": 0}


def _pool(count: int) -> list[Candidate]:
    tiers = ["high", "middle", "general", "general"]
    return sorted(
        (
            Candidate(f"c{n:03d}", "/HQ/U01/B01", tiers[n % 4], tiers[n % 4] == "high", None)
            for n in range(count)
        ),
        key=lambda c: c.customer_id,
    )


def test_the_draw_is_random_sample_of_the_sorted_pool_from_the_seed() -> None:
    pool = _pool(40)
    chosen, strata = draw(pool, 6, 2026, None)
    assert chosen == random.Random(2026).sample(pool, 6)
    assert draw(pool, 6, 2026, None)[0] == chosen
    assert draw(pool, 6, 2027, None)[0] != chosen
    assert [(s.tier, s.candidates, s.drawn) for s in strata] == [("all", 40, 6)]
    assert len(draw(pool, 100, 1, None)[0]) == 40


def test_a_stratified_draw_follows_the_allocation() -> None:
    pool = _pool(40)  # 10 high, 10 middle, 20 general
    chosen, strata = draw(pool, 8, 99, ["high", "middle", "general", "unrated"])
    assert Counter(c.tier for c in chosen) == Counter({"high": 2, "middle": 2, "general": 4})
    assert [(s.tier, s.candidates, s.drawn) for s in strata] == [
        ("high", 10, 2),
        ("middle", 10, 2),
        ("general", 20, 4),
        ("unrated", 0, 0),
    ]
    assert draw(pool, 8, 99, ["high", "middle", "general", "unrated"])[0] == chosen


def test_a_score_is_the_mean_of_the_answers_on_0_to_100() -> None:
    questions = [
        {"number": 1, "text": "a", "scale": {"min": 1, "max": 5}},
        {"number": 2, "text": "b", "scale": {"min": 0, "max": 10}},
        {"number": 3, "text": "c", "scale": {"min": 1, "max": 3}},
    ]

    def answers(*values: int) -> list[AnswerIn]:
        return [AnswerIn(question=n, value=v) for n, v in enumerate(values, start=1)]

    # (3-1)/4 = 50, 9/10 = 90, (2-1)/2 = 50: 190 / 3 = 63.333... → 63.33
    assert str(score(questions, answers(3, 9, 2))) == "63.33"
    assert str(score(questions, answers(5, 10, 3))) == "100.00"
    assert str(score(questions, answers(1, 0, 1))) == "0.00"
    # (4-1)/4 = 75, 10/10 = 100, (3-1)/2 = 100: 275 / 3 = 91.666... → 91.67 (half up)
    assert str(score(questions, answers(4, 10, 3))) == "91.67"


# -- over HTTP ----------------------------------------------------------------------------------
def test_the_sample_is_reproducible_from_the_seed(api: Api) -> None:
    active = [known_customer(api, org_unit=f"/HQ/U01/B0{1 + n % 2}") for n in range(12)]
    known_customer(api, status="dormant")  # not active: never drawn
    known_customer(api, org_unit="/HQ/U02/B01")  # outside the subtree
    created = start(api, seed=7)
    assert created.status_code == 201, created.text
    survey = created.json()
    assert created.headers["location"] == f"/api/v1/surveys/{survey['id']}"
    assert (survey["seed"], survey["population"], survey["drawn"]) == (7, 12, 5)
    # Sorted by id, then random.Random(seed).sample.
    assert sampled_ids(survey) == random.Random(7).sample(sorted(active), 5)
    assert [s["position"] for s in survey["sample"]] == [1, 2, 3, 4, 5]
    again = start(api, seed=7).json()
    assert sampled_ids(again) == sampled_ids(survey)

    unseeded = start(api).json()
    seed = unseeded["seed"]
    assert isinstance(seed, int) and seed >= 0
    assert sampled_ids(start(api, seed=seed).json()) == sampled_ids(unseeded)

    started = events_of(api, "survey.started")
    assert len(started) == 4
    assert started[0]["seed"] == 7 and started[0]["drawn"] == 5 and started[0]["population"] == 12
    validate_payload("survey.started", 1, started[0])
    whole = start(api, seed=1, sample_size=50).json()
    assert whole["drawn"] == 12 and sorted(sampled_ids(whole)) == sorted(active)


def test_stratification_is_proportional_and_the_mode_follows_the_tier(api: Api) -> None:
    tiers = ["high"] * 4 + ["middle"] * 6 + ["general"] * 8 + [None] * 2
    ids = {known_customer(api, value_tier=tier): tier or "unrated" for tier in tiers}
    survey = start(api, seed=11, sample_size=10, stratify_by_tier=True).json()
    # 10 of 20: high 4/2 = 2, middle 6/2 = 3, general 8/2 = 4, unrated 2/2 = 1.
    assert [(s["tier"], s["candidates"], s["drawn"]) for s in survey["strata"]] == [
        ("high", 4, 2),
        ("middle", 6, 3),
        ("general", 8, 4),
        ("unrated", 2, 1),
    ]
    assert Counter(s["tier"] for s in survey["sample"]) == Counter(
        {"high": 2, "middle": 3, "general": 4, "unrated": 1}
    )
    for s in survey["sample"]:
        assert s["tier"] == ids[s["customer_id"]]
        assert s["mode"] == ("phone" if s["tier"] == "high" else "face_to_face")
    # In each stratum: the stratum's customers sorted by id, sampled in stratum order.
    rng = random.Random(11)
    expected: list[str] = []
    for tier, k in (("high", 2), ("middle", 3), ("general", 4), ("unrated", 1)):
        expected += rng.sample(sorted(c for c, t in ids.items() if t == tier), k)
    assert sampled_ids(survey) == expected
    by_mode = events_of(api, "survey.started")[0]["by_mode"]
    assert by_mode == {"phone": 2, "face_to_face": 8}


def test_vip_and_the_top_wealth_layer_are_surveyed_by_phone(api: Api) -> None:
    vip = known_customer(api, value_tier="general", vip_level="gold")
    rich = known_customer(api, value_tier="middle", wealth_layer="layer_1")
    plain = known_customer(api, value_tier="middle", wealth_layer="layer_3")
    survey = start(api, seed=3, sample_size=3).json()
    modes = {s["customer_id"]: (s["mode"], s["high_tier"]) for s in survey["sample"]}
    assert modes == {
        vip: ("phone", True),
        rich: ("phone", True),
        plain: ("face_to_face", False),
    }


def test_responses_are_scored_once_and_only_from_the_sample(api: Api) -> None:
    inside = known_customer(api)
    survey = start(
        api,
        seed=5,
        sample_size=1,
        questions=[
            {"text": "Service", "scale": {"min": 1, "max": 5}},
            {"text": "Waiting", "scale": {"min": 0, "max": 10}},
        ],
    ).json()
    assert sampled_ids(survey) == [inside]
    outsider = known_customer(api)  # became a customer after the draw
    refused = respond(api, survey["id"], outsider, 5, 10)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "customer_id"
    off_scale = respond(api, survey["id"], inside, 6, 10)
    assert off_scale.status_code == 422
    assert off_scale.json()["errors"] == [
        {"field": "answers.0.value", "reason": "outside the scale 1-5"}
    ]
    unanswered = respond(api, survey["id"], inside, 5)
    assert unanswered.json()["errors"] == [
        {"field": "answers", "reason": "question 2 is not answered"}
    ]

    # (4-1)/4 = 75 and 8/10 = 80: mean 77.50.
    answered = respond(api, survey["id"], inside, 4, 8)
    assert answered.status_code == 201, answered.text
    body = answered.json()
    assert body["score"] == "77.50" and body["manager_id"] == "manager.li"
    assert body["mode"] == "face_to_face" and body["recorded_by"] == "president.zhao"
    assert respond(api, survey["id"], inside, 5, 10).status_code == 409
    detail = api.as_("auditor.chen").get(f"/api/v1/surveys/{survey['id']}").json()
    assert detail["responded"] == 1 and detail["sample"][0]["responded"] is True
    events = events_of(api, "survey.responded")
    assert [(e["customer_id"], e["score"], e["manager_id"]) for e in events] == [
        (inside, "77.50", "manager.li")
    ]
    validate_payload("survey.responded", 1, events[0])


def test_results_by_branch_and_by_the_manager_at_response_time(api: Api) -> None:
    first = known_customer(api, org_unit="/HQ/U01/B01", owner="manager.li")
    moved = known_customer(api, org_unit="/HQ/U01/B01", owner="manager.li")
    silent = known_customer(api, org_unit="/HQ/U01/B01", owner="manager.li")
    other = known_customer(api, org_unit="/HQ/U01/B02", owner="manager.zhou")
    survey = start(api, seed=1, sample_size=10).json()
    assert sorted(sampled_ids(survey)) == sorted([first, moved, silent, other])
    owners = {s["customer_id"]: s["owner_id"] for s in survey["sample"]}
    assert owners[moved] == "manager.li"
    # The customer changes hands after the draw: its score counts for the new owner.
    owned_by(api, moved, "manager.zhou")
    assert respond(api, survey["id"], first, 10).json()["score"] == "100.00"
    assert respond(api, survey["id"], moved, 5).json()["score"] == "50.00"
    assert respond(api, survey["id"], other, 8).json()["score"] == "80.00"

    response = api.as_("president.zhao").get(f"/api/v1/surveys/{survey['id']}/results")
    assert response.status_code == 200, response.text
    results = response.json()
    # Overall: 3 of 4 responded = 0.7500; (100 + 50 + 80) / 3 = 76.666... → 76.67.
    assert results["overall"] == {
        "key": "all",
        "sampled": 4,
        "responded": 3,
        "response_rate": "0.7500",
        "mean_score": "76.67",
    }
    # B01: 2 of 3 = 0.6667, (100 + 50) / 2 = 75.00; B02: 1 of 1, 80.00.
    assert [
        (g["key"], g["sampled"], g["responded"], g["response_rate"], g["mean_score"])
        for g in results["by_branch"]
    ] == [
        ("/HQ/U01/B01", 3, 2, "0.6667", "75.00"),
        ("/HQ/U01/B02", 1, 1, "1.0000", "80.00"),
    ]
    # manager.li: 100; manager.zhou: (50 + 80) / 2 = 65.00.
    assert [(g["key"], g["responded"], g["mean_score"]) for g in results["by_manager"]] == [
        ("manager.li", 1, "100.00"),
        ("manager.zhou", 2, "65.00"),
    ]
    assert [(g["key"], g["sampled"], g["responded"]) for g in results["by_mode"]] == [
        ("face_to_face", 4, 3)
    ]


def test_who_starts_reads_and_answers_surveys(api: Api) -> None:
    customer_id = known_customer(api)
    # Heads and the line department of the subtree start surveys; managers do not.
    refused = start(api, "manager.li")
    assert refused.status_code == 403 and "/HQ/U01" in refused.json()["detail"]
    assert start(api, "head.sun").status_code == 403  # /HQ/U01 is above the outlet
    assert start(api, "auditor.chen").status_code == 403
    outlet = start(api, "head.sun", org_unit="/HQ/U01/B01", seed=1).json()
    line = mint(api, "line.personal", ["line_department"], "/HQ/U01")
    branch = start(api, line, seed=2)
    assert branch.status_code == 201
    branch_id = branch.json()["id"]

    def listed(user: str) -> set[str]:
        response = api.as_(user).get("/api/v1/surveys")
        assert response.status_code == 200, response.text
        return {s["id"] for s in response.json()["items"]}

    assert listed("head.sun") == {outlet["id"]}
    assert listed("president.zhao") == {outlet["id"], branch_id}
    assert listed("auditor.chen") == {outlet["id"], branch_id}
    assert api.as_("manager.li").get("/api/v1/surveys").status_code == 403
    assert api.as_("manager.li").get(f"/api/v1/surveys/{branch_id}").status_code == 403
    assert api.as_("head.sun").get(f"/api/v1/surveys/{branch_id}").status_code == 403
    assert api.as_("auditor.chen").get(f"/api/v1/surveys/{branch_id}/results").status_code == 200
    assert api.as_("admin").get("/api/v1/surveys/nope").status_code == 404

    # Responses are recorded by the unit's heads or line department, not by the managers
    # (or auditors) the scores assess.
    assert respond(api, branch_id, customer_id, 9, user="auditor.chen").status_code == 403
    assert respond(api, branch_id, customer_id, 9, user="head.sun").status_code == 403
    assert respond(api, outlet["id"], customer_id, 9, user="head.sun").status_code == 201
    assert respond(api, branch_id, customer_id, 9, user=line).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"questions": [{"text": "q", "scale": {"min": 5, "max": 5}}]},
        {"questions": []},
        {"sample_size": 0},
        {"seed": -1},
    ],
)
def test_a_survey_that_cannot_be_run_is_refused(api: Api, body: dict[str, Any]) -> None:
    assert start(api, **body).status_code == 422
