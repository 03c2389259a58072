"""The teller identification register 柜员识别客户登记表 (附件6): a walk-in flagged at the counter
is published as ``lead.identified`` without its personal data; the identity number and phone are
stored encrypted, shown masked to every reader, revealed with a reason to the referred manager,
heads and administrators, each reveal audited; the referred manager records the result; the
register report in JSON and CSV; who reads what."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from crmkit import devauth
from crmkit.crypto import FieldCipher, generate_key
from services.customer.events import CUSTOMER_ERASED
from services.visits.models_marketing import TellerLead, TellerLeadReveal
from tests.customer.conftest import Api, _As, resident_id
from tests.visits.conftest import deliver, events_of, known_customer, runtime_of

LEADS = "/api/v1/leads"
REPORT = "/api/v1/reports/teller-register"
NATIONAL_ID = resident_id("19850612", 123, "110101")
MASKED_ID = NATIONAL_ID[:6] + "********" + NATIONAL_ID[-4:]
# Staff minted for the tests beside the seeded users.
MINTED = {
    "teller.zhang": (["teller"], "/HQ/U01/B02"),
    "lobby.hu": (["lobby_manager"], "/HQ/U01/B01"),
    "wealth.ma": (["wealth_manager"], "/HQ/U01/B01"),
}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[FieldCipher]:
    """Field keys of the test's own, given as production gives them: by the environment."""
    encryption, index = generate_key(), generate_key()
    monkeypatch.setenv("CRM_VISITS_FIELD_ENCRYPTION_KEYS", f"t1:{encryption}")
    monkeypatch.setenv("CRM_VISITS_FIELD_ACTIVE_KEY_ID", "t1")
    monkeypatch.setenv("CRM_VISITS_FIELD_INDEX_KEY", index)
    yield FieldCipher.from_config(f"t1:{encryption}", "t1", index)


@pytest.fixture
def api(keys: FieldCipher, api: Api) -> Api:
    """The service, started with the test's field keys in its environment."""
    return api


def as_user(api: Api, user: str) -> _As:
    if user in MINTED:
        roles, unit = MINTED[user]
        claims = {"sub": user, "name": user, "roles": roles, "org_unit": unit}
        token = devauth.sign(claims, api.private_pem)
        return _As(api.client, {"Authorization": f"Bearer {token}"})
    return api.as_(user)


def flag(api: Api, user: str = "teller.wang", **fields: Any) -> Any:
    body: dict[str, Any] = {
        "name": "Wang Qiang",
        "national_id": NATIONAL_ID,
        "phone": "+86 138-1234-5678",
        "business": "time deposit 定期存款",
        "amount": "500000.00",
        "reasons": ["funds", "other_bank"],
        "current_bank": "Another Bank",
        "preliminary_value": "high",
        "potential_vip": True,
        "referred_to": "manager.li",
        **fields,
    }
    return as_user(api, user).post(LEADS, json={k: v for k, v in body.items() if v is not None})


def flagged(api: Api, user: str = "teller.wang", **fields: Any) -> dict[str, Any]:
    resp = flag(api, user, **fields)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


def stored(api: Api, lead_id: str) -> TellerLead:
    with runtime_of(api).session_factory() as session:
        lead = session.get(TellerLead, lead_id)
        assert lead is not None
        return lead


def reveals(api: Api) -> list[TellerLeadReveal]:
    with runtime_of(api).session_factory() as session:
        return list(session.scalars(select(TellerLeadReveal).order_by(TellerLeadReveal.id)))


# -- recording and the event --------------------------------------------------------------------
def test_a_flagged_walk_in_is_published_without_personal_data(api: Api, keys: FieldCipher) -> None:
    resp = flag(api)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert resp.headers["Location"] == f"{LEADS}/{out['id']}"
    assert (out["org_unit"], out["teller_id"]) == ("/HQ/U01/B01", "teller.wang")
    assert out["national_id"] == MASKED_ID
    assert out["phone"] == "138****5678"
    assert out["amount"] == "500000.00"
    assert (out["kind"], out["business_line"]) == ("individual", "personal")
    assert (out["referred_to"], out["referred_role"]) == ("manager.li", "customer_manager")
    assert out["may_reveal"] is False  # the teller saw it at the counter; no reveal

    [event] = events_of(api, "lead.identified")
    assert event["lead_id"] == out["id"]
    assert event["id_number_masked"] == MASKED_ID
    assert event["name"] == "Wang Qiang"
    assert event["reasons"] == ["funds", "other_bank"]
    assert (event["preliminary_value"], event["potential_vip"]) == ("high", True)
    assert (event["teller_id"], event["org_unit"], event["customer_id"]) == (
        "teller.wang",
        "/HQ/U01/B01",
        None,
    )
    text = json.dumps(event)
    assert "phone" not in event and "13812345678" not in text and NATIONAL_ID not in text
    assert "500000" not in text  # the amount stays in the register

    # At rest: tokens of the configured key, bound to their column; never the clear value.
    row = stored(api, out["id"])
    assert row.id_number_enc is not None and row.phone_enc is not None
    assert row.id_number_enc.startswith("v1.t1.") and NATIONAL_ID not in row.id_number_enc
    assert keys.decrypt(row.id_number_enc, context="teller_leads.national_id") == NATIONAL_ID
    assert keys.decrypt(row.phone_enc, context="teller_leads.phone") == "13812345678"


