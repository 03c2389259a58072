"""Every service's migrations build exactly the schema its models declare, and undo cleanly."""

from __future__ import annotations

from importlib import import_module

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from crmkit import migrations
from tests.conftest import Databases

pytestmark = pytest.mark.integration
SERVICES = ["customer", "rating", "assignment", "visits", "notify"]


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_models_and_downgrade(service: str, databases: Databases) -> None:
    module = import_module(f"services.{service}.app")
    settings_cls = type(module.build_runtime().settings)
    runtime = module.build_runtime(settings_cls(database_url=databases.url(service)))
    runtime.migrate()
    with runtime.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), runtime.metadata)
    assert diff == [], f"{service}: models and migrations differ: {diff}"
    assert {"outbox", "inbox", "dead_letters", "relay_state"} <= set(
        inspect(runtime.engine).get_table_names()
    )
    assert runtime.migrations_dir is not None
    migrations.upgrade(runtime.migrations_dir, runtime.settings.database_url, "head")  # no-op
    from alembic import command

    command.downgrade(
        migrations.alembic_config(runtime.migrations_dir, runtime.settings.database_url), "base"
    )
    assert set(inspect(runtime.engine).get_table_names()) <= {"alembic_version"}
    runtime.engine.dispose()
