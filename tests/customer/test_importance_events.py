"""The owner's assessment of a customer's importance travels with its events: the visits
service's follow-up plan reads it from there."""

from __future__ import annotations

from crmkit.events import validate_payload
from tests.customer.conftest import Api, person, resident_id
from tests.customer.test_group_events import recorded

CUSTOMERS = "/api/v1/customers"


def test_importance_is_in_the_created_and_updated_events(api: Api) -> None:
    body = person(id_number=resident_id("19800101", 13), importance="key")
    resp = api.as_("head.sun").post(CUSTOMERS, json=body)
    assert resp.status_code == 201, resp.text
    customer_id = resp.json()["id"]
    patched = api.as_("head.sun").patch(
        f"{CUSTOMERS}/{customer_id}", json={"importance": "general", "version": 1}
    )
    assert patched.status_code == 200, patched.text
    [created] = [e for e in recorded(api, "customer.created") if e["customer_id"] == customer_id]
    [updated] = [e for e in recorded(api, "customer.updated") if e["customer_id"] == customer_id]
    assert created["importance"] == "key"
    assert updated["importance"] == "general" and "importance" in updated["changed"]
    for event_type, data in (("customer.created", created), ("customer.updated", updated)):
        validate_payload(event_type, 1, data)