def test_a_known_customer_is_named_by_its_id(api: Api, keys: FieldCipher) -> None:
    customer_id = known_customer(api, kind="corporate", name="Hexi Mill", business_line="corporate")
    out = flagged(
        api,
        "lobby.hu",
        name=None,
        national_id=None,
        phone=None,
        customer_id=customer_id,
        reasons=["product_need"],
        referred_to="wealth.ma",
        referred_role="wealth_manager",
    )
    assert (out["name"], out["kind"], out["business_line"]) == (
        "Hexi Mill",
        "corporate",
        "corporate",
    )
    assert (out["national_id"], out["phone"], out["teller_id"]) == (None, None, "lobby.hu")
    [event] = events_of(api, "lead.identified")
    assert (event["customer_id"], event["referred_role"]) == (customer_id, "wealth_manager")
    unknown = flag(api, customer_id="00000000-0000-4000-8000-000000000000", name=None)
    assert problem(unknown, 422)["errors"] == [
        {"field": "customer_id", "reason": "unknown customer"}
    ]


def test_what_is_flagged_is_validated(api: Api, keys: FieldCipher) -> None:
    wrong_check = NATIONAL_ID[:17] + ("0" if NATIONAL_ID[17] != "0" else "1")
    body = problem(flag(api, national_id=wrong_check, phone="010-12345678"), 422)
    assert {e["field"] for e in body["errors"]} == {"national_id", "phone"}
    assert {e["field"] for e in problem(flag(api, name=None), 422)["errors"]} == {"name"}
    other = problem(flag(api, reasons=["other"]), 422)
    assert other["errors"] == [
        {"field": "observation", "reason": "say what was seen with reason other"}
    ]
    problem(flag(api, amount="-5.00"), 422)
    problem(flag(api, identified_on="2999-01-01"), 422)
    problem(flag(api, "auditor.chen"), 403)
    problem(flag(api, "risk.he"), 403)
    assert events_of(api, "lead.identified") == []


# -- reading and masking ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "status", "may_reveal"),
    [
        ("teller.wang", 200, False),  # recorded it
        ("manager.li", 200, True),  # referred to
        ("head.sun", 200, True),  # head of the outlet
        ("president.zhao", 200, True),  # head of the union above it
        ("auditor.chen", 200, False),  # reads everything, reveals nothing
        ("admin", 200, True),
        ("manager.zhou", 404, None),  # another outlet's manager, not referred
        ("teller.zhang", 404, None),  # a teller of another outlet
        ("lobby.hu", 404, None),  # same outlet, neither recorded nor referred
    ],
)
def test_every_reader_sees_the_personal_data_masked(
    api: Api, keys: FieldCipher, user: str, status: int, may_reveal: bool | None
) -> None:
    lead_id = flagged(api)["id"]
    resp = as_user(api, user).get(f"{LEADS}/{lead_id}")
    assert resp.status_code == status, resp.text
    if status == 200:
        out = resp.json()
        assert (out["national_id"], out["phone"]) == (MASKED_ID, "138****5678")
        assert out["may_reveal"] is may_reveal
        assert NATIONAL_ID not in resp.text and "13812345678" not in resp.text


