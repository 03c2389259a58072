"""The event envelope and payload validation."""

from __future__ import annotations

import json
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


def test_an_envelope_written_without_the_model_is_the_models_json() -> None:
    from crmkit.events import envelope_json

    tokens = (context.correlation_id.set("corr-9"), context.causation_id.set("cause-9"))
    try:
        event_id, raw = envelope_json(SPEC, PAYLOAD, source="customer", key="k", actor="u1")
        model = build_envelope(SPEC, PAYLOAD, source="customer", key="k", actor="u1")
    finally:
        context.correlation_id.reset(tokens[0])
        context.causation_id.reset(tokens[1])
    parsed = Envelope.from_bytes(raw.encode())
    assert str(parsed.id) == event_id and parsed.correlation_id == "corr-9"
    # The same fields, in the same order and form, as the model writes them.
    mine = json.loads(raw)
    theirs = json.loads(model.model_dump_json())
    assert list(mine) == list(theirs)
    for name in ("id", "occurred_at"):
        mine.pop(name), theirs.pop(name)
    assert mine == theirs
    assert raw.split('"occurred_at":"')[1][26] == "Z"  # UTC written as the model writes it


def test_an_invalid_payload_is_refused_without_the_model_too() -> None:
    from crmkit.events import envelope_json

    with pytest.raises(EventSchemaViolation):
        envelope_json(SPEC, {**PAYLOAD, "customer_id": "x"}, source="s", key=None, actor=None)
