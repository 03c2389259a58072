"""Routes: The teller identification register and marketing events."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["marketing"])
