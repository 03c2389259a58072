"""Settings of the customer service (environment prefix ``CRM_CUSTOMER_``)."""

from pathlib import Path
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from crmkit.settings import VAR_DIR, ServiceSettings


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
