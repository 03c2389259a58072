"""The notify service application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from crmkit.http import create_service_app
from crmkit.runtime import ServiceRuntime
from services.notify.api import routers
from services.notify.handlers import registry
from services.notify.models import Base, kit
from services.notify.settings import NotifySettings


def build_runtime(settings: NotifySettings | None = None) -> ServiceRuntime:
    return ServiceRuntime(
        name="notify",
        settings=settings or NotifySettings(),
        metadata=Base.metadata,
        tables=kit,
        registry=registry,
        migrations_dir=Path(__file__).with_name("migrations"),
    )


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    return create_service_app(
        build_runtime(settings),
        routers,
        title="Notify service",
        description="SMS 短信: templates, consents, throttling, delivery status.",
    )
