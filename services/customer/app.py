"""The customer service application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from crmkit.http import create_service_app
from crmkit.runtime import ServiceRuntime
from services.customer.api import routers
from services.customer.handlers import registry
from services.customer.models import Base, kit
from services.customer.settings import CustomerSettings


def build_runtime(settings: CustomerSettings | None = None) -> ServiceRuntime:
    return ServiceRuntime(
        name="customer",
        settings=settings or CustomerSettings(),
        metadata=Base.metadata,
        tables=kit,
        registry=registry,
        migrations_dir=Path(__file__).with_name("migrations"),
    )


def create_app(settings: CustomerSettings | None = None) -> FastAPI:
    return create_service_app(
        build_runtime(settings),
        routers,
        title="Customer service",
        description="Customer master data 客户信息: identities, profiles, tiers.",
    )
