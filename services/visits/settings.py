"""Settings of the visits service (environment prefix ``CRM_VISITS_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from crmkit.settings import ServiceSettings


class VisitsSettings(ServiceSettings):
    service_name: ClassVar[str] = "visits"
    model_config = SettingsConfigDict(env_prefix="CRM_VISITS_", extra="ignore")

    port: int = 8004
    # Keys of the personal data the teller register keeps at rest (a walk-in customer's identity
    # number and phone), as the customer service configures its own: ``id:base64key`` pairs
    # separated by commas, the active key's id, and the key of the blind indexes. Empty in the
    # embedded default: the development keys under ``var/keys``.
    field_encryption_keys: str = ""
    field_active_key_id: str = ""
    field_index_key: str = ""
    # How often the workers publish reminders of contacts coming due and holiday greetings.
    reminder_interval_s: float = 900.0
    # How many days ahead of a due contact its reminder goes out.
    reminder_days_ahead: int = 3
    # How often the workers escalate complaints whose step is past its deadline.
    complaint_sweep_interval_s: float = 300.0
