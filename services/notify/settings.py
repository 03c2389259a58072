"""Settings of the notify service (environment prefix ``CRM_NOTIFY_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from crmkit.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    service_name: ClassVar[str] = "notify"
    model_config = SettingsConfigDict(env_prefix="CRM_NOTIFY_", extra="ignore")

    port: int = 8005
