"""The applier: runs of events for many-handlers, inbox dedupe, positions kept with effects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crmkit.consumer import EventApplier, HandlerRegistry, RawRecord
from crmkit.db import KitTables, make_engine, new_metadata
from crmkit.events import Envelope
from crmkit.replicas import apply_customer_events, define_customer_refs


def _envelope(event_type: str, key: str, occurred_at: datetime | None = None, **data: str) -> bytes:
    return (
        Envelope(
            id=uuid.uuid4(),
            type=event_type,
            version=1,
            source="test",
            occurred_at=occurred_at or datetime.now(UTC),
            key=key,
            data=data,
        )
        .model_dump_json()
        .encode()
    )


def _applier(tmp_path: Path, registry: HandlerRegistry) -> tuple[EventApplier, KitTables]:
    metadata = new_metadata()
    tables = KitTables.define(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'applier.db'}")
    metadata.create_all(engine)
    factory = sessionmaker(engine)
    return EventApplier("test", "test-consumer", registry, tables, factory, "dlq"), tables


def test_runs_go_to_many_handlers_in_order_and_duplicates_are_skipped(tmp_path: Path) -> None:
    calls: list[tuple[str, list[str]]] = []
    registry = HandlerRegistry()

    def many(session: Session, events: list[Envelope]) -> None:
        calls.append(("many", [e.data["n"] for e in events]))

    def one(session: Session, event: Envelope) -> None:
        calls.append(("one", [event.data["n"]]))

    registry.on_many("s", "a.created")(many)
    registry.on_many("s", "a.updated")(many)
    registry.on("s", "b.done")(one)
    applier, tables = _applier(tmp_path, registry)
    raw = [
        _envelope("a.created", "k1", n="1"),
        _envelope("a.updated", "k1", n="2"),
        _envelope("b.done", "k1", n="3"),
        _envelope("a.updated", "k2", n="4"),
        _envelope("x.ignored", "k2", n="5"),
    ]
    records = [RawRecord("t", 0, i, v) for i, v in enumerate([*raw, raw[3]])]
    applier.apply_batch(records, {("t", 0): ("topic-1", 6)})

    assert calls == [("many", ["1", "2"]), ("one", ["3"]), ("many", ["4"])]
    with applier.session_factory() as session:
        inbox = session.execute(select(tables.inbox.c.event_id)).scalars().all()
    assert len(inbox) == 4
    assert applier.load_positions() == {("t", 0): ("topic-1", 6)}

    applier.apply_batch(records[:2], {("t", 0): ("topic-1", 8)})
    assert len(calls) == 3, "redelivered events must not reach the handlers"
    assert applier.load_positions() == {("t", 0): ("topic-1", 8)}


def test_a_customer_copy_keeps_the_newest_event(tmp_path: Path) -> None:
    metadata = new_metadata()
    refs = define_customer_refs(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'refs.db'}")
    metadata.create_all(engine)
    now = datetime.now(UTC)
    cid = str(uuid.uuid4())

    def event(name: str, at: datetime) -> Envelope:
        return Envelope.from_bytes(
            _envelope(
                "customer.updated",
                cid,
                occurred_at=at,
                customer_id=cid,
                name=name,
                kind="individual",
                org_unit="/HQ",
                business_line="personal",
                status="active",
            )
        )

    with Session(engine) as session, session.begin():
        apply_customer_events(session, refs, [event("first", now), event("second", now)])
    with Session(engine) as session, session.begin():
        # An older event published again later must not roll the copy back.
        apply_customer_events(session, refs, [event("stale", now - timedelta(seconds=5))])
    with Session(engine) as session:
        assert session.execute(select(refs.c.name)).scalars().all() == ["second"]
