"""The customer service application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from crmkit.crypto import FieldCipher
from crmkit.http import create_service_app
from crmkit.runtime import ServiceRuntime
from crmkit.settings import VAR_DIR
from services.customer.api import routers
from services.customer.api_governance import router as governance_router
from services.customer.api_imports import install_import_runner
from services.customer.context import CustomerContext
from services.customer.handlers import registry
from services.customer.models import Base, kit
from services.customer.settings import CustomerSettings
from services.customer.tier_policy import load_tier_policies


def build_runtime(settings: CustomerSettings | None = None) -> ServiceRuntime:
    return ServiceRuntime(
        name="customer",
        settings=settings or CustomerSettings(),
        metadata=Base.metadata,
        tables=kit,
        registry=registry,
        migrations_dir=Path(__file__).with_name("migrations"),
    )


def build_cipher(settings: CustomerSettings) -> FieldCipher:
    """The personal-data cipher: keys from settings, or development keys under ``var/keys``."""
    if settings.field_encryption_keys:
        return FieldCipher.from_config(
            settings.field_encryption_keys, settings.field_active_key_id, settings.field_index_key
        )
    return FieldCipher.for_development(VAR_DIR / "keys")


def build_context(runtime: ServiceRuntime) -> CustomerContext:
    settings = runtime.settings
    assert isinstance(settings, CustomerSettings)
    return CustomerContext(
        recorder=runtime.recorder, cipher=build_cipher(settings), policies=load_tier_policies()
    )


def create_app(settings: CustomerSettings | None = None) -> FastAPI:
    runtime = build_runtime(settings)
    app = create_service_app(
        runtime,
        # Fixed paths (/duplicates …) before the /{customer_id} routes that would match them.
        [governance_router, *routers],
        title="Customer service",
        description="Customer master data 客户信息: identities, profiles, snapshots, tiers.",
    )
    app.state.customer_context = build_context(runtime)
    # Import jobs run in a background thread; unfinished ones resume at startup.
    install_import_runner(app, runtime, app.state.customer_context)
    return app
