"""The rating service application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from crmkit.http import create_service_app
from crmkit.runtime import PeriodicTask, ServiceRuntime
from services.rating import approvals, campaigns, rerating
from services.rating.api import routers
from services.rating.handlers import registry
from services.rating.models import Base, kit
from services.rating.settings import RatingSettings


def build_runtime(settings: RatingSettings | None = None) -> ServiceRuntime:
    settings = settings or RatingSettings()
    return ServiceRuntime(
        name="rating",
        settings=settings,
        metadata=Base.metadata,
        tables=kit,
        registry=registry,
        migrations_dir=Path(__file__).with_name("migrations"),
        periodic=(
            PeriodicTask("limits-sweep", settings.limits_sweep_interval_s, approvals.sweep),
            PeriodicTask(
                "yearly-rerating", settings.rerating_sweep_interval_s, rerating.sweep_yearly
            ),
            PeriodicTask("campaigns", settings.campaign_interval_s, campaigns.run_pending),
        ),
    )


def create_app(settings: RatingSettings | None = None) -> FastAPI:
    return create_service_app(
        build_runtime(settings),
        routers,
        title="Rating and credit-limit service",
        description="Credit grades 信用等级, credit limits 授信额度, approvals and risk status.",
    )
