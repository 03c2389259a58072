"""Wire models of the upgrade proposals and income attribution of the assignment service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.assignment.schemas import StaffId


class ProposalStatus(StrEnum):
    open = "open"  # waits for the customer's choice
    stayed = "stayed"  # the customer keeps their maintainer
    moved = "moved"  # the customer chose the new maintainer


class Choice(StrEnum):
    stay = "stay"
    move = "move"


class TierChangeOut(BaseModel):
    dimension: str
    old: str | None
    new: str | None
    reason: str | None = None


class ChoiceIn(BaseModel):
    """The customer's choice, recorded by an administrator or a head of the customer's subtree."""

    model_config = ConfigDict(extra="forbid")

    choice: Choice
    to_staff_id: StaffId | None = Field(
        default=None, description="The new maintainer (move; the suggested one when omitted)"
    )
    note: str | None = Field(default=None, max_length=500)


class ProposalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    org_unit: str
    from_staff_id: str
    changes: list[TierChangeOut]
    tier_policy_version: str
    rule_policy_version: str | None
    suggested_rule: str | None
    suggested_roles: list[str]
    suggested_staff_id: str | None
    status: str
    created_at: datetime
    choice: str | None
    to_staff_id: str | None
    note: str | None
    decided_at: datetime | None
    decided_by: str | None


class AttributionOut(BaseModel):
    """Who the customer's income is attributed to: the staff member who first developed it."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    staff_id: str
    org_unit: str
    reason: str
    developed_at: datetime
    recorded_at: datetime
