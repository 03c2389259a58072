"""Routes: Risk flags and the watch list 风险预警."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["risk"])
