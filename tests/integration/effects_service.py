"""A test service whose consumer counts its effects, so that applying an event twice shows.

It consumes the customer service's events like any service and writes one ``effects`` row per
application (no unique key: a double application leaves two rows). Run as a process with
``python -m tests.integration.effects_service``; ``CRASH_AFTER_BATCHES=n`` makes the process die
abruptly inside its n-th consumer transaction, after the effects were written and before the
commit.
"""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic_settings import SettingsConfigDict
from sqlalchemy import Column, String, Table, func, insert, select
from sqlalchemy.orm import Session

from crmkit.consumer import EventApplier, HandlerRegistry, Positions
from crmkit.db import BigIntId, KitTables, UtcDateTime, new_metadata, utcnow
from crmkit.events import Envelope
from crmkit.runtime import ServiceRuntime
from crmkit.settings import ServiceSettings

metadata = new_metadata()
kit = KitTables.define(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("customer_id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)
registry = HandlerRegistry()


@registry.on("customer", "customer.created")
@registry.on("customer", "customer.updated")
def record_effect(session: Session, event: Envelope) -> None:
    if event.data["name"] == "poison":
        raise RuntimeError("this customer cannot be applied")
    session.execute(
        insert(effects).values(
            event_id=str(event.id),
            customer_id=event.data["customer_id"],
            name=event.data["name"],
            applied_at=utcnow(),
        )
    )


class EffectsSettings(ServiceSettings):
    service_name: ClassVar[str] = "effects"
    model_config = SettingsConfigDict(env_prefix="CRM_EFFECTS_", extra="ignore")

    run_migrations_on_start: bool = False
    consumer_retry_backoff_s: float = 0.05


def build_runtime(settings: EffectsSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(
        name="effects",
        settings=settings,
        metadata=metadata,
        tables=kit,
        registry=registry,
        migrations_dir=None,
    )
    metadata.create_all(runtime.engine)
    return runtime


def effect_counts(session: Session) -> dict[str, int]:
    """Applications per event id."""
    rows = session.execute(select(effects.c.event_id, func.count()).group_by(effects.c.event_id))
    return {event_id: count for event_id, count in rows}


def _crash_after(batches: int) -> None:
    original = EventApplier.save_positions
    done = {"n": 0}

    def save_then_maybe_die(self: EventApplier, session: Session, positions: Positions) -> None:
        original(self, session, positions)
        done["n"] += 1
        if done["n"] >= batches:
            os._exit(9)  # die inside the batch's transaction, before it commits

    EventApplier.save_positions = save_then_maybe_die  # type: ignore[method-assign]


if __name__ == "__main__":
    crash = int(os.environ.get("CRASH_AFTER_BATCHES", "0"))
    if crash:
        _crash_after(crash)
    build_runtime(EffectsSettings()).run_worker()
