"""Wire contract of the customer service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class CustomerKind(StrEnum):
    individual = "individual"
    farm_household = "farm_household"
    individual_business = "individual_business"
    corporate = "corporate"
    institution = "institution"


class BusinessLine(StrEnum):
    agricultural = "agricultural"
    corporate = "corporate"
    personal = "personal"


class Segment(StrEnum):
    stock = "stock"
    target = "target"


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: CustomerKind
    name: str = Field(min_length=1, max_length=200)
    org_unit: str = Field(
        pattern=r"^/[A-Za-z0-9_/-]*$",
        max_length=200,
        description="Org-unit path of the branch the relationship belongs to",
    )
    business_line: BusinessLine
    segment: Segment = Segment.stock


class CustomerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    org_unit: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9_/-]*$", max_length=200)
    business_line: BusinessLine | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: CustomerKind
    name: str
    org_unit: str
    business_line: BusinessLine
    status: str
    segment: Segment
    created_at: datetime
    updated_at: datetime
