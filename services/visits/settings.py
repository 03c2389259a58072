"""Settings of the visits service (environment prefix ``CRM_VISITS_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from crmkit.settings import ServiceSettings


class VisitsSettings(ServiceSettings):
    service_name: ClassVar[str] = "visits"
    model_config = SettingsConfigDict(env_prefix="CRM_VISITS_", extra="ignore")

    port: int = 8004
