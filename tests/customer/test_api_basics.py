"""Create, read, update with versions, and the errors of the customer API."""

from __future__ import annotations

from tests.customer.conftest import Api, credit_code, firm, person, resident_id


def test_create_masks_personal_data_and_derives_birth_date(api: Api) -> None:
    number = resident_id("19900307", 457)
    resp = api.as_("manager.li").post("/api/v1/customers", json=person(id_number=number))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["id_number"] == number[:6] + "********" + number[-4:]
    assert body["phone"] == "138****5678"
    assert body["sex"] == "male"  # serial 457: odd
    assert body["status"] == "active" and body["segment"] == "stock"
    assert body["version"] == 1
    assert resp.headers["ETag"] == '"1"'
    assert resp.headers["Location"] == f"/api/v1/customers/{body['id']}"
    read = api.as_("manager.li").get(resp.headers["Location"])
    assert read.status_code == 200 and read.json()["id_number"] == body["id_number"]
    assert number not in read.text


def test_a_second_customer_with_the_same_identity_is_refused_with_a_link(api: Api) -> None:
    first = api.as_("manager.li").post("/api/v1/customers", json=person()).json()
    again = api.as_("manager.li").post("/api/v1/customers", json=person(name="Zhang S."))
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["existing_customer"] == f"/api/v1/customers/{first['id']}"


def test_invalid_identity_and_phone_are_reported_by_field(api: Api) -> None:
    bad = resident_id()[:-1] + ("0" if resident_id()[-1] != "0" else "1")
    resp = api.as_("manager.li").post(
        "/api/v1/customers", json=person(id_number=bad, phone="010-12345678")
    )
    assert resp.status_code == 422
    fields = {e["field"]: e["reason"] for e in resp.json()["errors"]}
    assert "check digit" in fields["id_number"]
    assert "phone" in fields


def test_update_needs_the_version_and_refuses_a_stale_one(api: Api) -> None:
    manager = api.as_("manager.li")
    created = manager.post("/api/v1/customers", json=person()).json()
    url = f"/api/v1/customers/{created['id']}"
    assert manager.patch(url, json={"name": "Zhang San"}).status_code == 428
    ok = manager.patch(url, json={"name": "Zhang San", "version": 1})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale_body = manager.patch(url, json={"archive_number": "A-1", "version": 1})
    assert stale_body.status_code == 409
    stale_header = manager.patch(url, json={"archive_number": "A-1"}, headers={"If-Match": '"1"'})
    assert stale_header.status_code == 412
    fresh = manager.patch(url, json={"archive_number": "A-1"}, headers={"If-Match": '"2"'})
    assert fresh.status_code == 200 and fresh.json()["archive_number"] == "A-1"
    changes = manager.get(f"{url}/changes").json()
    assert [c["action"] for c in changes] == ["created", "updated", "updated"]
    assert changes[1]["changes"] == {"name": "Zhang San"}


def test_status_transitions_are_checked(api: Api) -> None:
    manager = api.as_("manager.li")
    created = manager.post("/api/v1/customers", json=person()).json()
    url = f"/api/v1/customers/{created['id']}"
    closed = manager.patch(url, json={"status": "closed", "version": 1})
    assert closed.status_code == 200
    reopen = manager.patch(url, json={"status": "active", "version": 2})
    assert reopen.status_code == 422
    assert reopen.json()["errors"][0]["field"] == "status"


def test_target_customers_need_a_source_and_lawful_basis(api: Api) -> None:
    body = person(segment="target", id_number=None)
    resp = api.as_("manager.li").post("/api/v1/customers", json=body)
    assert resp.status_code == 422
    assert {e["field"] for e in resp.json()["errors"]} == {"data_source", "lawful_basis"}
    body.update(data_source="met at the township fair", lawful_basis="consent")
    ok = api.as_("manager.li").post("/api/v1/customers", json=body)
    assert ok.status_code == 201 and ok.json()["status"] == "target"


def test_reveal_is_audited_and_role_bound(api: Api) -> None:
    number = resident_id()
    created = api.as_("manager.li").post("/api/v1/customers", json=person(id_number=number)).json()
    url = f"/api/v1/customers/{created['id']}/reveal"
    body = {"fields": ["id_number", "phone"], "reason": "account opening check"}
    assert api.as_("teller.wang").post(url, json=body).status_code == 403
    shown = api.as_("manager.li").post(url, json=body)
    assert shown.status_code == 200
    assert shown.json()["values"] == {"id_number": number, "phone": "13812345678"}
    assert shown.json()["audit_id"] >= 1


def test_one_update_is_one_version_step(api: Api) -> None:
    manager = api.as_("manager.li")
    created = manager.post("/api/v1/customers", json=person()).json()
    resp = manager.patch(
        f"/api/v1/customers/{created['id']}",
        json={
            "id_number": resident_id("19850101", 222),
            "status": "dormant",
            "phone": "13700000000",
            "contacts": [{"role": "other", "name": "Zhang Hua"}],
            "version": 1,
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == 2
    assert resp.json()["id_number"].endswith(resident_id("19850101", 222)[-4:])


def test_a_gbt4754_industry_code_sets_the_corporate_market_segment(api: Api) -> None:
    head = api.as_("head.sun")
    made = head.post("/api/v1/customers", json=firm(industry_code="C1311"))
    assert made.status_code == 201, made.text
    assert made.json()["market_segment"] == "manufacturing"
    unknown = head.post(
        "/api/v1/customers",
        json=firm(industry_code="Z99", credit_code=credit_code("91350100M000500Y4")),
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "industry_code"
    person_line = head.post("/api/v1/customers", json=person(industry_code="C"))
    assert person_line.status_code == 422


def test_the_same_operator_id_again_is_no_change(api: Api) -> None:
    operator = resident_id("19800101", 333)
    body = firm(
        kind="individual_business",
        business_line="personal",
        ownership_type=None,
        credit_code=credit_code("92350100M000600Y4"),
        operator_id_number=operator,
    )
    made = api.as_("head.sun").post("/api/v1/customers", json=body)
    assert made.status_code == 201, made.text
    url = f"/api/v1/customers/{made.json()['id']}"
    again = api.as_("head.sun").patch(url, json={"operator_id_number": operator, "version": 1})
    assert again.status_code == 200 and again.json()["version"] == 1
    other = resident_id("19800101", 335)
    changed = api.as_("head.sun").patch(url, json={"operator_id_number": other, "version": 1})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert changed.json()["operator_id_number"].endswith(other[-4:])
