"""Wire models of the claims 认领 of the assignment service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ClaimStatus(StrEnum):
    granted = "granted"  # the claimant owns the customer
    contested = "contested"  # waits for a head's decision
    refused = "refused"
    withdrawn = "withdrawn"


class Decision(StrEnum):
    grant = "grant"
    refuse = "refuse"


class ClaimIn(BaseModel):
    """The caller claims a customer they know."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=36, max_length=36)
    note: str | None = Field(default=None, max_length=500, description="How they know it")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reason: str | None = Field(default=None, max_length=500, description="Required to refuse")


class ClaimOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    claimant_id: str
    org_unit: str
    owner_at_claim: str | None
    note: str | None
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
