"""The rating service application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from crmkit.http import create_service_app
from crmkit.runtime import ServiceRuntime
from services.rating.api import routers
from services.rating.handlers import registry
from services.rating.models import Base, kit
from services.rating.settings import RatingSettings


def build_runtime(settings: RatingSettings | None = None) -> ServiceRuntime:
    return ServiceRuntime(
        name="rating",
        settings=settings or RatingSettings(),
        metadata=Base.metadata,
        tables=kit,
        registry=registry,
        migrations_dir=Path(__file__).with_name("migrations"),
    )


def create_app(settings: RatingSettings | None = None) -> FastAPI:
    return create_service_app(
        build_runtime(settings),
        routers,
        title="Rating and credit-limit service",
        description="Credit grades 信用等级, credit limits 授信额度, approvals and risk status.",
    )
