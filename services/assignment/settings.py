"""Settings of the assignment service (environment prefix ``CRM_ASSIGNMENT_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from crmkit.settings import ServiceSettings


class AssignmentSettings(ServiceSettings):
    service_name: ClassVar[str] = "assignment"
    model_config = SettingsConfigDict(env_prefix="CRM_ASSIGNMENT_", extra="ignore")

    port: int = 8003
