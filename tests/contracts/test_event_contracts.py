"""Events are contracts: every schema is valid, has a producer and a fixture, and vice versa."""

from __future__ import annotations

import json
from importlib import import_module

import pytest
from jsonschema import Draft202012Validator

from crmkit import catalogue
from crmkit.events import CONTRACTS_DIR, EventSchemaViolation, all_schemas, validate_payload

SERVICES = catalogue.SERVICES
SCHEMAS = all_schemas()


def _published() -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], str] = {}
    for service in SERVICES:
        for spec in import_module(f"services.{service}.events").PUBLISHED:
            assert spec.stream == service, f"{spec.type} is published on another's stream"
            out[(spec.type, spec.version)] = service
    return out


def test_there_are_schemas() -> None:
    assert SCHEMAS, "no event schema found"


@pytest.mark.parametrize(("event_type", "version"), sorted(SCHEMAS))
def test_schema_is_valid_and_has_a_producer_and_a_fixture(event_type: str, version: int) -> None:
    schema = SCHEMAS[(event_type, version)]
    Draft202012Validator.check_schema(schema)
    producers = _published()
    assert (event_type, version) in producers, f"no service publishes {event_type} v{version}"
    assert schema.get("x-producer") == producers[(event_type, version)]
    fixture = CONTRACTS_DIR / "fixtures" / f"{event_type}.v{version}.json"
    assert fixture.exists(), f"no fixture for {event_type} v{version}"
    validate_payload(event_type, version, json.loads(fixture.read_text()))


def test_every_published_event_has_a_schema() -> None:
    missing = sorted(set(_published()) - set(SCHEMAS))
    assert missing == []


def test_every_consumed_event_type_has_a_schema() -> None:
    known = {event_type for event_type, _ in SCHEMAS}
    consumed = set(catalogue.consumers_by_type())
    assert consumed <= known, f"consumed without a contract: {sorted(consumed - known)}"


def test_a_payload_off_its_schema_is_refused() -> None:
    fixture = json.loads((CONTRACTS_DIR / "fixtures" / "customer.created.v1.json").read_text())
    fixture["kind"] = "alien"
    del fixture["name"]
    with pytest.raises(EventSchemaViolation) as err:
        validate_payload("customer.created", 1, fixture)
    text = " ".join(err.value.errors)
    assert "kind" in text and "name" in text


def test_catalogue_is_up_to_date() -> None:
    committed = (CONTRACTS_DIR.parents[1] / "docs" / "events.md").read_text()
    assert committed == catalogue.render(), "docs/events.md is stale: run `make catalogue`"
