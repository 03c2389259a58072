"""The assignment service application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from crmkit.http import create_service_app
from crmkit.runtime import ServiceRuntime
from services.assignment.api import routers
from services.assignment.handlers import registry
from services.assignment.models import Base, kit
from services.assignment.settings import AssignmentSettings


def build_runtime(settings: AssignmentSettings | None = None) -> ServiceRuntime:
    return ServiceRuntime(
        name="assignment",
        settings=settings or AssignmentSettings(),
        metadata=Base.metadata,
        tables=kit,
        registry=registry,
        migrations_dir=Path(__file__).with_name("migrations"),
    )


def create_app(settings: AssignmentSettings | None = None) -> FastAPI:
    return create_service_app(
        build_runtime(settings),
        routers,
        title="Assignment service",
        description="One customer, one responsible manager 一户一主办: org, staff, owners, teams.",
    )