def test_lists_are_scoped_by_role(api: Api, keys: FieldCipher) -> None:
    mine = flagged(api)["id"]
    other_referral = flagged(api, referred_to="wealth.ma")["id"]
    elsewhere = flagged(api, "teller.zhang", referred_to="manager.zhou")["id"]

    def ids(user: str, **params: str) -> list[str]:
        resp = as_user(api, user).get(LEADS, params=params)
        assert resp.status_code == 200, resp.text
        return sorted(x["id"] for x in resp.json()["items"])

    assert ids("teller.wang") == sorted([mine, other_referral])
    assert ids("manager.li") == [mine]
    assert ids("wealth.ma") == [other_referral]
    assert ids("manager.zhou") == [elsewhere]
    assert ids("teller.zhang") == [elsewhere]
    assert ids("head.sun") == sorted([mine, other_referral])
    assert ids("president.zhao") == sorted([mine, other_referral, elsewhere])
    assert ids("president.zhao", org_unit="/HQ/U01/B02") == [elsewhere]
    assert ids("auditor.chen") == sorted([mine, other_referral, elsewhere])
    assert ids("lobby.hu") == []


# -- reveal -------------------------------------------------------------------------------------
def test_a_reveal_needs_a_reason_and_is_audited(api: Api, keys: FieldCipher) -> None:
    lead_id = flagged(api)["id"]
    reveal = f"{LEADS}/{lead_id}/reveal"
    reason = "calling the customer to arrange the first visit"

    resp = api.as_("manager.li").post(reveal, json={"field": "national_id", "reason": reason})
    assert resp.status_code == 200, resp.text
    assert resp.json()["value"] == NATIONAL_ID
    resp = api.as_("head.sun").post(reveal, json={"field": "phone", "reason": "check the number"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["value"] == "13812345678"

    problem(api.as_("manager.li").post(reveal, json={"field": "phone"}), 422)
    problem(api.as_("manager.li").post(reveal, json={"field": "phone", "reason": "x"}), 422)
    refused = problem(
        api.as_("teller.wang").post(reveal, json={"field": "phone", "reason": reason}), 403
    )
    assert "referred" in refused["detail"]
    problem(api.as_("auditor.chen").post(reveal, json={"field": "phone", "reason": reason}), 403)
    problem(
        as_user(api, "teller.zhang").post(reveal, json={"field": "phone", "reason": reason}), 404
    )

    audit = reveals(api)  # the refused attempts revealed nothing and left no entry
    assert [(a.lead_id, a.field, a.actor, a.roles, a.reason) for a in audit] == [
        (lead_id, "national_id", "manager.li", ["customer_manager"], reason),
        (lead_id, "phone", "head.sun", ["outlet_head"], "check the number"),
    ]
    assert resp.json()["audit_id"] == audit[1].id
    assert all(a.at is not None for a in audit)


# -- the follow-up result -----------------------------------------------------------------------
def test_the_referred_manager_records_the_result(api: Api, keys: FieldCipher) -> None:
    lead_id = flagged(api)["id"]
    result = f"{LEADS}/{lead_id}/result"
    problem(api.as_("teller.wang").post(result, json={"result": "contacted"}), 403)
    problem(api.as_("manager.zhou").post(result, json={"result": "contacted"}), 404)
    problem(api.as_("manager.li").post(result, json={"result": "sold"}), 422)

    resp = api.as_("manager.li").post(result, json={"result": "contacted", "note": "visit Fri"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["result"], out["result_note"], out["result_by"]) == (
        "contacted",
        "visit Fri",
        "manager.li",
    )
    assert out["version"] == 2
    resp = api.as_("head.sun").post(result, json={"result": "converted", "note": "opened a CD"})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["result"], resp.json()["result_by"], resp.json()["version"]) == (
        "converted",
        "head.sun",
        3,
    )


# -- the report ---------------------------------------------------------------------------------
def _register_of_the_month(api: Api) -> dict[str, str]:
    """Four entries in B01 and one in B02 in November, one in B01 in October."""
    ids = {
        "a": flagged(api, identified_on="2026-11-02")["id"],
        "b": flagged(
            api,
            identified_on="2026-11-10",
            name="Li Na",
            national_id=None,
            phone=None,
            amount=None,
            referred_to=None,
            reasons=["business_owner"],
            preliminary_value="middle",
            potential_vip=False,
        )["id"],
        "c": flagged(api, identified_on="2026-11-20", referred_to="wealth.ma")["id"],
        "d": flagged(api, "lobby.hu", identified_on="2026-11-28")["id"],
        "b02": flagged(api, "teller.zhang", identified_on="2026-11-15", referred_to=None)["id"],
        "october": flagged(api, identified_on="2026-10-31")["id"],
    }
    for lead_id, who, result in (
        (ids["a"], "manager.li", "converted"),
        (ids["c"], "wealth.ma", "declined"),
        (ids["october"], "manager.li", "converted"),
    ):
        resp = as_user(api, who).post(f"{LEADS}/{lead_id}/result", json={"result": result})
        assert resp.status_code == 200, resp.text
    return ids


def test_the_register_report_in_json(api: Api, keys: FieldCipher) -> None:
    ids = _register_of_the_month(api)
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    resp = api.as_("head.sun").get(REPORT, params=period)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["org_unit"], report["date_from"], report["date_to"]) == (
        "/HQ/U01/B01",
        "2026-11-01",
        "2026-11-30",
    )
    # Newest first; B02's entry and October's are outside.
    assert [r["id"] for r in report["items"]] == [ids["d"], ids["c"], ids["b"], ids["a"]]
    # identified 4 (a, b, c, d); referred 3 (b was not); followed up 2 (a, c);
    # converted 1 (a): conversion 1 / 3 = 0.3333.
    assert report["summary"] == {
        "identified": 4,
        "referred": 3,
        "followed_up": 2,
        "converted": 1,
        "conversion_rate": "0.3333",
    }
    first = report["items"][-1]
    assert (first["national_id"], first["phone"], first["amount"]) == (
        MASKED_ID,
        "138****5678",
        "500000.00",
    )
    assert NATIONAL_ID not in resp.text
    page = api.as_("head.sun").get(REPORT, params={**period, "limit": 1, "offset": 1}).json()
    assert ([r["id"] for r in page["items"]], page["total"]) == ([ids["c"]], 4)

    union = api.as_("president.zhao").get(REPORT, params={**period, "org_unit": "/HQ/U01"})
    assert union.json()["summary"]["identified"] == 5  # B01's four and B02's one
    audited = api.as_("auditor.chen").get(REPORT, params={**period, "org_unit": "/HQ/U01/B02"})
    assert [r["id"] for r in audited.json()["items"]] == [ids["b02"]]


def test_the_register_report_in_csv(api: Api, keys: FieldCipher) -> None:
    _register_of_the_month(api)
    resp = api.as_("head.sun").get(
        REPORT, params={"from": "2026-11-01", "to": "2026-11-30", "format": "csv", "limit": 1}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["X-Total-Count"] == "4"
    text = resp.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert header[:6] == [
        "identified_on (日期)",
        "org_unit (网点)",
        "teller_id (柜员)",
        "name (客户名称)",
        "national_id (身份证号)",
        "phone (联系电话)",
    ]
    assert len(body) == 4  # every row, whatever the limit
    oldest = dict(zip(header, body[-1], strict=True))
    assert oldest["national_id (身份证号)"] == MASKED_ID
    assert oldest["phone (联系电话)"] == "138****5678"
    assert oldest["amount (金额)"] == "500000.00"
    assert oldest["reasons (识别原因)"] == "funds; other_bank"
    assert oldest["potential_vip (潜在贵宾客户)"] == "yes"
    assert oldest["result (跟进结果)"] == "converted"
    assert NATIONAL_ID not in text and "13812345678" not in text


def test_the_report_is_for_heads_auditors_and_administrators(api: Api, keys: FieldCipher) -> None:
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    problem(api.as_("teller.wang").get(REPORT, params=period), 403)
    problem(api.as_("manager.li").get(REPORT, params=period), 403)
    problem(api.as_("head.sun").get(REPORT, params={**period, "org_unit": "/HQ/U01/B02"}), 403)
    assert api.as_("admin").get(REPORT, params=period).status_code == 200
    reversed_period = {"from": "2026-11-30", "to": "2026-11-01"}
    problem(api.as_("head.sun").get(REPORT, params=reversed_period), 422)


def test_an_erased_customer_leaves_the_register_anonymous(api: Api, keys: FieldCipher) -> None:
    customer_id = known_customer(api, name="Zhang San")
    lead_id = flagged(api, customer_id=customer_id, name=None)["id"]
    kept = flagged(api)["id"]
    deliver(  # the customer service's erasure reaches the register through the consumer
        api,
        CUSTOMER_ERASED,
        {"customer_id": customer_id, "erased_at": "2026-11-30T08:00:00Z"},
        key=customer_id,
        actor="admin",
    )
    erased = api.as_("head.sun").get(f"{LEADS}/{lead_id}").json()
    assert (erased["name"], erased["national_id"], erased["phone"]) == ("(erased)", None, None)
    assert erased["reasons"] == ["funds", "other_bank"]  # what was flagged stays
    row = stored(api, lead_id)
    assert (row.id_number_enc, row.phone_enc) == (None, None)
    assert api.as_("head.sun").get(f"{LEADS}/{kept}").json()["name"] == "Wang Qiang"
