"""The event envelope and payload validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from crmkit import context
from crmkit.events import Envelope, EventSchemaViolation, EventSpec, build_envelope

SPEC = EventSpec("customer.created", 1, "customer")
PAYLOAD = {
    "customer_id": str(uuid.uuid4()),
    "kind": "individual",
    "name": "Li Lei",
    "org_unit": "/HQ/U01",
    "business_line": "personal",
    "status": "active",
    "segment": "stock",
}


def test_envelope_round_trips_through_bytes() -> None:
    env = build_envelope(SPEC, PAYLOAD, source="customer", key=PAYLOAD["customer_id"], actor="u1")
    again = Envelope.from_bytes(env.to_bytes())
    assert again == env
    assert again.occurred_at.tzinfo is not None
    assert again.key == PAYLOAD["customer_id"]


def test_build_envelope_takes_correlation_and_causation_from_context() -> None:
    tokens = (context.correlation_id.set("corr-1"), context.causation_id.set("cause-1"))
    try:
        env = build_envelope(SPEC, PAYLOAD, source="customer", key=None, actor=None)
    finally:
        context.correlation_id.reset(tokens[0])
        context.causation_id.reset(tokens[1])
    assert (env.correlation_id, env.causation_id) == ("corr-1", "cause-1")


def test_new_chain_is_correlated_by_its_own_id() -> None:
    env = build_envelope(SPEC, PAYLOAD, source="customer", key=None, actor=None)
    assert env.correlation_id == str(env.id)
    assert env.causation_id is None


def test_invalid_payload_is_refused_before_it_is_written() -> None:
    with pytest.raises(EventSchemaViolation) as err:
        build_envelope(
            SPEC, {**PAYLOAD, "business_line": "retail"}, source="customer", key=None, actor=None
        )
    assert any("business_line" in e for e in err.value.errors)


@pytest.mark.parametrize(
    "bad",
    [
        {"occurred_at": datetime(2026, 1, 1)},  # naive time
        {"type": "CustomerCreated"},
        {"version": 0},
        {"extra": 1},
    ],
)
def test_envelope_rejects_malformed_fields(bad: dict[str, object]) -> None:
    fields = {
        "id": uuid.uuid4(),
        "type": "customer.created",
        "version": 1,
        "source": "customer",
        "occurred_at": datetime.now(UTC),
        "data": {},
    }
    with pytest.raises(ValidationError):
        Envelope(**{**fields, **bad})


def test_formats_are_checked() -> None:
    with pytest.raises(EventSchemaViolation) as err:
        build_envelope(
            SPEC, {**PAYLOAD, "customer_id": "not-a-uuid"}, source="customer", key=None, actor=None
        )
    assert any("customer_id" in e for e in err.value.errors)


def test_a_naive_event_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_envelope(
            SPEC,
            PAYLOAD,
            source="customer",
            key=None,
            actor=None,
            occurred_at=datetime(2026, 1, 1),
        )


def test_a_built_envelope_is_what_validating_its_fields_gives() -> None:
    env = build_envelope(SPEC, PAYLOAD, source="customer", key="k", actor="u1")
    validated = Envelope.model_validate(env.model_dump())
    assert validated == env
    assert validated.model_dump_json() == env.model_dump_json()
