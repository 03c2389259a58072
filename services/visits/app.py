"""The visits service application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from crmkit.http import create_service_app
from crmkit.runtime import PeriodicTask, ServiceRuntime
from services.visits import complaints, followups
from services.visits.api import routers
from services.visits.handlers import registry
from services.visits.models import Base, kit
from services.visits.settings import VisitsSettings


def build_runtime(settings: VisitsSettings | None = None) -> ServiceRuntime:
    settings = settings or VisitsSettings()
    return ServiceRuntime(
        name="visits",
        settings=settings,
        metadata=Base.metadata,
        tables=kit,
        registry=registry,
        migrations_dir=Path(__file__).with_name("migrations"),
        periodic=(
            PeriodicTask("reminders", settings.reminder_interval_s, followups.remind),
            PeriodicTask(
                "complaint-escalation",
                settings.complaint_sweep_interval_s,
                complaints.escalate_late,
            ),
        ),
    )


def create_app(settings: VisitsSettings | None = None) -> FastAPI:
    return create_service_app(
        build_runtime(settings),
        routers,
        title="Visits service",
        description="Visits 拜访, follow-up plans, agendas, enquiries, complaints and surveys.",
    )
