"""Settings of the rating service (environment prefix ``CRM_RATING_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from crmkit.settings import ServiceSettings


class RatingSettings(ServiceSettings):
    service_name: ClassVar[str] = "rating"
    model_config = SettingsConfigDict(env_prefix="CRM_RATING_", extra="ignore")

    port: int = 8002
    # How often the workers expire limits past their date and flag late approval steps.
    limits_sweep_interval_s: float = 300.0
    # How often the workers propose the yearly re-rating of grades past their validity.
    rerating_sweep_interval_s: float = 3600.0
    # How often the workers look for a campaign batch to run or resume after a restart.
    campaign_interval_s: float = 5.0
    # Customers a campaign batch scores and writes per transaction.
    campaign_chunk_size: int = 5000
