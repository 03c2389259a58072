"""Routes of the upgrades of the assignment service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["upgrades"])
