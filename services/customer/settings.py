"""Settings of the customer service (environment prefix ``CRM_CUSTOMER_``)."""

import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crmkit.settings import VAR_DIR, ServiceSettings


def _default_import_workers() -> int:
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(8, cores - 1)


class CustomerSettings(ServiceSettings):
    service_name: ClassVar[str] = "customer"
    model_config = SettingsConfigDict(env_prefix="CRM_CUSTOMER_", extra="ignore")

    port: int = 8001
    # Keys of the personal-data encryption at rest: ``id:base64key`` pairs separated by commas,
    # the active one named by ``field_active_key_id``, and the key of the blind indexes. Empty in
    # the embedded default: development keys are generated once under ``var/keys``.
    field_encryption_keys: str = ""
    field_active_key_id: str = ""
    field_index_key: str = ""
    # Uploaded import files are kept here until their job has finished.
    import_dir: Path = VAR_DIR / "imports"
    # Rows committed per import transaction; progress is visible after each.
    import_chunk_rows: int = 1000
    # Worker processes that prepare the chunks of a large import (validation, encryption, events)
    # while the job's process writes: one per core beside the job's own. Files smaller than
    # ``import_parallel_min_bytes`` are prepared in the job's process (starting the workers takes
    # a few seconds). 0 workers: always in the job's process, the default on two cores or fewer,
    # where the workers and the database share the cores and gained nothing measurable.
    import_workers: int = Field(default_factory=_default_import_workers)
    import_parallel_min_bytes: int = 4 * 1024 * 1024
