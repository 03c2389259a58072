"""Settings of the rating service (environment prefix ``CRM_RATING_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from crmkit.settings import ServiceSettings


class RatingSettings(ServiceSettings):
    service_name: ClassVar[str] = "rating"
    model_config = SettingsConfigDict(env_prefix="CRM_RATING_", extra="ignore")

    port: int = 8002
