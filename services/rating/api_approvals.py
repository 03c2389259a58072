"""Routes: Review, decision and the credit committee 审议审批; the printed forms."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["approvals"])
