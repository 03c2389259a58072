"""Routes: Visit records, pre-visit and service plans, enquiries and appointments."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["visits"])
