"""Settings of the customer service (environment prefix ``CRM_CUSTOMER_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from crmkit.settings import ServiceSettings


class CustomerSettings(ServiceSettings):
    service_name: ClassVar[str] = "customer"
    model_config = SettingsConfigDict(env_prefix="CRM_CUSTOMER_", extra="ignore")

    port: int = 8001
