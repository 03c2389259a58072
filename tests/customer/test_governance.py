"""Probable duplicates, merges and erasure on request."""

from __future__ import annotations

from sqlalchemy import select

from services.customer.models import Change, Contact, FinancialSnapshot, Relationship
from tests.customer.conftest import Api, credit_code, firm, person, resident_id


def _create(api: Api, body: dict[str, object], user: str = "head.sun") -> dict[str, object]:
    resp = api.as_(user).post("/api/v1/customers", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _session(api: Api):  # type: ignore[no-untyped-def]
    return api.client.app.state.runtime.session_factory()  # type: ignore[attr-defined]


def test_probable_duplicates_are_grouped_by_reason(api: Api) -> None:
    a = _create(api, person(name="Li Ming", id_number=resident_id(serial=101), phone="13900000001"))
    b = _create(
        api, person(name="LI  MING", id_number=resident_id(serial=102), phone="13900000001")
    )
    c = _create(
        api,
        firm(
            name="恒达农机有限公司",
            credit_code=credit_code("91350100M000100Y4"),
            addresses=[{"type": "business", "text": "福州市鼓楼区1号"}],
        ),
    )
    d = _create(
        api,
        firm(
            name="恒达农机\uff08福建\uff09有限责任公司",
            credit_code=credit_code("91350100M000200Y4"),
            addresses=[{"type": "business", "text": "厦门市思明区9号"}],
        ),
    )
    _create(api, person(name="Wang Fang", id_number=resident_id(serial=103)))
    resp = api.as_("head.sun").get("/api/v1/customers/duplicates")
    assert resp.status_code == 200, resp.text
    groups = {g["reason"]: {c["id"] for c in g["customers"]} for g in resp.json()["items"]}
    assert groups == {"same_name_and_phone": {a["id"], b["id"]}, "similar_name": {c["id"], d["id"]}}
    assert resp.json()["total"] == 2
    # Out of scope: a manager of another outlet sees none of them.
    assert api.as_("manager.zhou").get("/api/v1/customers/duplicates").json()["items"] == []


def test_merge_moves_history_and_closes_the_duplicate(api: Api) -> None:
    survivor = _create(api, person(name="Li Ming", id_number=resident_id(serial=201), phone=None))
    duplicate = _create(
        api,
        person(
            name="Li Ming",
            segment="target",
            id_number=None,
            phone="13900000002",
            data_source="lobby referral",
            lawful_basis="consent",
            archive_number="AR-7",
            contacts=[{"role": "other", "name": "Li Hua", "phone": "13900000003"}],
        ),
    )
    other = _create(api, firm(credit_code=credit_code("91350100M000300Y4")))
    head = api.as_("head.sun")
    feed = api.as_client("customer.financials")
    for cid, day, deposits in (
        (survivor["id"], "2026-10-31", "100.00"),
        (duplicate["id"], "2026-10-31", "999.00"),
        (duplicate["id"], "2026-09-30", "50.00"),
    ):
        put = feed.put(
            f"/api/v1/customers/{cid}/financials",
            json={"business_date": day, "deposits": deposits},
        )
        assert put.status_code == 200, put.text
    link = head.post(
        f"/api/v1/customers/{duplicate['id']}/relationships",
        json={"to_customer_id": other["id"], "type": "payroll_employer"},
    )
    assert link.status_code == 201, link.text

    url = f"/api/v1/customers/{survivor['id']}/merge"
    version = head.get(f"/api/v1/customers/{survivor['id']}").json()["version"]
    assert version == 2  # the snapshot set its tiers
    assert head.post(url, json={"duplicate_id": duplicate["id"], "version": 1}).status_code == 409
    assert (
        api.as_("manager.li")
        .post(url, json={"duplicate_id": duplicate["id"], "version": version})
        .status_code
        == 403
    )
    merged = head.post(url, json={"duplicate_id": duplicate["id"], "version": version})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["phone"] == "139****0002" and not body["lost_contact"]
    assert body["archive_number"] == "AR-7"
    assert [c["name"] for c in body["contacts"]] == ["Li Hua"]

    gone = head.get(f"/api/v1/customers/{duplicate['id']}").json()
    assert gone["merged_into"] == survivor["id"] and gone["status"] == "closed"
    with _session(api) as session:
        dates = {
            (s.business_date.isoformat(), str(s.deposits))
            for s in session.scalars(
                select(FinancialSnapshot).where(FinancialSnapshot.customer_id == survivor["id"])
            )
        }
        assert dates == {("2026-10-31", "100.00"), ("2026-09-30", "50.00")}
        links = session.scalars(select(Relationship)).all()
        assert [(r.from_customer_id, r.to_customer_id) for r in links] == [
            (survivor["id"], other["id"])
        ]
    again = head.post(url, json={"duplicate_id": duplicate["id"], "version": body["version"]})
    assert again.status_code == 409


def test_records_of_different_identities_are_not_merged(api: Api) -> None:
    a = _create(api, person(id_number=resident_id(serial=301)))
    b = _create(api, person(id_number=resident_id(serial=302)))
    resp = api.as_("head.sun").post(
        f"/api/v1/customers/{a['id']}/merge", json={"duplicate_id": b["id"], "version": 1}
    )
    assert resp.status_code == 422
    assert "different identities" in resp.json()["errors"][0]["reason"]


def test_erasure_removes_personal_data_and_keeps_anonymous_history(api: Api) -> None:
    number = resident_id(serial=401)
    created = _create(
        api,
        person(
            name="Zhao Lei",
            id_number=number,
            addresses=[{"type": "home", "text": "Village 3"}],
            contacts=[{"role": "other", "name": "Zhao Mei", "phone": "13900000004"}],
        ),
    )
    cid = created["id"]
    url = f"/api/v1/customers/{cid}"
    president = api.as_("president.zhao")
    body = {"reason": "data subject request", "request_reference": "PIPL-2026-001"}
    assert president.post(f"{url}/erasure", json=body).status_code == 422  # still active
    closed = api.as_("head.sun").patch(url, json={"status": "closed", "version": 1})
    assert closed.status_code == 200
    assert api.as_("head.sun").post(f"{url}/erasure", json=body).status_code == 403
    erased = president.post(f"{url}/erasure", json=body)
    assert erased.status_code == 200, erased.text
    out = erased.json()
    assert out["erased"] and out["name"] == "(erased)"
    assert out["id_number"] is None and out["phone"] is None and out["addresses"] == []
    assert out["contacts"] == [] and out["lost_contact"]
    with _session(api) as session:
        assert session.scalars(select(Contact).where(Contact.customer_id == cid)).all() == []
        history = session.scalars(select(Change).where(Change.customer_id == cid)).all()
        assert [c.action for c in history][-1] == "erased"
        assert all("Zhao" not in str(c.changes) for c in history)
    # The identity is free again: the person may come back as a new customer.
    again = api.as_("head.sun").post("/api/v1/customers", json=person(id_number=number))
    assert again.status_code == 201
    assert president.post(f"{url}/erasure", json=body).status_code == 409


def test_a_corporate_record_is_not_erased(api: Api) -> None:
    created = _create(api, firm(credit_code=credit_code("91350100M000400Y4")))
    api.as_("head.sun").patch(
        f"/api/v1/customers/{created['id']}", json={"status": "closed", "version": 1}
    )
    resp = api.as_("admin").post(
        f"/api/v1/customers/{created['id']}/erasure",
        json={"reason": "request", "request_reference": "R-1"},
    )
    assert resp.status_code == 422
    assert "natural persons" in resp.json()["detail"]


def test_erased_and_merged_records_leave_lists(api: Api) -> None:
    a = _create(api, person(name="Sun Qi", id_number=resident_id(serial=501), phone=None))
    b = _create(
        api,
        person(
            name="Sun Qi",
            id_number=None,
            phone=None,
            segment="target",
            data_source="fair",
            lawful_basis="consent",
        ),
    )
    head = api.as_("head.sun")
    lost = {c["id"] for c in head.get("/api/v1/customers/lost-contact").json()["items"]}
    assert lost == {a["id"], b["id"]}
    merged = head.post(
        f"/api/v1/customers/{a['id']}/merge", json={"duplicate_id": b["id"], "version": 1}
    )
    assert merged.status_code == 200, merged.text
    head.patch(f"/api/v1/customers/{a['id']}", json={"status": "closed", "version": 2})
    erased = api.as_("admin").post(
        f"/api/v1/customers/{a['id']}/erasure", json={"reason": "request", "request_reference": "R"}
    )
    assert erased.status_code == 200, erased.text
    assert head.get("/api/v1/customers/lost-contact").json()["items"] == []
    assert head.get("/api/v1/customers").json()["items"] == []
